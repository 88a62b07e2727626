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
import threading
import time
from pathlib import Path

from . import __version__
from .errors import ExitCode, UserError, exit_codes_help
from .results.layout import REPORT_HTML, RUN_JSON, SUMMARY_JSON
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
    up.add_argument("--media-rtsp-port", type=_port, default=8554, metavar="PORT",
                    help="media RTSP port, where transcription workers read booths (MEDIAMTX_RTSP_BASE; default 8554)")
    up.add_argument("--no-media", action="store_true", help="start the portal only")
    up.add_argument("--data-dir", type=folder_argument, metavar="DIR", help="where the SQLite file and logs go (default: a temporary directory)")
    up.add_argument("--set", dest="knobs", type=_knob, action="append", default=[], metavar="KEY=VALUE", help="set a portal knob (repeatable)")
    up.add_argument("--media-arg", dest="media_args", action="append", default=[], metavar="ARG", help="extra argument for the media relay (repeatable)")
    up.add_argument("--voxbento", type=Path, metavar="DIR",
                    help="run the real VoxBento portal from DIR (a shared/voxbento/setup.sh DEST, or a checkout with its "
                         ".venv) instead of the reference portal, with our relay as its media server; VoxBento settings "
                         "ADMIN_PASSWORD, SECRET_KEY, BOOTH_ACCESS_TOKEN, DEBUG come from the environment")
    up.set_defaults(func=cmd_stack_up)
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
        command.set_defaults(func=lambda args, owner=owner: owner.run(args, UserError))
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


def cmd_stack_up(args: argparse.Namespace) -> int:
    if args.voxbento is not None:
        return cmd_stack_up_voxbento(args)
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
        media_rtsp_port=args.media_rtsp_port,
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
            print(f"  RTSP            {stack.media_rtsp_url}")
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


def cmd_stack_up_voxbento(args: argparse.Namespace) -> int:
    """`stack up --voxbento DIR`: the real portal (its own environment) and our relay, supervised until Ctrl-C/SIGTERM."""
    import tempfile

    from .refstack.stack import StackError
    from .target.voxbento import OPERATOR_SETTINGS, Layout, VoxBentoError, VoxBentoStack, VoxBentoUnavailable

    if args.no_media:
        raise UserError("--voxbento runs our relay as VoxBento's media server; --no-media does not apply")
    if args.knobs:
        raise UserError("--set knobs belong to the reference portal; give VoxBento its settings through the environment")
    if args.host != "127.0.0.1":
        raise UserError("--voxbento binds 127.0.0.1 only (VoxBento's own uvicorn setting)")
    try:
        layout = Layout.find(args.voxbento)
    except VoxBentoUnavailable as exc:
        raise UserError(str(exc)) from None
    tmp = None if args.data_dir else tempfile.TemporaryDirectory(prefix="voxload-voxbento-")
    data_dir = args.data_dir or Path(tmp.name)
    settings = {k: os.environ[k] for k in OPERATOR_SETTINGS if os.environ.get(k)}
    stack = VoxBentoStack(layout, data_dir, portal_port=args.portal_port, media_port=args.media_port,
                          media_api_port=args.media_api_port, rtsp_port=args.media_rtsp_port, settings=settings,
                          media_args=list(args.media_args))
    stopping = threading.Event()
    # SIGTERM and Ctrl-C both end the wait below; the stack is then stopped in order (portal, then relay).
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    t0 = time.monotonic()
    try:
        try:
            stack.start()
        except (StackError, VoxBentoError) as exc:
            raise UserError(str(exc)) from None
        password_note = "(from ADMIN_PASSWORD)" if "ADMIN_PASSWORD" in settings else stack.admin_password
        mode = "auth mode (BOOTH_ACCESS_TOKEN set)" if stack.booth_access_token else "open mode (BOOTH_ACCESS_TOKEN empty)"
        print(f"voxload VoxBento stack ready in {time.monotonic() - t0:.1f} s", flush=True)
        print(f"  portal          {stack.portal_url}   (admin: {stack.portal_url}/admin/login)  VoxBento from {layout.app_dir}, {mode}")
        print(f"  WHIP/WHEP       {stack.media_url}   (our relay as MediaMTX)")
        print(f"  media API       {stack.media_api_url}")
        print(f"  RTSP            rtsp://{stack.host}:{stack.rtsp_port}   (VoxBento's MEDIAMTX_RTSP_BASE)")
        print(f"  admin password  {password_note}")
        print(f"  data and logs   {stack.data_dir}")
        print("Ctrl-C or SIGTERM stops it.", flush=True)
        try:
            while not stopping.wait(0.5):
                if stack.problem:
                    raise UserError(f"{stack.problem} (log in {stack.data_dir})")
        except KeyboardInterrupt:
            pass
    finally:
        stack.stop()
        if tmp is not None:
            tmp.cleanup()
    print("voxload VoxBento stack stopped.", flush=True)
    return ExitCode.OK


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
