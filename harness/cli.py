"""The `voxload` command line: argument parsing, one-line user errors and exit codes.

Exit codes are ``harness.errors.ExitCode`` (shared by every subcommand and the locustfile; README "Exit codes",
``voxload rehearse --help``). User errors print one line on stderr and never a traceback; they exit 2 before anything
starts. Paths are made absolute where they enter (``harness.inputs``): the children (Locust, the embedded stack) run
in other working directories.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import signal
import sys
import time
from pathlib import Path

from . import __version__
from .errors import ExitCode, UserError, exit_codes_help
from .results.layout import REPORT_HTML, RUN_JSON, SUMMARY_JSON
from .target import stack_up
from .inputs import absolute_path, folder_argument, run_id_argument, url_argument

# A second Ctrl-C asks Locust to stop at once; if it has not exited this long after, its process group is killed.
HARD_STOP_GRACE_S = 10.0


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (no usage block) and exit code 2."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(ExitCode.USAGE, f"{self.prog}: {message} (see --help)\n")


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError(f"{value} is not a port number (1-65535)")
    return value


def _loopback_host(text: str) -> str:
    # Standards: the embedded target only ever listens on loopback.
    host = "127.0.0.1" if text == "localhost" else text
    try:
        if ipaddress.ip_address(host).is_loopback:
            return host
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"{text!r} is not a loopback address (the reference stack only binds 127.0.0.0/8)")


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    parser = _Parser(prog="voxload", description="Load and capacity harness for VoxBento.")
    parser.add_argument("--version", action="version", version=f"voxload {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    stack = sub.add_parser("stack", help="the embedded reference target (VoxBento-compatible portal + MediaMTX-compatible relay)")
    stack_sub = stack.add_subparsers(dest="stack_command", metavar="ACTION", parser_class=_Parser)
    stack_sub.required = True
    up = stack_sub.add_parser(
        "up",
        help="start the reference stack on loopback until Ctrl-C or SIGTERM",
        description="Start the reference portal and media relay on loopback with VoxBento's default ports.",
        epilog=stack_up.knob_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    up.add_argument("--host", type=_loopback_host, default="127.0.0.1", metavar="ADDR", help="loopback address to bind (default 127.0.0.1)")
    up.add_argument("--portal-port", type=_port, default=8000, metavar="PORT", help="portal HTTP port (default 8000)")
    up.add_argument("--media-port", type=_port, default=8889, metavar="PORT", help="WHIP/WHEP HTTP port (default 8889)")
    up.add_argument("--media-api-port", type=_port, default=9997, metavar="PORT", help="media control API port (default 9997)")
    up.add_argument("--media-rtsp-port", type=_port, default=8554, metavar="PORT",
                    help="media RTSP port, where transcription workers read booths (MEDIAMTX_RTSP_BASE; default 8554)")
    up.add_argument("--no-media", action="store_true", help="start the portal only")
    up.add_argument("--data-dir", type=folder_argument, metavar="DIR", help="where the SQLite file and logs go (default: a temporary directory)")
    up.add_argument("--set", dest="knobs", type=stack_up.knob, action="append", default=[], metavar="KEY=VALUE", help="set a portal knob (repeatable)")
    up.add_argument("--media-arg", dest="media_args", action="append", default=[], metavar="ARG", help="extra argument for the media relay (repeatable)")
    up.add_argument("--voxbento", type=Path, metavar="DIR",
                    help="run the real VoxBento portal from DIR (a shared/voxbento/setup.sh DEST, or a checkout with its "
                         ".venv) instead of the reference portal, with our relay as its media server; VoxBento settings "
                         "ADMIN_PASSWORD, SECRET_KEY, BOOTH_ACCESS_TOKEN, DEBUG come from the environment")
    up.set_defaults(func=stack_up.cmd_stack_up)
    rehearse = sub.add_parser(
        "rehearse",
        help="run a rehearsal: the scenario's load against --host, or against the embedded reference stack",
        description="Runs `locust -f scenarios/conference.py --headless` for SCENARIO and leaves results in RESULTS_DIR/<run-id>/. "
                    "Ctrl-C stops the users in order and still writes the summary, JUnit and report (exit 130); "
                    "a second Ctrl-C stops at once and leaves a partial report.",
        epilog=exit_codes_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rehearse.add_argument("scenario", nargs="?", default="conference", metavar="SCENARIO",
                          help="scenario name (scenarios/NAME.yaml) or YAML file (default conference)")
    rehearse.add_argument("--host", type=url_argument, metavar="URL",
                          help="a VoxBento deployment you own (admin password in $VOXLOAD_ADMIN_PASSWORD)")
    rehearse.add_argument("--run-id", type=run_id_argument, metavar="ID")
    rehearse.add_argument("--results-dir", type=folder_argument, default="reports", metavar="DIR")
    rehearse.add_argument("--keep", action="store_true", help="keep the provisioned event on the target")
    rehearse.set_defaults(func=cmd_rehearse)

    # Subcommands whose arguments belong to their own packages. Their modules pull in pandas and matplotlib
    # (~100 MiB, ~2 s), so they are imported only when selected: `voxload stack up` stays small.
    selected = next((a for a in (argv or []) if not a.startswith("-")), None)
    for name, module, help_text in (
        ("probe", "harness.probes.cli", "push one known VoxBento limit and state a finding"),
        ("report", "harness.report.cli", "build the capacity sign-off report of a run folder"),
    ):
        if selected != name:
            sub.add_parser(name, help=help_text)
            continue
        import importlib

        owner = importlib.import_module(module)
        command = sub.add_parser(name, help=help_text, description=owner.DESCRIPTION)
        owner.add_arguments(command)
        command.set_defaults(func=owner.run)
    return parser


def cmd_rehearse(args: argparse.Namespace) -> int:
    from .clients.tokens import ADMIN_PASSWORD_ENV_VAR
    from .results.run_folder import new_run_id
    from .scenario import ScenarioError, load_scenario

    try:
        scenario = load_scenario(args.scenario)  # fail fast, one line, before Locust starts
    except ScenarioError as exc:
        raise UserError(str(exc)) from None
    host = args.host or scenario.target.host
    if host and not os.environ.get(ADMIN_PASSWORD_ENV_VAR):
        raise UserError(f"--host {host} needs the target's admin password in ${ADMIN_PASSWORD_ENV_VAR}")
    if args.run_id and (Path(args.results_dir) / args.run_id).exists():
        raise UserError(f"run directory {Path(args.results_dir) / args.run_id} already exists: choose another run id")
    locustfile = Path(__file__).resolve().parents[1] / "scenarios" / "conference.py"
    if not locustfile.exists():
        raise UserError(f"{locustfile} not found (run voxload from a checkout: pip install -e .)")
    # The run id is chosen here so that this process knows the folder if it has to finish it after a hard stop.
    # Absolute paths: Locust resolves them again in its own process, and the stack's children elsewhere.
    run_id = args.run_id or new_run_id()
    cmd = [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "--only-summary",
           "--scenario", str(absolute_path(scenario.source_path)), "--results-dir", args.results_dir, "--run-id", run_id]
    if args.host:
        cmd += ["--host", args.host]
    if args.keep:
        cmd.append("--keep")
    return _run_locust(cmd, Path(args.results_dir) / run_id)


def _run_locust(cmd: list[str], run_path: Path) -> int:
    """Run Locust as a child and forward Ctrl-C to it, instead of subprocess.call's SIGKILL after 0.25 s.

    The child gets its own process group, so a terminal's Ctrl-C reaches Locust once, through us: the first
    one makes it stop its users in order and judge what was measured (exit 130); the second one makes it stop
    at once, and this process then writes the partial report (killing the group if Locust does not exit)."""
    import subprocess

    proc = subprocess.Popen(cmd, start_new_session=True)
    interrupts = 0
    hard_stop_at: float | None = None

    def forward(signum, _frame) -> None:
        nonlocal interrupts, hard_stop_at
        if signum == signal.SIGINT:
            interrupts += 1
            if interrupts == 2:
                hard_stop_at = time.monotonic() + HARD_STOP_GRACE_S
        try:
            os.kill(proc.pid, signum)  # SIGTERM too: Locust stops in order and the run is judged partial (exit 3)
        except ProcessLookupError:
            pass

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while True:
            try:
                code = proc.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                if hard_stop_at is not None and time.monotonic() > hard_stop_at:
                    os.killpg(proc.pid, signal.SIGKILL)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if interrupts and not ((run_path / SUMMARY_JSON).exists() and (run_path / REPORT_HTML).exists()):
        # A second Ctrl-C, or Locust died before its orderly end (e.g. Ctrl-C while it was still importing).
        _finish_hard_stopped(run_path)
    return ExitCode.INTERRUPTED if interrupts else code


def _finish_hard_stopped(run_path: Path) -> None:
    """After a second Ctrl-C: the folder says interrupted and gets a report that says it is partial."""
    from .report import ReportError, build_report
    from .results.run_folder import InvalidTransition, RunDirectory, RunStatus

    if not (run_path / RUN_JSON).exists():
        return
    try:
        RunDirectory.open(run_path).finish(RunStatus.INTERRUPTED, exit_code=ExitCode.INTERRUPTED,
                                           error="stopped at once by a second Ctrl-C")
    except (InvalidTransition, OSError, ValueError):
        pass  # Locust marked it already
    try:
        paths = build_report(run_path)
        print(f"voxload report (partial): {paths.html}", file=sys.stderr, flush=True)
    except ReportError as exc:
        print(f"voxload: partial report not built: {exc}", file=sys.stderr, flush=True)



def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UserError as exc:
        print(f"voxload: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    except KeyboardInterrupt:
        print("voxload: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
