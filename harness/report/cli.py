"""`voxload report RUN_DIR`: argument registration and dispatch (being written)."""

DESCRIPTION = "Build the self-contained capacity sign-off report (HTML, PDF, summary.md, verdict.json) of a run folder."


def add_arguments(parser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="reports/<run-id>")


def run(args, user_error) -> int:
    raise user_error("the report is not implemented yet")
