"""The bridge between a load generator (Locust greenlets, or plain threads) and media engine processes.

Owns: spawning engines (``python -m harness.media.engine``, one per core by default), the client side of
the JSON-lines RPC (rpc.py), routing (``publish``/``listen`` to the least-loaded live engine, ``close`` to
the engine named in the handle), forwarding each publisher's schedule to every engine so listeners in any
engine can compute payload-hash latency (schedule.py), delivering pushed per-second aggregates to plain
callables, and turning an engine's death into ``EngineCrashed`` (name and exit code) for every waiting and
later call, promptly. An engine that dies while not asked to stop leaves ``media-<name>-exit.jsonl`` (one line:
engine, time, exit code) next to its sample files, so the run's verdict knows when its instrument died
(``harness.results.measures.engine_deaths``); distributed workers forward it with their other media files.

gevent: this module never imports gevent or locust. It uses ``socket``, ``threading`` and ``subprocess``
through their modules at call time, so after ``gevent.monkey.patch_all()`` reads and waits yield to the hub
instead of blocking it; each engine socket has one lock around ``sendall`` (concurrent writes to one gevent
socket raise ConcurrentObjectUseError) and one reader (a greenlet, or a daemon thread when not patched).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from ..results.layout import MEDIA_PREFIX, media_file_name, media_log_name
from . import rpc
from .errors import EngineCrashed, EngineProtocolError, EngineStartError, EngineTimeout, MediaError, UnknownHandle, error_from_wire
from ..waiting import WaitTimeout, poll_until

logger = logging.getLogger(__name__)

StatsCallback = Callable[[dict], None]

# Decoding probe listeners per booth (per bridge, i.e. per Locust process) at most. One probe gives the
# booth's mouth-to-ear latency and continuity figures (two markers a second: 1,200 samples in ten minutes)
# and costs as much as ~80 tap listeners (docs/scaling.md); a probe that leaves is replaced by the next
# listener, and a distributed run has one per worker.
PROBES_PER_BOOTH_MAX = 1


@dataclasses.dataclass(frozen=True)
class MediaHandle:
    handle: str
    engine: str
    booth: str
    role: str  # publisher | listener | probe
    setup: dict  # offer_ms, post_ms, connected_ms, first_packet_ms
    schedule: dict | None = None  # publishers only


class _PendingCall:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.response: dict | None = None
        self.error: MediaError | None = None


class EngineProcess:
    """One engine: its process, socket, reader, and calls in flight."""

    def __init__(self, name: str, socket_path: str, results_dir: Path, engine_args: Sequence[str],
                 on_push: Callable[[EngineProcess, dict], None]) -> None:
        self.name = name
        self.socket_path = socket_path
        self.results_dir = results_dir
        self.log_path = results_dir / media_log_name(name)
        self._engine_args = list(engine_args)
        self._on_push = on_push
        self.proc: subprocess.Popen | None = None
        self._sock: socket.socket | None = None
        self._write_lock = threading.Lock()
        self._pending: dict[int, _PendingCall] = {}
        self._pending_lock = threading.Lock()
        self._ids = itertools.count(1)
        self.dead: EngineCrashed | None = None
        self.died_at_epoch_s: float | None = None  # set when it died unasked
        self._stopping = False
        self.sessions = 0  # open sessions routed here (routing weight)
        self._reader: threading.Thread | None = None

    # --- lifecycle ---
    def spawn(self) -> None:
        cmd = [sys.executable, "-m", "harness.media.engine", "--socket", self.socket_path,
               "--results-dir", str(self.results_dir), "--name", self.name, *self._engine_args]
        # The engine imports this package by name: make it importable whatever the caller's cwd and
        # whether or not the project is pip-installed.
        package_root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
        with open(self.log_path, "ab") as log:
            # Its own session: a terminal's Ctrl-C reaches the load generator, which stops users and then engines
            # in order; an engine killed by the same keystroke would read as a death mid-run. It still exits when
            # this process goes away (the socket closes).
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                         start_new_session=True)

    def connect(self, deadline_s: float) -> None:
        def connected() -> socket.socket | None:
            code = self.proc.poll()
            if code is not None:
                raise EngineStartError(f"media engine {self.name} exited with code {code} during startup: {self._log_tail()}")
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(self.socket_path)
            except OSError:
                sock.close()
                return None
            return sock

        try:
            self._sock = poll_until(connected, max(0.0, deadline_s - time.monotonic()), 0.05, what=f"media engine {self.name}'s socket")
        except WaitTimeout:
            raise EngineStartError(f"media engine {self.name} did not open {self.socket_path} in time: {self._log_tail()}") from None
        self._reader = threading.Thread(target=self._read_loop, name=f"media-bridge-{self.name}", daemon=True)
        self._reader.start()

    @property
    def exit_path(self) -> Path:
        return self.results_dir / media_file_name(self.name, "exit")

    def _record_exit(self, t_epoch_s: float, code: int | None) -> None:
        line = json.dumps({"engine": self.name, "t_epoch_s": round(t_epoch_s, 3), "exit_code": code}) + "\n"
        try:
            with open(self.exit_path, "a", encoding="utf-8") as fh:
                fh.write(line)
        except OSError as exc:
            logger.error("media engine %s died and its exit could not be recorded: %s", self.name, exc)

    def _log_tail(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return lines[-1] if lines else ""

    def stop(self, timeout_s: float) -> None:
        self._stopping = True
        if self.dead is None and self._sock is not None:
            try:
                self.call("shutdown", {}, timeout_s)
            except MediaError:
                pass
        if self.proc is not None:
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._sock is not None:
            self._sock.close()
        if self._reader is not None:
            self._reader.join(timeout_s)

    # --- RPC ---
    def call(self, op: str, args: dict, timeout_s: float) -> dict:
        if self.dead is not None:
            raise self.dead
        request_id = next(self._ids)
        pending = _PendingCall()
        with self._pending_lock:
            self._pending[request_id] = pending
        try:
            data = rpc.encode({"id": request_id, "op": op, "args": args})
            with self._write_lock:
                self._sock.sendall(data)
        except OSError:
            with self._pending_lock:
                self._pending.pop(request_id, None)
            self._declare_dead()
            raise self.dead from None
        if not pending.done.wait(timeout_s):
            with self._pending_lock:
                self._pending.pop(request_id, None)
            raise EngineTimeout(f"media engine {self.name}: no answer to {op} within {timeout_s:g} s")
        if pending.error is not None:
            raise pending.error
        response = pending.response
        if not response.get("ok"):
            raise error_from_wire(response.get("error") or {})
        return response.get("result") or {}

    def _read_loop(self) -> None:
        buffer = b""
        try:
            while True:
                chunk = self._sock.recv(65536)
                if not chunk:
                    break
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    self._dispatch(line)
        except OSError:
            pass
        self._declare_dead()

    def _dispatch(self, line: bytes) -> None:
        try:
            message = rpc.decode(line)
        except ValueError as exc:
            logger.warning("media engine %s sent an unreadable line: %s", self.name, exc)
            return
        if "push" in message:
            self._on_push(self, message)
            return
        with self._pending_lock:
            pending = self._pending.pop(message.get("id"), None)
        if pending is None:
            return  # the caller gave up (timeout)
        pending.response = message
        pending.done.set()

    def _declare_dead(self) -> None:
        if self.dead is not None:
            return
        died_at_epoch_s = time.time()
        code = None
        if self.proc is not None:
            try:
                code = self.proc.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                code = None
        self.dead = EngineCrashed(self.name, code, f"see {self.log_path}")
        if not self._stopping:
            self.died_at_epoch_s = died_at_epoch_s
            self._record_exit(died_at_epoch_s, code)
        with self._pending_lock:
            pending, self._pending = list(self._pending.values()), {}
        for call in pending:
            call.error = self.dead
            call.done.set()
        if code not in (0, None) or pending:
            logger.error("%s", self.dead)


class MediaBridge:
    """Engines for a load-generating process; every method may be called from many greenlets/threads."""

    def __init__(
        self,
        results_dir: str | Path,
        engines: int | None = None,
        on_stats: StatsCallback | None = None,
        on_event: StatsCallback | None = None,
        engine_args: Sequence[str] = (),
        call_timeout_s: float = 30.0,
        start_timeout_s: float = 60.0,
        cpu_affinity: Sequence[int] | None = None,
        ice_hosts: Sequence[str] = ("127.0.0.1",),
        probe_share: float = 0.02,
        probes_per_booth_max: int | None = None,
    ) -> None:
        self.results_dir = Path(results_dir)
        self.engine_count = engines or os.cpu_count() or 1
        self._on_stats = on_stats
        self._on_event = on_event
        if not 0.0 <= probe_share <= 1.0:
            raise ValueError(f"probe_share={probe_share}: must be within 0..1")
        self._engine_args = [arg for host in ice_hosts for arg in ("--ice-host", host)] + list(engine_args)
        # Probe listeners decode audio and look for markers: each costs as much as ~80 tap listeners (the
        # 200-listener profile in docs/scaling.md). The first listener of every booth, then this share of the
        # others, up to a fixed count per booth: a large audience adds tap listeners, not probes.
        self.probe_share = probe_share
        self.probes_per_booth_max = PROBES_PER_BOOTH_MAX if probes_per_booth_max is None else probes_per_booth_max
        if self.probes_per_booth_max < 1:
            raise ValueError(f"probes_per_booth_max={self.probes_per_booth_max}: must be at least 1")
        self._probes_per_booth: dict[str, int] = {}  # live probes the bridge chose, per booth
        self._auto_probes: dict[str, str] = {}  # their handles -> booth
        self._listeners_per_booth: dict[str, int] = {}
        # Engine i is pinned to cpu_affinity[i % len]; None leaves placement to the OS.
        self._cpu_affinity = list(cpu_affinity) if cpu_affinity else None
        self.call_timeout_s = call_timeout_s
        self.start_timeout_s = start_timeout_s
        self.engines: dict[str, EngineProcess] = {}
        self._schedules: dict[str, list[dict]] = {}
        self._lock = threading.Lock()
        self._socket_dir: str | None = None

    # --- lifecycle ---
    def start(self) -> MediaBridge:
        self.results_dir.mkdir(parents=True, exist_ok=True)
        self._socket_dir = tempfile.mkdtemp(prefix="voxload-media-")
        for i in range(self.engine_count):
            name = f"e{i}"
            args = list(self._engine_args)
            if self._cpu_affinity:
                args += ["--cpu", str(self._cpu_affinity[i % len(self._cpu_affinity)])]
            engine = EngineProcess(name, os.path.join(self._socket_dir, f"{name}.sock"), self.results_dir, args, self._on_push)
            self.engines[name] = engine
            engine.spawn()
        deadline = time.monotonic() + self.start_timeout_s
        try:
            for engine in self.engines.values():
                engine.connect(deadline)
                hello = engine.call("hello", {}, self.call_timeout_s)
                if hello.get("protocol") != rpc.PROTOCOL_VERSION:
                    raise EngineProtocolError(f"media engine {engine.name} speaks protocol {hello.get('protocol')}, expected {rpc.PROTOCOL_VERSION}")
        except BaseException:
            self.stop()
            raise
        return self

    def expect_exit(self) -> None:
        """The engines are about to be killed on purpose (a hard stop): their exits are not deaths mid-run."""
        for engine in self.engines.values():
            engine._stopping = True

    def stop(self, timeout_s: float = 10.0) -> None:
        for engine in self.engines.values():
            engine.stop(timeout_s)
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None

    def __enter__(self) -> MediaBridge:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- pushes ---
    def _on_push(self, engine: EngineProcess, message: dict) -> None:
        callback = self._on_stats if message.get("push") == "stats" else self._on_event
        if callback is None:
            return
        try:
            callback(message.get("data") or {})
        except Exception:
            # conventions 3: a failing listener is reported but does not kill the run (or the reader).
            logger.exception("media stats callback failed for a push from engine %s", engine.name)

    # --- routing ---
    def _pick_engine(self, name: str | None = None) -> EngineProcess:
        with self._lock:
            if name is not None:
                # Explicit placement (benchmarks, tests): that engine or its error.
                engine = self.engines[name]
                if engine.dead is not None:
                    raise engine.dead
                engine.sessions += 1
                return engine
            live = [e for e in self.engines.values() if e.dead is None]
            if not live:
                dead = next(iter(self.engines.values()), None)
                raise dead.dead if dead is not None and dead.dead else EngineStartError("no media engine is running")
            engine = min(live, key=lambda e: e.sessions)
            engine.sessions += 1
            return engine

    def _release(self, engine: EngineProcess) -> None:
        with self._lock:
            engine.sessions -= 1

    def _engine_of(self, handle: MediaHandle | str) -> EngineProcess:
        name = handle.engine if isinstance(handle, MediaHandle) else handle.split(":", 1)[0]
        engine = self.engines.get(name)
        if engine is None:
            raise UnknownHandle(f"no media engine {name!r} for handle {handle}")
        return engine

    def publish(self, whip_url: str, booth_key: str, engine: str | None = None, language: str | None = None) -> MediaHandle:
        """Start a publisher; returns once its first packet is sent. ``engine`` forces the placement; ``language``
        (the booth's) picks what it says when engines play the speech corpus."""
        picked = self._pick_engine(engine)
        params = {"whip_url": whip_url, "booth": booth_key}
        if language is not None:
            params["language"] = language
        try:
            result = picked.call("publish", params, self.call_timeout_s)
        except BaseException:
            self._release(picked)
            raise
        schedule = result["schedule"]
        self.add_schedule(booth_key, schedule, skip_engine=picked.name)
        return MediaHandle(result["handle"], picked.name, booth_key, "publisher", result["setup"], schedule)

    def add_schedule(self, booth_key: str, schedule: dict, skip_engine: str | None = None) -> None:
        """Make a publisher's send schedule known to every engine (also one published by another process or
        machine, for distributed runs), so their listeners of ``booth_key`` can compute payload-hash latency."""
        with self._lock:
            schedules = self._schedules.setdefault(booth_key, [])
            if schedule in schedules:
                return
            schedules.append(schedule)
            del schedules[:-4]
        for other in self.engines.values():
            if other.name != skip_engine and other.dead is None:
                try:
                    other.call("schedule", {"booth": booth_key, "schedule": schedule}, self.call_timeout_s)
                except MediaError as exc:
                    logger.warning("could not forward the schedule of %s to engine %s: %s", booth_key, other.name, exc)

    def _auto_probe(self, booth_key: str) -> bool:
        period = round(1.0 / self.probe_share) if self.probe_share > 0 else 0
        with self._lock:
            n = self._listeners_per_booth.get(booth_key, 0)
            self._listeners_per_booth[booth_key] = n + 1
            probes = self._probes_per_booth.get(booth_key, 0)
            # A booth without a live probe gets the next listener as one (also after its probes left).
            probe = probes < self.probes_per_booth_max and (probes == 0 or (period > 0 and n % period == 0))
            if probe:
                self._probes_per_booth[booth_key] = probes + 1
        return probe

    def listen(self, whep_url: str, booth_key: str, probe: bool | None = None, *, mode: str | None = None, engine: str | None = None) -> MediaHandle:
        """Start a listener; returns once its first RTP packet arrived.

        ``probe``: True/False makes it a probe (decoded audio, markers) or an RTP-tap listener; None lets the
        bridge choose (the booth's first listener, then ``probe_share`` of the rest, at most
        ``probes_per_booth_max`` probes live per booth). ``mode`` ("listener",
        "probe", "stock", "queued") overrides both ("stock" = stock aiortc decoding, the benchmarks' baseline;
        "queued" = the RTP tap without its raw fast path, to measure what the fast path saves).
        """
        auto_probe = mode is None and probe is None and self._auto_probe(booth_key)
        if mode is None and probe is None:
            probe = auto_probe
        role = mode or ("probe" if probe else "listener")
        try:
            picked = self._pick_engine(engine)
        except BaseException:
            if auto_probe:
                self._probe_left(booth_key)
            raise
        with self._lock:
            schedules = list(self._schedules.get(booth_key, []))
        try:
            result = picked.call("listen", {"whep_url": whep_url, "booth": booth_key, "mode": role, "schedules": schedules}, self.call_timeout_s)
        except BaseException:
            self._release(picked)
            if auto_probe:
                self._probe_left(booth_key)
            raise
        if auto_probe:
            with self._lock:
                self._auto_probes[result["handle"]] = booth_key
        return MediaHandle(result["handle"], picked.name, booth_key, role, result["setup"])

    def _probe_left(self, booth_key: str) -> None:
        with self._lock:
            self._probes_per_booth[booth_key] -= 1

    def close(self, handle: MediaHandle | str) -> dict:
        engine = self._engine_of(handle)
        name = handle.handle if isinstance(handle, MediaHandle) else handle
        try:
            result = engine.call("close", {"handle": name}, self.call_timeout_s)
        finally:
            with self._lock:
                booth_key = self._auto_probes.pop(name, None)
            if booth_key is not None:
                self._probe_left(booth_key)  # closed or not, it no longer measures the booth
        self._release(engine)
        return result

    def hello(self, engine: str) -> dict:
        return self.engines[engine].call("hello", {}, self.call_timeout_s)

    def sample_files(self) -> list[Path]:
        return sorted(self.results_dir.glob(f"{MEDIA_PREFIX}*"))

