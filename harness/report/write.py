"""``build_report(run_dir) -> ReportPaths``: assemble the report (``build``), then write its four files.

Separate from ``build`` so the writers (``render``, ``pdf``) import the ``Report`` record without a cycle.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from ..results.layout import REPORT_HTML, REPORT_PDF, SUMMARY_MD, VERDICT_JSON
from .build import ReportPaths, assemble
from .errors import OutputNotWritable
from .rundata import load_run

log = logging.getLogger(__name__)


def build_report(run_dir: Path) -> ReportPaths:
    """Write report.html, report.pdf, summary.md and verdict.json into `run_dir`; raises ReportError."""
    from . import pdf, render  # the writers import Jinja2 and the PDF backend only when a report is written

    t_start = time.perf_counter()
    run_path = Path(run_dir)
    report = assemble(load_run(run_path))
    paths = ReportPaths(run_path / REPORT_HTML, run_path / REPORT_PDF, run_path / SUMMARY_MD, run_path / VERDICT_JSON)
    try:
        render.write_html(report, paths.html)
        pdf.write_pdf(report, paths.pdf)
        render.write_summary_md(report, paths.summary_md)
        render.write_verdict_json(report, paths.verdict_json)
    except OSError as exc:
        raise OutputNotWritable(f"cannot write the report into {run_path}: {exc.strerror or exc}") from exc
    finally:
        for plot in report.plots:
            plot.figure.clear()
    log.info("report for %s written in %.1f s", report.run_id, time.perf_counter() - t_start)
    return paths
