"""Media actors that reconnect like VoxBento's browser code: the WHEP back-off of contract 6.2 step 3.

Owns :class:`Backoff` (100 ms, x1.5 per attempt, capped at 8000 ms, reset after each success) and
:class:`ReconnectActor`, one thread per simulated listener (WHEP) or publisher (WHIP) that loops
connect -> live -> dead -> back off -> connect around a :class:`~harness.media.bridge.MediaBridge`, and records
every attempt (time, status, outcome) so a reconnect storm can be counted per 100 ms. The actor learns that
its session died from the media engine, promptly: the engine's ``disconnected`` push (peer connection
failed or closed) or, when the peer vanished without a word, its per-second stats showing no packets for
``dead_after_intervals`` intervals; never from a 30 s ICE consent timeout.

Each actor gets its own bridge key (``key``), so the engine's per-second aggregates are per actor.
States change only in ``_set_state`` (logged ``old -> new``); see :class:`ActorState`.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import threading
import time
from collections.abc import Callable

from ..media.bridge import MediaBridge, MediaHandle
from ..media.errors import EngineError, HttpStatusError, MediaError, SessionError

log = logging.getLogger(__name__)

# Contract 6.2 step 3 (static/js/whep-listener.js): "a delay that starts at 100 ms, multiplies by 1.5 per
# attempt, caps at 8000 ms, and resets to 100 ms after each success".
BACKOFF_INITIAL_MS = 100.0
BACKOFF_FACTOR = 1.5
BACKOFF_CAP_MS = 8000.0
# Two silent seconds (engine intervals) make a session dead when no `disconnected` event came.
DEFAULT_DEAD_AFTER_INTERVALS = 2


class Backoff:
    """The browser's reconnect delay (contract 6.2 step 3); pure, so tests can walk it."""

    def __init__(self, initial_ms: float = BACKOFF_INITIAL_MS, factor: float = BACKOFF_FACTOR, cap_ms: float = BACKOFF_CAP_MS) -> None:
        self.initial_ms = initial_ms
        self.factor = factor
        self.cap_ms = cap_ms
        self._next_ms = initial_ms

    def next_delay_ms(self) -> float:
        delay_ms = self._next_ms
        self._next_ms = min(delay_ms * self.factor, self.cap_ms)
        return delay_ms

    def reset(self) -> None:
        self._next_ms = self.initial_ms


class Role(enum.Enum):
    LISTENER = "listener"  # WHEP (contract 6.2)
    PUBLISHER = "publisher"  # WHIP (contract 5.5)


class ActorState(enum.Enum):
    NEW = "new"
    CONNECTING = "connecting"  # a WHIP/WHEP setup is in flight
    LIVE = "live"  # media flowing: the setup returned after the first RTP packet
    BACKING_OFF = "backing_off"  # waiting before the next attempt
    STOPPED = "stopped"


class DeathCause(enum.Enum):
    EVENT = "event"  # the engine pushed `disconnected` (peer connection failed or closed)
    SILENCE = "silence"  # per-second stats showed no packets for dead_after_intervals intervals


@dataclasses.dataclass(frozen=True)
class Attempt:
    actor: str
    role: Role
    number: int  # 1-based attempt count since the last success (1 = first try after a death)
    t_s: float  # the actor's clock when the attempt started
    delay_ms: float  # back-off waited before this attempt (0 for the very first connect)
    ok: bool
    status: int | None  # HTTP status of the POST when it was answered; None when it never was
    outcome: str  # "ok", "http_<status>", or the failing phase (post, ice, first-packet, ...)
    setup_ms: float | None  # attempt start to first RTP packet, successful attempts only


@dataclasses.dataclass(frozen=True)
class Death:
    t_s: float
    cause: DeathCause


@dataclasses.dataclass(frozen=True)
class ActorStatistics:
    name: str
    role: Role
    state: ActorState
    attempts: int
    successes: int
    deaths: tuple[Death, ...]
    live_since_s: tuple[float, ...]  # clock time of every success


