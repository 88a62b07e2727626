"""The media engine process: ``python -m harness.media.engine --socket PATH --results-dir DIR``.

A plain asyncio process (uvloop when installed) that hosts many WHIP publishers and WHEP listeners,
answers JSON-lines RPC (rpc.py) on a Unix socket, streams samples to append-only files (samples.py) and
pushes per-second aggregates (aggregate.py) plus its own health (health.py) to the connected client.
It never imports gevent or locust (``hello`` reports both as not imported; media-design 5: its own GIL
and core, no distortion of Locust's timings).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from pathlib import Path

import aiohttp

from . import rpc
from ..rtc import aiortc_patches
from .aggregate import IntervalAggregator
from ..rtc.audio import AudioParams
from .speech import AudioLibrary, AudioSource, CorpusError
from .errors import MediaError, SessionError, UnknownHandle, error_to_wire
from .health import EngineHealth
from .listener import ListenerMode, WhepListener
from .publisher import WhipPublisher
from .samples import SampleFiles
from .schedule import BoothSchedules, PublisherSchedule
from .session import MediaSession, SessionState, SessionTimeouts

logger = logging.getLogger("harness.media.engine")

# Sessions collected per slice of the per-second aggregation. Collecting is about 50 us per listener: 800
# listeners in one go would block the loop for ~40 ms once a second, which alone puts the loop-lag p95 (100
# probes a second) over 20 ms. Between slices the loop runs, so packets and probes are not held up.
COLLECT_SLICE_SESSIONS = 100


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


class Engine:
    def __init__(self, name: str, results_dir: Path, audio: AudioLibrary, timeouts: SessionTimeouts,
                 interval_s: float = 1.0, silence_threshold_ms: float = 200.0, health: EngineHealth | None = None) -> None:
        self.name = name
        self.audio = audio
        self.timeouts = timeouts
        self.interval_s = interval_s
        self.silence_threshold_ms = silence_threshold_ms
        self.samples = SampleFiles(results_dir, name)
        self.health = health or EngineHealth()
        self.sessions: dict[str, MediaSession] = {}
        self.schedules: dict[str, BoothSchedules] = {}
        self.aggregator = IntervalAggregator()
        self._counter = 0
        self._writer: asyncio.StreamWriter | None = None
        self._http: aiohttp.ClientSession | None = None
        self._stopped = asyncio.Event()
        self._client_done: asyncio.Event | None = None
        self._disconnect_reported: set[str] = set()

    # --- lifecycle ---
    async def run(self, socket_path: str) -> None:
        self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        self.health.start()
        ticker = asyncio.ensure_future(self._tick())
        server = await asyncio.start_unix_server(self._serve_client, path=socket_path, limit=rpc.MAX_LINE_BYTES)
        logger.info("engine %s ready on %s (pid %d)", self.name, socket_path, os.getpid())
        try:
            await self._stopped.wait()
        finally:
            server.close()
            ticker.cancel()
            await self._close_all()
            self.health.stop()
            await self._http.close()
            await self._emit_interval()
            self.samples.close()
            await self._disconnect_client()

    async def _disconnect_client(self) -> None:
        # Closing our end lets the reader task finish on EOF instead of being cancelled at loop shutdown.
        if self._writer is not None:
            self._writer.close()
        if self._client_done is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._client_done.wait(), timeout=1.0)

    def stop(self) -> None:
        self._stopped.set()

    async def _close_all(self) -> None:
        sessions = list(self.sessions.values())
        self.sessions.clear()
        await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)

    # --- RPC ---
    async def _serve_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        self._client_done = done = asyncio.Event()
        try:
            while True:
                try:
                    line = await reader.readline()
                except (ConnectionError, ValueError):
                    break  # reset, or a line over MAX_LINE_BYTES: the client is gone or broken
                if not line:
                    break
                try:
                    message = rpc.decode(line)
                except ValueError as exc:
                    logger.warning("engine %s: bad RPC line dropped: %s", self.name, exc)
                    continue
                asyncio.ensure_future(self._handle(message))
        finally:
            done.set()
            if self._writer is writer:
                self._writer = None
            # The client went away (the bridge stopped or died): nobody is left to drive this engine.
            self.stop()

    def _send(self, message: dict) -> None:
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(rpc.encode(message))

    async def _handle(self, message: dict) -> None:
        request_id = message.get("id")
        op = message.get("op")
        try:
            if op not in rpc.OPS:
                raise MediaError(f"unknown op {op!r}")
            result = await getattr(self, f"_op_{op}")(**message.get("args", {}))
            self._send({"id": request_id, "ok": True, "result": result})
        except MediaError as exc:
            self._send({"id": request_id, "ok": False, "error": error_to_wire(exc)})
        except Exception as exc:  # a bug of ours: report it instead of leaving the caller waiting
            logger.exception("engine %s: %s failed", self.name, op)
            self._send({"id": request_id, "ok": False, "error": {"type": "MediaError", "message": f"{type(exc).__name__}: {exc}"}})

    async def _op_hello(self) -> dict:
        return {
            "engine": self.name,
            "pid": os.getpid(),
            "protocol": rpc.PROTOCOL_VERSION,
            "loop": type(asyncio.get_running_loop()).__module__,
            "imported": {"gevent": "gevent" in sys.modules, "locust": "locust" in sys.modules},
            "loop_packets": self.audio.length,
        }

    def _new_handle(self, kind: str) -> str:
        self._counter += 1
        return f"{self.name}:{kind}{self._counter}"

    async def _op_publish(self, whip_url: str, booth: str, language: str | None = None) -> dict:
        # The booth's language picks the speech loop (speech.py); every loop shares one payload index.
        loop = self.audio.loop_for(language)
        publisher = WhipPublisher(self._new_handle("p"), whip_url, booth, loop, self._http, self.timeouts)
        await self._setup(publisher, "publisher")
        schedule = publisher.schedule
        self._booth_schedules(booth).add(schedule)
        return {"handle": publisher.handle, "setup": publisher.setup_times.__dict__, "schedule": schedule.to_wire()}

    async def _op_listen(self, whep_url: str, booth: str, mode: str = "listener", schedules: list | None = None) -> dict:
        try:
            listener_mode = ListenerMode(mode)
        except ValueError:
            raise MediaError(f"unknown listener mode {mode!r}") from None
        booth_schedules = self._booth_schedules(booth)
        for wire in schedules or []:
            booth_schedules.add(PublisherSchedule.from_wire(wire))
        listener = WhepListener(
            self._new_handle("l"), whep_url, booth, self.audio.listening, booth_schedules, self._http, self.timeouts,
            mode=listener_mode, silence_threshold_ms=self.silence_threshold_ms,
        )
        await self._setup(listener, listener_mode.value)
        return {"handle": listener.handle, "setup": listener.setup_times.__dict__}

    async def _op_schedule(self, booth: str, schedule: dict) -> dict:
        self._booth_schedules(booth).add(PublisherSchedule.from_wire(schedule))
        return {}

    async def _op_close(self, handle: str) -> dict:
        session = self.sessions.pop(handle, None)
        if session is None:
            raise UnknownHandle(f"engine {self.name} holds no session {handle}")
        self._collect(session)  # the last partial interval still counts
        await session.close()
        transitions = [f"{a.value}->{b.value}" for a, b in session.transitions]
        self.samples.event({"event": "close", "t_epoch_s": round(time.time(), 3), "handle": handle, "transitions": transitions})
        return {"transitions": transitions}

    async def _op_shutdown(self) -> dict:
        asyncio.get_running_loop().call_soon(self.stop)
        return {}

    def _booth_schedules(self, booth: str) -> BoothSchedules:
        return self.schedules.setdefault(booth, BoothSchedules())

    async def _setup(self, session: MediaSession, role: str) -> None:
        booth = session.booth  # type: ignore[attr-defined]
        self.sessions[session.handle] = session
        event = {"event": "setup", "t_epoch_s": round(time.time(), 3), "handle": session.handle, "booth": booth, "role": role}
        try:
            times = await session.setup()
        except SessionError as exc:
            self.sessions.pop(session.handle, None)
            self.aggregator.add_setup(booth, role, False, None, None)
            self.samples.event({**event, "ok": False, "phase": exc.phase, "error": type(exc).__name__, "message": str(exc)})
            await session.close()
            raise
        self.aggregator.add_setup(booth, role, True, times.connected_ms, times.first_packet_ms)
        self.samples.event({**event, "ok": True, **{k: _round(v) for k, v in times.__dict__.items()}})

    # --- per-interval samples and aggregates ---
    async def _tick(self) -> None:
        next_s = time.monotonic() + self.interval_s
        while True:
            await asyncio.sleep(max(0.0, next_s - time.monotonic()))
            next_s += self.interval_s  # absolute schedule: a late tick does not shift the next ones
            await self._emit_interval()

    def _collect(self, session: MediaSession) -> None:
        now_s = time.time()
        t = round(now_s, 3)
        if isinstance(session, WhepListener):
            rtp, latencies, unknown, probe = session.take_interval(now_s)
            role = session.mode.value
            self.aggregator.add_listener(session.booth, role, rtp, latencies, unknown, probe)
            lat = sorted(latencies)
            self.samples.listener_row({
                "t_epoch_s": t, "engine": self.name, "handle": session.handle, "booth": session.booth, "role": role,
                "packets": rtp.packets, "expected": rtp.expected, "lost": rtp.lost, "jitter_ms": round(rtp.jitter_ms, 3),
                "latency_p50_ms": _round(lat[len(lat) // 2]) if lat else None,
                "latency_p95_ms": _round(lat[min(len(lat) - 1, int(len(lat) * 0.95))]) if lat else None,
                "latency_max_ms": _round(lat[-1]) if lat else None,
                "gaps": rtp.gaps, "gap_packets_max": rtp.gap_packets_max,
                "silence_max_ms": round(max([rtp.ongoing_silence_ms, *rtp.silences_ms]), 1),
                "max_interarrival_ms": round(rtp.max_interarrival_ms, 1),
                "restarts": rtp.restarts, "unknown_payloads": unknown,
                "marker_latency_ms": _round(sum(probe.marker_latencies_ms) / len(probe.marker_latencies_ms)) if probe and probe.marker_latencies_ms else None,
                "markers": probe.markers if probe else None,
                "markers_skipped": probe.markers_skipped if probe else None,
                "decoded_gap_ms": round(probe.decoded_gap_ms, 1) if probe else None,
            })
            for silence_ms in rtp.silences_ms:
                self.samples.event({"event": "silence", "t_epoch_s": t, "handle": session.handle, "booth": session.booth, "duration_ms": round(silence_ms, 1)})
        elif isinstance(session, WhipPublisher):
            lateness = session.track.take_lateness_ms()
            self.aggregator.add_publisher(session.booth, len(lateness), lateness)
            lateness.sort()
            self.samples.publisher_row({
                "t_epoch_s": t, "engine": self.name, "handle": session.handle, "booth": session.booth,
                "packets_sent": len(lateness),
                "lateness_p95_ms": _round(lateness[min(len(lateness) - 1, int(len(lateness) * 0.95))]) if lateness else None,
                "lateness_max_ms": _round(lateness[-1]) if lateness else None,
            })
        if session.disconnected and session.handle not in self._disconnect_reported:
            self._disconnect_reported.add(session.handle)
            event = {"event": "disconnected", "t_epoch_s": t, "handle": session.handle, "booth": session.booth,
                     "connection_state": session.pc.connectionState}
            self.samples.event(event)
            self._send({"push": "event", "data": event})

    async def _emit_interval(self) -> None:
        listeners = publishers = 0
        for i, session in enumerate(list(self.sessions.values())):
            if i and i % COLLECT_SLICE_SESSIONS == 0:
                await asyncio.sleep(0)
            if self.sessions.get(session.handle) is not session:
                continue  # closed while the loop ran between slices: _op_close collected its last interval
            if session.state not in (SessionState.CONNECTED, SessionState.STREAMING):
                continue
            self._collect(session)
            if isinstance(session, WhepListener):
                listeners += 1
            else:
                publishers += 1
        groups = self.aggregator.take()
        packets = sum(g["packets"] for g in groups if g["role"] != "publisher")
        health = self.health.take_sample()
        record = {
            "engine": self.name,
            "t_epoch_s": round(time.time(), 3),
            "interval_s": self.interval_s,
            "health": {
                "cpu_pct": health.cpu_pct,
                "loop_lag_p95_ms": health.loop_lag_p95_ms,
                "loop_lag_max_ms": health.loop_lag_max_ms,
                "listeners": listeners,
                "publishers": publishers,
                "packets_per_listener_s": round(packets / listeners / self.interval_s, 2) if listeners else None,
                "saturated": health.saturated,
                "reasons": list(health.reasons),
            },
            "groups": groups,
        }
        if health.saturated:
            logger.warning("engine %s saturated: %s", self.name, "; ".join(health.reasons))
        self.samples.second(record)
        self.samples.flush()
        self._send({"push": "stats", "data": record})


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m harness.media.engine", description=__doc__.splitlines()[0])
    parser.add_argument("--socket", required=True, metavar="PATH", help="Unix socket to listen on")
    parser.add_argument("--results-dir", required=True, type=Path, metavar="DIR", help="where sample files are appended")
    parser.add_argument("--name", default="e0", help="engine name used in handles and file names")
    parser.add_argument("--ice-host", action="append", metavar="IP", help="ICE host candidate address (repeat; default 127.0.0.1)")
    parser.add_argument("--interval-s", type=float, default=1.0, metavar="SECONDS", help="aggregate/push interval")
    parser.add_argument("--silence-threshold-ms", type=float, default=200.0, metavar="MS")
    parser.add_argument("--lag-limit-ms", type=float, default=20.0, metavar="MS", help="loop lag p95 that flags saturation")
    parser.add_argument("--cpu-limit-pct", type=float, default=85.0, metavar="PCT", help="CPU share that flags saturation")
    parser.add_argument("--post-timeout-s", type=float, default=10.0, metavar="SECONDS")
    parser.add_argument("--connect-timeout-s", type=float, default=10.0, metavar="SECONDS")
    parser.add_argument("--first-packet-timeout-s", type=float, default=5.0, metavar="SECONDS")
    parser.add_argument("--cache-dir", type=Path, default=None, metavar="DIR", help="Opus loop cache (default ~/.cache/voxload/media)")
    parser.add_argument("--audio", choices=AudioSource.CHOICES, default=AudioSource.SPEECH,
                        help="what publishers play: the speech corpus in each booth's language (markers between "
                             "utterances), or the synthetic speech-like loop (a marker every 500 ms)")
    parser.add_argument("--audio-seed", type=int, default=AudioParams.seed, help="seed of the synthetic loop")
    parser.add_argument("--no-uvloop", action="store_true", help="use the stock asyncio loop")
    parser.add_argument("--cpu", type=int, action="append", metavar="N", help="pin the engine to this CPU (repeat for a set)")
    parser.add_argument("--log-level", default="WARNING")
    return parser.parse_args(argv)


async def _main(args: argparse.Namespace) -> None:
    if args.cpu:
        os.sched_setaffinity(0, set(args.cpu))
    aiortc_patches.install(aiortc_patches.Role.TAP, args.ice_host or aiortc_patches.DEFAULT_ICE_HOSTS)
    if args.audio == AudioSource.SPEECH:
        try:
            audio = AudioLibrary.speech()
        except CorpusError as exc:
            raise SystemExit(f"engine {args.name}: {exc}") from None
    else:
        audio = AudioLibrary.synthetic(AudioParams(seed=args.audio_seed), args.cache_dir)
    timeouts = SessionTimeouts(post_s=args.post_timeout_s, connect_s=args.connect_timeout_s, first_packet_s=args.first_packet_timeout_s)
    engine = Engine(args.name, args.results_dir, audio, timeouts, args.interval_s, args.silence_threshold_ms,
                    EngineHealth(args.lag_limit_ms, args.cpu_limit_pct))
    running = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        running.add_signal_handler(sig, engine.stop)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(args.socket)
    await engine.run(args.socket)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("aioice", "aiortc"):
        # media-design 6.3: several INFO lines per connection otherwise.
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    if args.no_uvloop:
        asyncio.run(_main(args))
        return 0
    try:
        import uvloop
    except ImportError:
        asyncio.run(_main(args))
        return 0
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(_main(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
