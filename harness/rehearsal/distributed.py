"""Distributed rehearsals: what a Locust master and its workers tell each other (custom messages).

The master owns the run: target, provisioning, the results folder, seats, handover orders and the verdict.
Each worker runs its own media engines, writes its samples into a private folder, and a tailer forwards every
complete line to the master once a second (``voxload:lines``), so what reached the master before a worker
crashed stays in the one results folder. Messages, all JSON-able dicts:

=====================  =========  =========================================================================
``voxload:scenario``    both      ``{}`` / ``{file, text}``: a worker asks at init, the master answers at once with
                                  the scenario's content (workers need only ``-f`` and ``--worker``)
``voxload:hello``       w -> m    ``{worker, t_worker_s}``; the master answers ``voxload:setup`` when provisioned
``voxload:setup``       m -> w    event (with invites), host, credentials, run start, ``t_master_s`` (clock offset)
``voxload:seat``        both      request ``{worker, req}`` / answer ``{req, seat}`` (``None`` when none are left)
``voxload:unlocked``    both      a coordinator went live; broadcast so interpreters everywhere can boot
``voxload:order``       both      a coordinator orders a handover / the master broadcasts the numbered order
``voxload:handover``    w -> m    a finished :class:`~harness.rehearsal.handover.HandoverRecord`
``voxload:schedule``    both      a publisher's send schedule, re-based to each worker's clock by the master's offsets
``voxload:lines``       w -> m    ``{worker, file, data}``: new complete lines of one file of the worker's folder
``voxload:clock``       both      ``{t_worker_s}`` / ``{t_worker_s, t_master_s}`` answered at once (clock offset)
``voxload:start``       m -> w    ``{started_epoch_s}``: the load started (master's test_start); workers' clock
``voxload:finish``      m -> w    the test ends: stop users, stop engines, forward the last lines, say done
``voxload:done``        w -> m    ``{worker, listener_users, captioned_booths}`` after its last lines
``voxload:abort``       w -> m    ``{worker, text}``: a joined booth is not the provisioned one; the master stops the run
=====================  =========  =========================================================================

Scenario: as Locust sends its locustfile, the master sends the scenario's text, not a path (the worker may run
elsewhere). A worker started with its own ``--scenario`` checks it against the master's and refuses to run a
different one (one line, exit 2): its users would look for booths the master never provisioned.

Clock offsets: ``offset = master clock - worker clock``, estimated NTP-style from ``voxload:clock`` round
trips (the sample with the shortest round trip wins). Schedules are moved into each receiving worker's clock, so payload-hash and marker
latencies are corrected; the offsets and round trips are reported with the results.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import time
from pathlib import Path

import gevent
from gevent.event import AsyncResult
from locust.runners import STATE_MISSING

from .worker_state import WorkerInfo, WorkerState

from ..errors import VoxloadError
from ..results.layout import WORKER_FORWARDED_GLOBS, master_file_name
from ..waiting import WaitTimeout, poll_until

logger = logging.getLogger(__name__)

FORWARD_INTERVAL_S = 1.0
DONE_TIMEOUT_S = 20.0
SCENARIO_TIMEOUT_S = 60.0  # the master answers hello at once; only its setup waits for provisioning
SCENARIO_RETRY_S = 1.0
SEAT_TIMEOUT_S = 30.0


class WorkerLinkError(VoxloadError, RuntimeError):
    """The master did not answer in time, or sent something this worker must refuse (one line)."""


def scenario_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def worker_name(runner) -> str:
    return f"w{getattr(runner, 'worker_index', 0)}"


class LineTailer:
    """Reads complete new lines of every file under a folder (samples/*.jsonl, media/*)."""

    def __init__(self, root: Path, patterns=WORKER_FORWARDED_GLOBS) -> None:
        self.root = Path(root)
        self.patterns = patterns
        self._offsets: dict[Path, int] = {}

    def read_new(self) -> list[tuple[str, str]]:
        chunks = []
        for pattern in self.patterns:
            for path in sorted(self.root.glob(pattern)):
                offset = self._offsets.get(path, 0)
                try:
                    with open(path, "rb") as fh:
                        fh.seek(offset)
                        data = fh.read()
                except OSError:
                    continue
                end = data.rfind(b"\n") + 1  # only whole lines; the rest waits for the next read
                if end:
                    self._offsets[path] = offset + end
                    chunks.append((path.relative_to(self.root).as_posix(), data[:end].decode("utf-8", "replace")))
        return chunks


class WorkerLink:
    """The worker's side: announces itself, receives the setup, forwards lines and events to the master."""

    def __init__(self, run, runner) -> None:
        self.run = run
        self.runner = runner
        self.name = "w?"  # known once the master acknowledged us (Locust assigns worker indexes)
        self.setup: AsyncResult = AsyncResult()
        self.scenario: AsyncResult = AsyncResult()  # {file, text} from the master
        self._seat_replies: dict[int, AsyncResult] = {}
        self._req = itertools.count(1)
        self.offset_s = 0.0
        self.rtt_s = None
        self._hello_sent_s = None
        self._tailer: LineTailer | None = None
        self._forwarder = None
        for name, handler in (("voxload:setup", self._on_setup), ("voxload:scenario", self._on_scenario),
                              ("voxload:seat", self._on_seat),
                              ("voxload:unlocked", self._on_unlocked), ("voxload:order", self._on_order),
                              ("voxload:schedule", self._on_schedule), ("voxload:clock", self._on_clock),
                              ("voxload:finish", self._on_finish), ("voxload:start", self._on_start)):
            runner.register_message(name, handler)
        self._clock_samples: list[tuple[float, float]] = []  # (rtt_s, offset_s)

    def measure_clock(self, rounds: int = 5) -> None:
        if self._clock_samples:
            return  # measured already
        for _ in range(rounds):
            self.runner.send_message("voxload:clock", {"t_worker_s": time.time()})
            gevent.sleep(0.05)
        try:
            poll_until(lambda: len(self._clock_samples) >= rounds, 5.0, 0.05, what="the master's clock replies", sleep_s=gevent.sleep)
        except WaitTimeout:
            pass  # fewer rounds: the best of those that came back
        if self._clock_samples:
            self.rtt_s, self.offset_s = min(self._clock_samples)

    def _on_clock(self, environment, msg, **_kw) -> None:
        now = time.time()
        sent = msg.data["t_worker_s"]
        self._clock_samples.append((now - sent, msg.data["t_master_s"] - (sent + now) / 2.0))

    def _on_finish(self, environment, msg, **_kw) -> None:
        gevent.spawn(self._finish)

    def _on_start(self, environment, msg, **_kw) -> None:
        # The master's load start, moved into this worker's clock: handovers count from the same moment everywhere.
        if self.run is None:
            return  # still waiting for the scenario: the setup it asks for next carries the start (a traceback before)
        self.run.mark_load_started(msg.data["started_epoch_s"] - self.offset_s)

    def _finish(self) -> None:
        self.runner.stop()  # users leave (publishers and listeners close), then engines stop
        if self.run is not None:  # None while this worker still waits for the scenario
            self.run.finish_worker()

    def hello(self, timeout_s: float = 60.0) -> None:
        if self._hello_sent_s is not None:
            return  # said already: a second hello would get a second setup
        try:
            # The master's ack carries our index.
            poll_until(lambda: getattr(self.runner, "worker_index", -1) >= 0, timeout_s, 0.05, what="the master's ack",
                       sleep_s=gevent.sleep)
        except WaitTimeout:
            pass  # no ack in time: the name shows the missing index (w-1)
        self.name = worker_name(self.runner)
        self._hello_sent_s = time.time()
        self.runner.send_message("voxload:hello", {"worker": self.name, "t_worker_s": self._hello_sent_s})

    def _on_setup(self, environment, msg, **_kw) -> None:
        self.setup.set(msg.data)

    def _on_scenario(self, environment, msg, **_kw) -> None:
        self.scenario.set(msg.data)

    def receive_scenario(self, own: str | None, timeout_s: float = SCENARIO_TIMEOUT_S):
        """The master's scenario (a ``Scenario``); ``WorkerLinkError`` when it differs from our own ``--scenario``."""
        from ..scenario import ScenarioError, parse_scenario

        # Not a hello: a worker that refuses the scenario must not count as one of the run's workers.
        # Asked again each second: a worker can connect before the master's init has registered its handlers,
        # and Locust drops a custom message nobody listens to.
        deadline_s = time.monotonic() + timeout_s
        while True:
            self.runner.send_message("voxload:scenario", {})
            try:
                data = self.scenario.get(timeout=min(SCENARIO_RETRY_S, max(0.0, deadline_s - time.monotonic())))
                break
            except gevent.Timeout:  # a BaseException: `except Exception` would let it through as a traceback
                if time.monotonic() >= deadline_s:
                    raise WorkerLinkError(f"no scenario from the master within {timeout_s:.0f} s") from None
        if own is not None:
            mine = Path(own)
            if scenario_digest(mine.read_text(encoding="utf-8")) != scenario_digest(data["text"]):
                raise WorkerLinkError(f"--scenario {mine} differs from the master's scenario {data['file']}: "
                                      "start workers with only -f and --worker, they run the master's scenario")
        try:
            return parse_scenario(data["text"], f"master:{data['file']}", Path(data["file"]))
        except ScenarioError as exc:  # the master validated it; a different harness version might not
            raise WorkerLinkError(str(exc)) from None

    def start_forwarding(self, root: Path) -> None:
        self._tailer = LineTailer(root)
        self._forwarder = gevent.spawn(self._forward_loop)

    def _forward_loop(self) -> None:
        while True:
            gevent.sleep(FORWARD_INTERVAL_S)
            self.forward_now()

    def forward_now(self) -> None:
        if self._tailer is None:
            return
        for relative, data in self._tailer.read_new():
            self.runner.send_message("voxload:lines", {"worker": self.name, "file": relative, "data": data})

    def take_seat(self, timeout_s: float = SEAT_TIMEOUT_S):
        req = next(self._req)
        reply = self._seat_replies[req] = AsyncResult()
        self.runner.send_message("voxload:seat", {"worker": self.name, "req": req})
        try:
            seat = reply.get(timeout=timeout_s)
        except gevent.Timeout:  # a BaseException: it would escape the user's error handling as a traceback
            self._seat_replies.pop(req, None)
            raise WorkerLinkError(f"no seat from the master within {timeout_s:.0f} s") from None
        return tuple(seat) if seat is not None else None

    def _on_seat(self, environment, msg, **_kw) -> None:
        reply = self._seat_replies.pop(msg.data["req"], None)
        if reply is not None:
            reply.set(msg.data["seat"])

    def send_unlocked(self) -> None:
        self.runner.send_message("voxload:unlocked", {"worker": self.name})

    def _on_unlocked(self, environment, msg, **_kw) -> None:
        self.run.booths_unlocked.set()

    def send_order(self, booth_ref: str, scheduled_at_s: float) -> None:
        self.runner.send_message("voxload:order", {"worker": self.name, "booth_ref": booth_ref, "at_s": scheduled_at_s})

    def _on_order(self, environment, msg, **_kw) -> None:
        self.run.receive_order(msg.data)

    def send_handover(self, record) -> None:
        self.runner.send_message("voxload:handover", record.as_wire())

    def send_abort(self, text: str) -> None:
        self.runner.send_message("voxload:abort", {"worker": self.name, "text": text})

    def send_schedule(self, booth_id: str, schedule: dict) -> None:
        self.runner.send_message("voxload:schedule", {"worker": self.name, "booth": booth_id, "schedule": schedule,
                                                      "offset_s": self.offset_s})

    def _on_schedule(self, environment, msg, **_kw) -> None:
        data = msg.data
        schedule = dict(data["schedule"])
        # Origin clock -> master clock (+ origin offset) -> our clock (- our offset).
        schedule["epoch_ns"] = int(schedule["epoch_ns"] + (data["offset_s"] - self.offset_s) * 1e9)
        self.run.receive_schedule(data["booth"], schedule)

    def done(self, listener_users: int, captioned: set[str]) -> None:
        if self._forwarder is not None:
            self._forwarder.kill()
        self.forward_now()
        self.runner.send_message("voxload:done", {
            "worker": self.name, "listener_users": listener_users, "captioned_booths": sorted(captioned),
            "clock_offset_ms": round(self.offset_s * 1000.0, 3),
            "rtt_ms": round(self.rtt_s * 1000.0, 3) if self.rtt_s is not None else None,
        })


class MasterHub:
    """The master's side: answers workers, merges their lines into the run folder, notices lost workers."""

    def __init__(self, run, runner) -> None:
        self.run = run
        self.runner = runner
        self.workers: dict[str, WorkerInfo] = {}  # by worker name
        self._files: dict[str, object] = {}
        # Read once at start: what every worker runs, whatever happens to the file during the run.
        self.scenario_message = {"file": str(run.scenario.source_path),
                                 "text": Path(run.scenario.source_path).read_text(encoding="utf-8")}
        for name, handler in (("voxload:hello", self._on_hello), ("voxload:scenario", self._on_scenario_request), ("voxload:seat", self._on_seat),
                              ("voxload:unlocked", self._on_unlocked), ("voxload:order", self._on_order),
                              ("voxload:handover", self._on_handover), ("voxload:schedule", self._on_schedule),
                              ("voxload:lines", self._on_lines), ("voxload:done", self._on_done),
                              ("voxload:clock", self._on_clock), ("voxload:abort", self._on_abort)):
            runner.register_message(name, handler)
        self._monitor = gevent.spawn(self._watch_workers)

    def _on_hello(self, environment, msg, **_kw) -> None:
        name = msg.data["worker"]
        self.workers.setdefault(name, WorkerInfo(name, msg.node_id, time.time()))
        gevent.spawn(self._send_setup, msg.node_id)

    def _on_scenario_request(self, environment, msg, **_kw) -> None:
        self._reply(msg, "voxload:scenario", self.scenario_message)

    def _send_setup(self, client_id: str) -> None:
        self.run.ready.wait()  # set once the master has provisioned the event
        self.runner.send_message("voxload:setup", {**self.run.setup_for_workers(), "t_master_s": time.time()}, client_id=client_id)

    def announce_start(self, started_epoch_s: float) -> None:
        self.runner.send_message("voxload:start", {"started_epoch_s": started_epoch_s})

    def _on_clock(self, environment, msg, **_kw) -> None:
        self._reply(msg, "voxload:clock", {"t_worker_s": msg.data["t_worker_s"], "t_master_s": time.time()})

    def finish_workers(self, timeout_s: float = DONE_TIMEOUT_S) -> None:
        """Before Locust sends `quit`: every live worker stops, flushes and says done (or is marked lost)."""
        self.runner.send_message("voxload:finish", {})
        self.wait_for_workers(timeout_s)

    def _reply(self, msg, name: str, data: dict) -> None:
        self.runner.send_message(name, data, client_id=msg.node_id)

    def _on_seat(self, environment, msg, **_kw) -> None:
        self._reply(msg, "voxload:seat", {"req": msg.data["req"], "seat": self.run.take_local_seat()})

    def _on_unlocked(self, environment, msg, **_kw) -> None:
        self.run.booths_unlocked.set()
        self.runner.send_message("voxload:unlocked", {})

    def _on_order(self, environment, msg, **_kw) -> None:
        order = self.run.order_handover(msg.data["booth_ref"], msg.data["at_s"])
        if order is not None:
            self.broadcast_order(order)

    def broadcast_order(self, order) -> None:
        self.runner.send_message("voxload:order", order.as_wire())

    def _on_abort(self, environment, msg, **_kw) -> None:
        self.run.abort_booth_mismatch(f"{msg.data['text']} (worker {msg.data['worker']})")

    def _on_handover(self, environment, msg, **_kw) -> None:
        from .handover import HandoverRecord

        self.run.record_handover(HandoverRecord(**msg.data))

    def _on_schedule(self, environment, msg, **_kw) -> None:
        self.runner.send_message("voxload:schedule", msg.data)
        # The master's own browser canaries listen to this booth too: without the schedule (in the master's clock:
        # origin + origin offset) they never saw the booth go live and waited LIVE_WAIT_S into the load.
        data = msg.data
        schedule = dict(data["schedule"])
        schedule["epoch_ns"] = int(schedule["epoch_ns"] + data["offset_s"] * 1e9)
        self.run.receive_schedule(data["booth"], schedule)

    def _on_lines(self, environment, msg, **_kw) -> None:
        relative = master_file_name(msg.data["worker"], msg.data["file"])
        fh = self._files.get(relative)
        if fh is None:
            path = self.run.run_dir.path / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            fh = self._files[relative] = open(path, "a", encoding="utf-8")
        fh.write(msg.data["data"])
        fh.flush()

    def _on_done(self, environment, msg, **_kw) -> None:
        data = msg.data
        info = self.workers.setdefault(data["worker"], WorkerInfo(data["worker"], msg.node_id, None))
        if info.state is WorkerState.DONE:
            return  # said twice (test_stop and quitting): counted once
        info.mark_done(data.get("clock_offset_ms"), data.get("rtt_ms"))
        self.run.listener_users += data.get("listener_users", 0)
        self.run.captioned_booths.update(data.get("captioned_booths", ()))

    def _watch_workers(self) -> None:
        """Locust marks a worker `missing` after 3 missed heartbeats (media-design 6.5); we note when."""
        while True:
            gevent.sleep(1.0)
            clients = getattr(self.runner, "clients", {})
            for name, info in self.workers.items():
                node = clients.get(info.client_id) if hasattr(clients, "get") else None
                if info.state is WorkerState.JOINED and node is not None and getattr(node, "state", None) == STATE_MISSING:
                    info.mark_lost()
                    logger.warning("worker %s lost (no heartbeat) at %s", name, time.strftime("%H:%M:%S"))

    def wait_for_workers(self, timeout_s: float = DONE_TIMEOUT_S) -> None:
        if self._monitor.dead:
            return  # already waited
        try:
            poll_until(lambda: all(info.settled for info in self.workers.values()), timeout_s, 0.2,
                       what="every worker's goodbye", sleep_s=gevent.sleep)
        except WaitTimeout:
            pass  # those that did not settle are marked lost below
        for info in self.workers.values():
            if not info.settled:
                info.mark_lost()  # never said goodbye: its last second may be missing
        self._monitor.kill()
        for fh in self._files.values():
            fh.close()

    def worker_report(self) -> list[dict]:
        return [info.as_report() for _, info in sorted(self.workers.items())]


def leave(runner) -> None:
    """Tell the master this worker quits (what Locust's worker sends on its own `quitting`)."""
    from locust.rpc import Message

    runner.client.send(Message("quit", None, runner.client_id))


def is_master(runner) -> bool:
    return type(runner).__name__ == "MasterRunner"


def is_worker(runner) -> bool:
    return type(runner).__name__ == "WorkerRunner"


def private_folder() -> Path:
    import tempfile

    return Path(tempfile.mkdtemp(prefix=f"voxload-worker-{os.getpid()}-"))
