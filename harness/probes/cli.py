"""`voxload probe NAME`: argument registration and dispatch (being written)."""

DESCRIPTION = "Push one known VoxBento limit against the embedded reference stack or --host, and state a finding."


def add_arguments(parser) -> None:
    parser.add_argument("name", metavar="NAME", help="probe name")


def run(args, user_error) -> int:
    raise user_error("probes are not implemented yet")
