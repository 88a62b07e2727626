"""`voxload report RUN_DIR` and `voxload report --compare RUN_A RUN_B --out DIR`: flags and dispatch.

Exit codes: 0 the report was written (whatever the run's own verdict: that is in verdict.json); 2 bad input
(not a run folder, unwritable output), printed as one line by ``harness.cli``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import UserError
from ..inputs import absolute_path

DESCRIPTION = "Build the self-contained capacity sign-off report (HTML, PDF, summary.md, verdict.json) of a run folder."


def add_arguments(parser) -> None:
    parser.add_argument("run_dir", nargs="?", type=absolute_path, metavar="RUN_DIR",
                        help="reports/<run-id>: the report files are written into it")
    parser.add_argument("--compare", nargs=2, type=absolute_path, metavar=("RUN_A", "RUN_B"),
                        help="put two run folders side by side (A before, B after a change) instead")
    parser.add_argument("--out", type=absolute_path, metavar="DIR", help="with --compare: folder for compare.html, compare.md, compare.json")


def summary_problem(run_dir: Path) -> str | None:
    """Why the folder's summary.json cannot be trusted, or None (also when it is absent: a crashed run has none).

    A summary that parses but is not one this voxload writes (``{}``, another ``schema_version``) would be
    rendered as a report full of blanks that looks like a verdict; it is refused instead.
    """
    from jsonschema import Draft202012Validator

    from ..results.layout import SUMMARY_JSON
    from ..results.run_folder import SUMMARY_SCHEMA, SUMMARY_SCHEMA_VERSION

    path = run_dir / SUMMARY_JSON
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return f"{path}: not readable as JSON ({type(exc).__name__})"
    if not isinstance(summary, dict):
        return f"{path}: expected a JSON object"
    version = summary.get("schema_version")
    if version != SUMMARY_SCHEMA_VERSION:
        found = "has no schema_version" if version is None else f"has schema_version {json.dumps(version)[:40]}"
        return f"{path}: {found}; this voxload reads version {SUMMARY_SCHEMA_VERSION}"
    error = next(iter(sorted(Draft202012Validator(SUMMARY_SCHEMA).iter_errors(summary), key=lambda e: list(e.path))), None)
    if error is not None:
        key = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        return f"{path}: {key}: {error.message[:200]}"
    return None


def run(args: argparse.Namespace) -> int:
    from . import ReportError, build_comparison, build_report

    for folder in ([args.run_dir] if args.run_dir is not None else []) + list(args.compare or []):
        problem = summary_problem(folder) if folder.is_dir() else None
        if problem is not None:
            raise UserError(problem)
    try:
        if args.compare:
            if args.run_dir is not None:
                raise UserError("give either RUN_DIR or --compare RUN_A RUN_B, not both")
            if args.out is None:
                raise UserError("--compare needs --out DIR (where the comparison is written)")
            paths = build_comparison(args.compare[0], args.compare[1], args.out)
            print(f"comparison written: {paths.html}")
            return 0
        if args.run_dir is None:
            raise UserError("give a run folder (reports/<run-id>) or --compare RUN_A RUN_B --out DIR")
        if args.out is not None:
            raise UserError("--out is only for --compare; a run's report is written into its run folder")
        paths = build_report(args.run_dir)
    except ReportError as exc:
        raise UserError(str(exc)) from None
    print(f"report written: {paths.html}")
    print(f"                {paths.pdf}")
    print(f"                {paths.summary_md}")
    print(f"                {paths.verdict_json}")
    return 0
