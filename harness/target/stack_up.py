"""`voxload stack up`: the reference stack (or the real VoxBento with our relay) in the foreground until Ctrl-C.

The one place outside the stack child (`stack_child.py`) that imports the reference target: the CLI parses, this runs.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time

from ..errors import ExitCode, UserError


def knob(text: str) -> tuple[str, str]:
    from ..refstack.portal.config import KNOBS

    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"{text!r}: expected KEY=VALUE")
    if key not in KNOBS:
        raise argparse.ArgumentTypeError(f"unknown knob {key!r} (see `voxload stack up --help`)")
    return key, value


def knob_epilog() -> str:
    from ..refstack.portal.config import KNOBS

    width = max(map(len, KNOBS))
    lines = ["portal knobs (environment variables, or --set KEY=VALUE):"]
    lines += [f"  {name.ljust(width)}  {text}" for name, text in KNOBS.items()]
    lines.append("")
    lines.append("media relay fault flags are passed with --media-arg (see `python -m harness.refstack.media --help`).")
    return "\n".join(lines)


def cmd_stack_up(args: argparse.Namespace) -> int:
    if args.voxbento is not None:
        return cmd_stack_up_voxbento(args)
    from ..refstack.portal.config import ConfigError, Settings
    from ..refstack.stack import Stack, StackConfig, StackError

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

    from ..refstack.stack import StackError
    from .voxbento import OPERATOR_SETTINGS, Layout, VoxBentoError, VoxBentoStack, VoxBentoUnavailable

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
