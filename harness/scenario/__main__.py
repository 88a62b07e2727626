"""``python -m harness.scenario check FILE...`` validates scenario files; ``show FILE`` prints the resolved model.

Exit codes (as the rest of voxload): 0 valid, 2 invalid or unreadable. Problems are printed one per line
as ``FILE:LINE: KEY.PATH: message`` on stderr, never with a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys

from .errors import ScenarioError
from .loader import load_scenario

EXIT_OK = 0
EXIT_INVALID = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # type: ignore[override]
        self.exit(EXIT_INVALID, f"{self.prog}: {message}\n")


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="python -m harness.scenario", description="Validate voxload scenario files.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    check = sub.add_parser("check", help="validate scenario files (paths or bare names such as 'smoke')")
    check.add_argument("scenarios", nargs="+", metavar="SCENARIO")
    show = sub.add_parser("show", help="print the resolved scenario (defaults applied, event expanded) as JSON")
    show.add_argument("scenario", metavar="SCENARIO")
    args = parser.parse_args(argv)

    if args.command == "show":
        try:
            print(json.dumps(load_scenario(args.scenario).to_dict(), indent=2))
        except ScenarioError as exc:
            print("\n".join(exc.lines()), file=sys.stderr)
            return EXIT_INVALID
        return EXIT_OK

    code = EXIT_OK
    for name in args.scenarios:
        try:
            scenario = load_scenario(name)
        except ScenarioError as exc:
            print("\n".join(exc.lines()), file=sys.stderr)
            code = EXIT_INVALID
            continue
        print(f"{scenario.source_path}: ok ({scenario.name}: {len(scenario.event.booths)} booths, "
              f"{scenario.load.peak_listeners} listeners at peak, {scenario.load.total_duration_s:g} s, {len(scenario.slos)} SLOs)")
    return code


if __name__ == "__main__":
    sys.exit(main())
