"""The `voxload` command line (placeholder; being written)."""


def main(argv=None) -> int:
    raise SystemExit("voxload: not yet implemented")
