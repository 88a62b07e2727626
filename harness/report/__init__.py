"""The capacity sign-off report of a run folder (GitHub issue 6).

Public entry points::

    build_report(run_dir: Path) -> ReportPaths      # report.html, report.pdf, summary.md, verdict.json into run_dir
    build_comparison(run_a, run_b, out_dir) -> ComparisonPaths   # two runs side by side

Package map: ``rundata`` reads a run folder (tolerating crashed runs), ``findings`` reads probe findings,
``series`` aggregates (pandas), ``health`` finds saturated generator periods, ``verdicts`` gives the SLO
rows, ``capacity`` words statements and recommendations, ``plots`` draws (matplotlib), ``build``
assembles one ``Report``, ``render`` and ``pdf`` write it, ``compare`` puts two runs side by side, ``cli``
is ``voxload report``. Errors are ``ReportError`` subclasses (``errors``).
"""

from .build import Report, ReportPaths
from .write import build_report
from .compare import ComparisonPaths, build_comparison
from .errors import NotARunFolder, OutputNotWritable, ReportError, RunFolderNotFound

__all__ = [
    "ComparisonPaths", "NotARunFolder", "OutputNotWritable", "Report", "ReportError", "ReportPaths", "RunFolderNotFound",
    "build_comparison", "build_report",
]