class ReconnectActor:
    """One listener or publisher that reconnects by itself; ``connect``/``close`` are the bridge calls."""

    def __init__(self, name: str, role: Role, url: str, bridge: MediaBridge, on_attempt: Callable[[Attempt], None], *,
                 clock_s: Callable[[], float] = time.monotonic, rejoin_delay_s: float = 0.0,
                 dead_after_intervals: int = DEFAULT_DEAD_AFTER_INTERVALS, backoff: Backoff | None = None) -> None:
        self.name = name
        self.role = role
        self.url = url
        self.key = name  # the bridge's aggregation key: per-second stats per actor
        self._bridge = bridge
        self._on_attempt = on_attempt
        self._clock_s = clock_s
        # Extra wait after a death before the back-off starts (a person noticing and reloading; 0 for the WHEP JS).
        self._rejoin_delay_s = rejoin_delay_s
        self._dead_after_intervals = dead_after_intervals
        self._backoff = backoff or Backoff()
        self._lock = threading.Lock()
        self._state = ActorState.NEW
        self.transitions: list[tuple[ActorState, ActorState]] = []
        self._handle: MediaHandle | None = None
        self._dead = threading.Event()
        self._stop = threading.Event()
        self._silent_intervals = 0
        self._attempts = 0
        self._successes: list[float] = []
        self._deaths: list[Death] = []
        self._live = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"reconnect-{name}", daemon=True)

    # --- state ---
    @property
    def state(self) -> ActorState:
        return self._state

    def _set_state(self, new: ActorState) -> None:
        with self._lock:
            old = self._state
            if old is new:
                return
            self._state = new
            self.transitions.append((old, new))
        log.debug("actor %s: %s -> %s", self.name, old.value, new.value)

    def statistics(self) -> ActorStatistics:
        with self._lock:
            return ActorStatistics(self.name, self.role, self._state, self._attempts, len(self._successes),
                                   tuple(self._deaths), tuple(self._successes))

    # --- lifecycle ---
    def start(self) -> ReconnectActor:
        self._thread.start()
        return self

    def wait_live(self, timeout_s: float) -> bool:
        return self._live.wait(timeout_s)

    def stop(self, timeout_s: float = 15.0) -> None:
        self._stop.set()
        self._dead.set()  # wakes a live actor
        self._thread.join(timeout_s)

    # --- death signals (called from the bridge's reader thread: cheap, never blocking) ---
    def on_disconnected(self, handle: str) -> None:
        with self._lock:
            current = self._handle.handle if self._handle is not None else None
        if handle == current:
            self._died(DeathCause.EVENT)

    def on_interval_packets(self, packets: int) -> None:
        """One engine interval of this actor's packets (received, or sent for a publisher)."""
        with self._lock:
            if self._state is not ActorState.LIVE:
                return
            self._silent_intervals = self._silent_intervals + 1 if packets == 0 else 0
            silent = self._silent_intervals >= self._dead_after_intervals
        if silent:
            self._died(DeathCause.SILENCE)

    def _died(self, cause: DeathCause) -> None:
        with self._lock:
            if self._state is not ActorState.LIVE or self._dead.is_set():
                return
            self._deaths.append(Death(self._clock_s(), cause))
            self._dead.set()

    # --- the loop ---
    def _connect(self) -> MediaHandle:
        if self.role is Role.PUBLISHER:
            return self._bridge.publish(self.url, self.key)
        return self._bridge.listen(self.url, self.key, probe=False)

    def _attempt(self, number: int, delay_ms: float) -> MediaHandle | None:
        self._set_state(ActorState.CONNECTING)
        t_s = self._clock_s()
        handle: MediaHandle | None = None
        status: int | None = None
        try:
            handle = self._connect()
            outcome = "ok"
            status = 201  # RFC 9725 / contract 12.3: the media server's success status (any 2xx is accepted)
        except HttpStatusError as exc:
            status, outcome = exc.status, f"http_{exc.status}"
        except SessionError as exc:
            outcome = exc.phase
        setup_ms = (self._clock_s() - t_s) * 1000.0 if handle is not None else None
        with self._lock:
            self._attempts += 1
        self._on_attempt(Attempt(self.name, self.role, number, t_s, delay_ms, handle is not None, status, outcome, setup_ms))
        return handle

    def _wait(self, seconds: float) -> bool:
        """Sleep unless stopped; True when stopped."""
        return self._stop.wait(max(0.0, seconds))

    def _run(self) -> None:
        try:
            self._loop()
        except EngineError as exc:
            # The harness's own engine died: nothing left to measure with (the probe reports it).
            log.error("actor %s stopped: %s", self.name, exc)
        finally:
            self._close_handle()
            self._set_state(ActorState.STOPPED)

    def _loop(self) -> None:
        number, delay_ms = 1, 0.0
        while not self._stop.is_set():
            handle = self._attempt(number, delay_ms)
            if handle is not None:
                with self._lock:
                    self._handle = handle
                    self._silent_intervals = 0
                    self._successes.append(self._clock_s())
                    self._dead.clear()
                self._backoff.reset()  # contract 6.2 step 3: back to 100 ms after each success
                self._set_state(ActorState.LIVE)
                self._live.set()
                self._dead.wait()
                if self._stop.is_set():
                    return
                self._set_state(ActorState.BACKING_OFF)
                self._close_handle()
                number = 0
                if self._wait(self._rejoin_delay_s):
                    return
            number += 1
            self._set_state(ActorState.BACKING_OFF)
            delay_ms = self._backoff.next_delay_ms()
            if self._wait(delay_ms / 1000.0):
                return

    def _close_handle(self) -> None:
        with self._lock:
            handle, self._handle = self._handle, None
        if handle is None:
            return
        try:
            # The engine DELETEs the session URL (fire and forget, contract 6.2) and closes the peer connection.
            self._bridge.close(handle)
        except MediaError as exc:
            log.debug("actor %s: closing %s: %s", self.name, handle.handle, exc)
