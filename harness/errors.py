"""The exit codes every voxload command and the locustfile share, and the root of voxload's errors.

Exit codes separate the deployment from the test (k6 ``errext/exitcodes``):

- 0 ``OK``: every SLO met.
- 1 ``SLO_BREACHED``: an SLO was breached: the deployment failed.
- 2 ``USAGE``: a usage or input error; nothing ran (one line on stderr, no traceback).
- 3 ``INVALID_RUN``: the run is not valid evidence: the load generator saturated, a media engine or Locust worker
  died, a joined booth was not the provisioned one, a required SLO had too little data, or the run was interrupted
  before its end.
- 130 ``INTERRUPTED``: stopped by Ctrl-C (SIGINT), as shells report it.

README, ``--help``, ``verdict.json`` and JUnit take their wording from :data:`EXIT_CODE_MEANINGS`.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    OK = 0
    SLO_BREACHED = 1
    USAGE = 2
    INVALID_RUN = 3
    INTERRUPTED = 130


EXIT_CODE_MEANINGS: dict[ExitCode, str] = {
    ExitCode.OK: "every SLO met",
    ExitCode.SLO_BREACHED: "an SLO was breached (the deployment failed)",
    ExitCode.USAGE: "usage or input error (nothing ran)",
    ExitCode.INVALID_RUN: "the run is not valid evidence (generator saturated, a media engine or Locust worker died, "
    "a joined booth was not the provisioned one, a required SLO without enough data, or the run did not reach its end)",
    ExitCode.INTERRUPTED: "interrupted by Ctrl-C",
}


def exit_codes_help() -> str:
    """The exit-code table as `--help` epilogs print it."""
    return "exit codes:\n" + "\n".join(f"  {int(code):>3}  {text}" for code, text in EXIT_CODE_MEANINGS.items())


class VoxloadError(Exception):
    """Root of voxload's own errors: every exception class under ``harness/`` derives from it (tests/test_error_tree.py),
    except the reference target's (``harness/refstack`` plays VoxBento and does not depend on the harness). Classes that
    callers also catch as ``ValueError`` or ``RuntimeError`` keep that base next to this one. This module imports nothing
    of voxload, so every house (``rtc`` and ``contract`` too) may import it."""


class UserError(VoxloadError):
    """Bad input from the operator: printed as one line naming the file, line and key or the URL; exit 2."""
