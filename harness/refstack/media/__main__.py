"""Command line of the reference media relay: ``python -m harness.refstack.media --help``.

``harness/refstack/stack.py`` starts it as ``--host H --http-port P --api-port Q --rtsp-port R [fault flags]``;
the process serves WHIP/WHEP on the HTTP port, the control API on the API port and RTSP readers on the RTSP
port until SIGTERM/SIGINT, then closes every session. Bad flags or the wrong aiortc/aioice versions print one line and exit 2; a port in use prints
one line and exits 1. aiortc is imported with the first WHIP/WHEP session (``relay.py``): an idle relay stays
small (``voxload stack up`` keeps it idle until something publishes).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys

from aiohttp import web

from harness.rtc import pins

from .control_api import ControlApi
from .faults import FaultConfig, FaultConfigError
from .relay import MediaRelay
from .rtsp_server import DEFAULT_READ_TIMEOUT_S, DEFAULT_RTSP_PORT, RtspServer
from .whip_server import WhipServer

logger = logging.getLogger("harness.refstack.media")


def _port(raw: str) -> int:
    value = int(raw)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{raw}: not a TCP port")
    return value


def _non_negative(raw: str) -> float:
    value = float(raw)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{raw}: must be >= 0")
    return value


def _positive(raw: str) -> float:
    value = float(raw)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{raw}: must be > 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m harness.refstack.media",
        description="MediaMTX-compatible WHIP/WHEP audio relay of the voxload reference stack. Forwards Opus RTP "
        "payloads unchanged from each path's publisher to its readers. Path configuration is in memory only.",
    )
    net = parser.add_argument_group("addresses")
    net.add_argument("--host", default="127.0.0.1", help="address to bind both HTTP servers to (default 127.0.0.1); "
                     "ICE host candidates are always 127.0.0.1")
    net.add_argument("--http-port", type=_port, default=8889, metavar="PORT", help="WHIP/WHEP HTTP port (MediaMTX webrtcAddress, default 8889)")
    net.add_argument("--api-port", type=_port, default=9997, metavar="PORT", help="control API port (MediaMTX api, default 9997)")
    net.add_argument("--rtsp-port", type=_port, default=DEFAULT_RTSP_PORT, metavar="PORT",
                     help=f"RTSP port for readers, TCP interleaved (MediaMTX rtspAddress, default {DEFAULT_RTSP_PORT})")
    net.add_argument("--no-rtsp", action="store_true", help="serve no RTSP (MediaMTX rtsp: no)")
    net.add_argument("--allow-origin", default="*", metavar="ORIGIN", help="Access-Control-Allow-Origin on WHIP/WHEP responses (default *)")
    faults = parser.add_argument_group("faults (also settable at run time: POST /v3/refstack/faults on the API port)")
    faults.add_argument("--delay-ms", type=_non_negative, default=0.0, metavar="MS", help="one-way delay added to every forwarded packet")
    faults.add_argument("--loss-pct", type=_non_negative, default=0.0, metavar="PCT", help="random loss per reader and packet, 0..100")
    faults.add_argument("--stall", action="store_true", help="start stalled: forward nothing until stall is set false")
    faults.add_argument("--seed", type=int, default=None, metavar="N", help="seed of the per-reader loss generators (default: unseeded)")
    sessions = parser.add_argument_group("sessions")
    sessions.add_argument("--handshake-timeout-s", type=_non_negative, default=10.0, metavar="S",
                          help="close a session whose ICE+DTLS is not up after this long (MediaMTX webrtcHandshakeTimeout, default 10)")
    sessions.add_argument("--rtsp-read-timeout-s", type=_positive, default=DEFAULT_READ_TIMEOUT_S, metavar="S",
                          help="close an RTSP connection that sends nothing for this long unless it is playing "
                               f"(MediaMTX readTimeout, default {DEFAULT_READ_TIMEOUT_S:g})")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="relay log level (default INFO)")
    return parser


async def serve(args: argparse.Namespace, faults: FaultConfig) -> None:
    relay = MediaRelay(faults, handshake_timeout_s=args.handshake_timeout_s)
    rtsp = None if args.no_rtsp else RtspServer(relay, advertised_host=args.host, read_timeout_s=args.rtsp_read_timeout_s)
    runners = [web.AppRunner(WhipServer(relay, args.allow_origin).app(), access_log=None),
               web.AppRunner(ControlApi(relay, rtsp).app(), access_log=None)]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        # RTSP first: the control API answering is the readiness signal (stack.py), so every listener is up by then.
        if rtsp is not None:
            await rtsp.start(args.host, args.rtsp_port)
        for runner, port in zip(runners, (args.http_port, args.api_port)):
            await runner.setup()
            await web.TCPSite(runner, args.host, port).start()
        logger.info("relay up: WHIP/WHEP http://%s:%d, API http://%s:%d, RTSP %s, faults %s",
                    args.host, args.http_port, args.host, args.api_port,
                    f"rtsp://{args.host}:{args.rtsp_port}" if rtsp is not None else "off", faults.as_dict())
        await stop.wait()
    finally:
        if rtsp is not None:
            await rtsp.close()
        await relay.close()
        for runner in runners:
            await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # media-design 6.3: aioice logs several INFO lines per connection.
    for noisy in ("aioice", "aiortc"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    try:
        faults = FaultConfig(delay_ms=args.delay_ms, loss_pct=args.loss_pct, stall=args.stall, seed=args.seed)
        # Versions only: aiortc itself is imported (and its patched internals checked) with the first session.
        pins.check_installed_versions()
    except (FaultConfigError, pins.PinnedVersionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with contextlib.suppress(ImportError):
        import uvloop  # media-design 1: ~20 % less CPU per reader in the RTP path

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    try:
        asyncio.run(serve(args, faults))
    except OSError as exc:
        print(f"error: cannot serve: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
