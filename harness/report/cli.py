"""`voxload report RUN_DIR` and `voxload report --compare RUN_A RUN_B --out DIR`: flags and dispatch.

Exit codes: 0 the report was written (whatever the run's own verdict: that is in verdict.json); 2 bad input
(not a run folder, unwritable output), printed as one line by ``harness.cli``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

DESCRIPTION = "Build the self-contained capacity sign-off report (HTML, PDF, summary.md, verdict.json) of a run folder."


def add_arguments(parser) -> None:
    parser.add_argument("run_dir", nargs="?", type=Path, metavar="RUN_DIR",
                        help="reports/<run-id>: the report files are written into it")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("RUN_A", "RUN_B"),
                        help="put two run folders side by side (A before, B after a change) instead")
    parser.add_argument("--out", type=Path, metavar="DIR", help="with --compare: folder for compare.html, compare.md, compare.json")


def run(args: argparse.Namespace, user_error) -> int:
    from . import ReportError, build_comparison, build_report

    try:
        if args.compare:
            if args.run_dir is not None:
                raise user_error("give either RUN_DIR or --compare RUN_A RUN_B, not both")
            if args.out is None:
                raise user_error("--compare needs --out DIR (where the comparison is written)")
            paths = build_comparison(args.compare[0], args.compare[1], args.out)
            print(f"comparison written: {paths.html}")
            return 0
        if args.run_dir is None:
            raise user_error("give a run folder (reports/<run-id>) or --compare RUN_A RUN_B --out DIR")
        if args.out is not None:
            raise user_error("--out is only for --compare; a run's report is written into its run folder")
        paths = build_report(args.run_dir)
    except ReportError as exc:
        raise user_error(str(exc)) from None
    print(f"report written: {paths.html}")
    print(f"                {paths.pdf}")
    print(f"                {paths.summary_md}")
    print(f"                {paths.verdict_json}")
    return 0
