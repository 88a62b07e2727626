"""The report's typed errors: one class per way a report cannot be built (conventions item 7).

Everything else a run folder can lack (no summary.json, a cut-off CSV, no media files) is not an error: the
report is built anyway and says what is missing. These are only for input the report cannot start from.
"""

from __future__ import annotations

from ..errors import VoxloadError


class ReportError(VoxloadError):
    """Base of report errors; the message is one line (the CLI prints it and exits 2)."""


class RunFolderNotFound(ReportError):
    """The path is not a directory."""


class NotARunFolder(ReportError):
    """The directory holds none of the files a voxload run writes (run.json, summary.json, samples/, media/, probes/)."""


class OutputNotWritable(ReportError):
    """The report files could not be written where they belong."""
