"""The `voxload` command line: argument parsing, one-line user errors and exit codes.

Exit codes are ``harness.errors.ExitCode`` (shared by every subcommand and the locustfile). User errors print
one line on stderr and never a traceback; they exit 2 before anything starts. Paths are made absolute where
they enter (``harness.inputs``): the children (Locust, the embedded stack) run in other working directories.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import signal
import sys
import threading
import time
from pathlib import Path

from . import __version__
from .errors import ExitCode, UserError
from .inputs import absolute_path, folder_argument, run_id_argument, url_argument


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


def _knob(text: str) -> tuple[str, str]:
    from .refstack.portal.config import KNOBS

    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"{text!r}: expected KEY=VALUE")
    if key not in KNOBS:
        raise argparse.ArgumentTypeError(f"unknown knob {key!r} (see `voxload stack up --help`)")
    return key, value


def _knob_epilog() -> str:
    from .refstack.portal.config import KNOBS

    width = max(map(len, KNOBS))
    lines = ["portal knobs (environment variables, or --set KEY=VALUE):"]
    lines += [f"  {name.ljust(width)}  {text}" for name, text in KNOBS.items()]
    lines.append("")
    lines.append("media relay fault flags are passed with --media-arg (see `python -m harness.refstack.media --help`).")
    return "\n".join(lines)


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
        epilog=_knob_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    up.add_argument("--host", type=_loopback_host, default="127.0.0.1", metavar="ADDR", help="loopback address to bind (default 127.0.0.1)")
    up.add_argument("--portal-port", type=_port, default=8000, metavar="PORT", help="portal HTTP port (default 8000)")
    up.add_argument("--media-port", type=_port, default=8889, metavar="PORT", help="WHIP/WHEP HTTP port (default 8889)")
    up.add_argument("--media-api-port", type=_port, default=9997, metavar="PORT", help="media control API port (default 9997)")
    up.add_argument("--no-media", action="store_true", help="start the portal only")
    up.add_argument("--data-dir", type=folder_argument, metavar="DIR", help="where the SQLite file and logs go (default: a temporary directory)")
    up.add_argument("--set", dest="knobs", type=_knob, action="append", default=[], metavar="KEY=VALUE", help="set a portal knob (repeatable)")
    up.add_argument("--media-arg", dest="media_args", action="append", default=[], metavar="ARG", help="extra argument for the media relay (repeatable)")
    up.set_defaults(func=cmd_stack_up)
    rehearse = sub.add_parser(
        "rehearse",
        help="run a rehearsal: the scenario's load against --host, or against the embedded reference stack",
        description="Runs `locust -f scenarios/conference.py --headless` for SCENARIO and leaves results in RESULTS_DIR/<run-id>/.",
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
        command.set_defaults(func=lambda args, owner=owner: owner.run(args, UserError))
    return parser


def cmd_rehearse(args: argparse.Namespace) -> int:
    import subprocess

    from .clients.tokens import ADMIN_PASSWORD_ENV_VAR
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
    # Absolute paths: Locust resolves them again in its own process, and the stack's children elsewhere.
    cmd = [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "--only-summary",
           "--scenario", str(absolute_path(scenario.source_path)), "--results-dir", args.results_dir]
    if args.host:
        cmd += ["--host", args.host]
    if args.run_id:
        cmd += ["--run-id", args.run_id]
    if args.keep:
        cmd.append("--keep")
    return subprocess.call(cmd)


def cmd_stack_up(args: argparse.Namespace) -> int:
    from .refstack.portal.config import ConfigError, Settings
    from .refstack.stack import Stack, StackConfig, StackError

    # Knob values are checked here so a typo is one line, not a traceback in the portal's log.
    try:
        Settings.from_env({**os.environ, **dict(args.knobs)})
    except ConfigError as exc:
        raise UserError(str(exc)) from None
    config = StackConfig(
        host=args.host,
        portal_port=args.portal_port,
        media_http_port=args.media_port,
        media_api_port=args.media_api_port,
        with_media=not args.no_media,
        data_dir=args.data_dir,
        portal_env=dict(args.knobs),
        media_args=list(args.media_args),
    )
    stack = Stack(config)
    t0 = time.monotonic()
    try:
        stack.check_ports()
        if config.with_media:
            stack.start_media()
    except StackError as exc:
        stack.stop()
        raise UserError(str(exc)) from None
    password_note = "(from ADMIN_PASSWORD)" if "ADMIN_PASSWORD" in os.environ or "ADMIN_PASSWORD" in config.portal_env else stack.admin_password
    problems: list[str] = []

    def announce_when_ready() -> None:
        if not stack.wait_portal_ready(config.startup_timeout_s):
            return  # the portal failed to start: reported when serving returns
        print(f"voxload reference stack ready in {time.monotonic() - t0:.1f} s", flush=True)
        print(f"  portal          {stack.portal_url}   (admin: {stack.portal_url}/admin/login)")
        if config.with_media:
            print(f"  WHIP/WHEP       {stack.media_http_url}")
            print(f"  media API       {stack.media_api_url}")
        print(f"  admin password  {password_note}")
        print(f"  data and logs   {stack.data_dir}")
        print("Ctrl-C or SIGTERM stops it.", flush=True)

    def watch_relay() -> None:
        while stack.media_proc is not None and stack.media_proc.poll() is None:
            time.sleep(0.5)
        if stack.media_proc is not None and not stopping.is_set():
            where = f"log in {stack.data_dir}" if config.data_dir else "pass --data-dir to keep its log"
            problems.append(f"media relay exited unexpectedly with code {stack.media_proc.returncode} ({where})")
            os.kill(os.getpid(), signal.SIGTERM)  # stops the portal served below

    stopping = threading.Event()
    # uvicorn handles SIGINT/SIGTERM while it serves and re-raises them after its graceful shutdown;
    # these handlers make that re-raise end the wait here instead of killing the process before cleanup.
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    threading.Thread(target=announce_when_ready, daemon=True).start()
    threading.Thread(target=watch_relay, daemon=True).start()
    try:
        # This process becomes the portal (one process fewer than a supervisor plus two children).
        stack.serve_portal_here()
    except KeyboardInterrupt:
        pass
    except SystemExit as exc:
        if exc.code not in (0, None):
            problems.append(f"portal exited with code {exc.code} during startup (log in {stack.data_dir / 'portal.log'})")
    finally:
        stopping.set()
        stack.stop()
    for problem in problems:
        print(f"voxload: {problem}", file=sys.stderr)
    print("voxload reference stack stopped.", flush=True)
    return ExitCode.USAGE if problems else ExitCode.OK


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
