"""The booth-state probe's slow-reader drill: one booth socket stops reading (contract 8.3 [V], 8.4, 14.12, 14.16).

A frozen client (:class:`~harness.clients.frozen_ws.FrozenSocket`: handshake, ``booth:join`` as the first
interpreter, so it is the active one, then never reads) sits in a booth with a joined sender and two
Mission-Control-like observers. The sender pushes large high-entropy chat bodies (each chat is two
broadcasts: the chat and the whole state with up to 100 chats, contract 5.3/5.4), so permessage-deflate
cannot shrink them and the frozen socket's buffers fill. Every second the drill records what each healthy
socket received and polls the booth state over HTTP (a separate connection, untouched by the stuck fan-out)
for whether the frozen participant is still listed and still active. It ends after ``observe_s`` or two
seconds after the frozen participant disappeared; then the frozen socket is dropped and the drill waits for
the observers to receive again.

The keepalive that should reap the frozen socket is uvicorn's ping (``--ws-ping-interval``/``--ws-ping-timeout``,
20 s + 20 s in VoxBento, contract 1.1) plus the legacy protocol's 10 s close timeout; contract 8.3 saw it crash
instead under this load. The drill reports what happens, bounded in time.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import threading
import time
import uuid

from ..clients.booth_ws import CHAT, BoothSocket
from ..clients.errors import ClientError
from ..clients.frozen_ws import FrozenSocket
from ..waiting import WaitTimeout, poll_until
from .base import ProbeContext, ProbeError
from .event import ProbeEvent

# Contract 8.3 [V] used ~3 KB bodies and 150 chats; 48 KiB of random bytes (64 KiB of base64 text) fill
# loopback buffers within a few chats.
CHAT_RANDOM_BYTES = 48 * 1024
CHAT_PAUSE_S = 0.05
# An observer that received nothing for this long while chats were still being pushed is starving.
STARVED_AFTER_S = 3.0
# Uvicorn's websockets legacy protocol waits this long for the closing handshake (not configurable, contract 8.4).
LEGACY_CLOSE_TIMEOUT_S = 10.0
RESUME_WAIT_S = 10.0
BASELINE = "baseline"
FROZEN = "frozen"
AFTER_CLOSE = "after_close"

TRAFFIC_COLUMNS = {
    "t_s": "end of the one-second window, seconds since the frozen socket joined",
    "phase": "baseline (before the push) | frozen (frozen socket open) | after_close (frozen socket dropped)",
    "socket": "sender | observer-1 | observer-2",
    "messages": "frames the socket received in that second (count)",
    "chats": "booth:chat frames among them (count)",
    "bytes": "bytes received in that second",
    "chats_sent": "chats the sender had pushed by then (count)",
}
PRESENCE_COLUMNS = {
    "t_s": "seconds since the frozen socket joined",
    "listed": "1 if the frozen participant is in the booth state (GET /api/events/{slug}/booths/{lang}/state), else 0",
    "active": "1 if it is the active interpreter (active_interpreter_id), else 0",
    "participants": "participants listed (count)",
    "state_ms": "round trip of that state request (ms)",
}


@dataclasses.dataclass(frozen=True)
class SlowReaderResult:
    chats_sent: int
    chats_planned: int
    chats_received: dict[str, int]  # per healthy socket, while the frozen socket was open
    chats_after_close: dict[str, int]  # per healthy socket, once it was dropped
    starved: dict[str, float]  # per healthy socket: longest stretch without a frame while chats were pushed (s)
    listed_until_s: float | None  # last poll that listed the frozen participant; None if never listed
    active_until_s: float | None
    reaped: bool  # the frozen participant disappeared from the state within the window
    observed_s: float
    resumed_after_close_s: float | None  # None: the frozen socket was reaped first, or nothing came within RESUME_WAIT_S
    expected_reap_s: float | None  # ping interval + ping timeout + legacy close timeout, when the knobs are known

    @property
    def starving_sockets(self) -> list[str]:
        return [name for name, stretch_s in self.starved.items() if stretch_s >= STARVED_AFTER_S]


class SlowReaderDrill:
    def __init__(self, ctx: ProbeContext, event: ProbeEvent, traffic_csv, presence_csv, *, observe_s: float, chats: int,
                 ping_interval_s: float | None, ping_timeout_s: float | None) -> None:
        self.ctx = ctx
        self.event = event
        self.booth = event.booths[0]
        self.traffic_csv = traffic_csv
        self.presence_csv = presence_csv
        self.observe_s = observe_s
        self.chats = chats
        self.expected_reap_s = (ping_interval_s + ping_timeout_s + LEGACY_CLOSE_TIMEOUT_S
                                if ping_interval_s is not None and ping_timeout_s is not None else None)
        self.frozen_id = f"frozen-{uuid.uuid4().hex[:12]}"
        self.sockets: dict[str, BoothSocket] = {}
        self.frozen: FrozenSocket | None = None
        self._sent = 0
        self._stop = threading.Event()
        self._last_counts: dict[str, tuple[int, int, int]] = {}
        self._last_frame_s: dict[str, float] = {}
        self._starved: dict[str, float] = {}
        self._push_started_s = 0.0

    # --- measurements ---
    def _presence(self, t_s: float) -> tuple[bool, bool]:
        api = self.event.booth_api()
        started = time.perf_counter()
        try:
            state = api.state(self.event.slug, self.booth.language, room_id=self.event.room_id)
        except ClientError as exc:
            self.ctx.log.warning("slow-reader drill: state poll failed: %s", exc)
            return False, False
        listed = state.participant(self.frozen_id) is not None
        active = state.active_interpreter_id == self.frozen_id
        self.presence_csv.write(t_s=t_s, listed=int(listed), active=int(active), participants=len(state.participants),
                                state_ms=(time.perf_counter() - started) * 1000.0)
        return listed, active

    def _traffic(self, t_s: float, phase: str, now_s: float) -> None:
        for name, sock in self.sockets.items():
            received = sock.received()
            chats = sum(1 for m in received if m.type == CHAT)
            size = sum(m.size_bytes for m in received)
            last_n, last_chats, last_size = self._last_counts.get(name, (0, 0, 0))
            self._last_counts[name] = (len(received), chats, size)
            if len(received) > last_n:
                self._last_frame_s[name] = received[-1].received_at_s
            if phase == FROZEN:
                # Starving = nothing arrived while chats the sender pushed are still missing here (its own echo included).
                pending = chats < self._sent
                quiet_s = now_s - max(self._last_frame_s.get(name, self._push_started_s), self._push_started_s) if pending else 0.0
                self._starved[name] = max(self._starved.get(name, 0.0), quiet_s)
            self.traffic_csv.write(t_s=t_s, phase=phase, socket=name, messages=len(received) - last_n, chats=chats - last_chats,
                                   bytes=size - last_size, chats_sent=self._sent)

    # --- the push ---
    def _push(self, sender: BoothSocket) -> None:
        for _ in range(self.chats):
            if self._stop.is_set():
                return
            body = base64.b64encode(os.urandom(CHAT_RANDOM_BYTES)).decode()  # high entropy: deflate cannot help
            try:
                # Blocks once the portal stops reading the sender (its handler is stuck in a broadcast).
                sender.send_message(CHAT, body=body)
            except ClientError:
                return
            self._sent += 1
            time.sleep(CHAT_PAUSE_S)

    # --- the drill ---
    def run(self) -> SlowReaderResult:
        http = self.event.admin.http
        for name in ("observer-1", "observer-2"):
            # Mission Control observers: admin-cookie sockets that never join (contract 5.5).
            self.sockets[name] = BoothSocket.for_portal(http, self.booth.booth_id).connect()
        self.frozen = FrozenSocket.for_booth(http, self.booth.booth_id).connect()
        # Contract 5.3/5.5: participant_id is trusted as given; joining first makes the frozen client active.
        self.frozen.send_json({"type": "booth:join", "display_name": "Frozen reader", "role": "interpreter",
                               "participant_id": self.frozen_id})
        t0_s = time.monotonic()
        try:
            poll_until(lambda: self._presence(time.monotonic() - t0_s)[0], 10.0, 0.2, what="the frozen client's booth:join")
        except WaitTimeout:
            raise ProbeError("slow-reader drill: the frozen client's booth:join never showed in the booth state") from None
        sender = BoothSocket.for_portal(http, self.booth.booth_id, event_slug=self.booth.ref.event_slug).connect()
        sender.join("Chat sender", "interpreter")
        self.sockets = {"sender": sender, **self.sockets}
        time.sleep(1.0)
        self._push_started_s = time.monotonic()
        self._traffic(self._push_started_s - t0_s, BASELINE, self._push_started_s)
        pusher = threading.Thread(target=self._push, args=(sender,), name="slow-reader-push", daemon=True)
        pusher.start()
        listed_until = active_until = None
        gone_since: float | None = None
        next_s = self._push_started_s + 1.0
        while True:
            time.sleep(max(0.0, next_s - time.monotonic()))
            now = time.monotonic()
            next_s += 1.0
            self._traffic(now - t0_s, FROZEN, now)
            listed, active = self._presence(now - t0_s)
            if listed:
                listed_until, gone_since = now - t0_s, None
            elif gone_since is None:
                gone_since = now
            if active:
                active_until = now - t0_s
            if now - t0_s >= self.observe_s or self.ctx.out_of_time() or (gone_since is not None and now - gone_since >= 2.0):
                break
        reaped = gone_since is not None
        observed_s = time.monotonic() - t0_s
        received = self._chats_received()
        resumed = self._drop_frozen_and_wait(t0_s) if not reaped else None
        self._stop.set()
        pusher.join(timeout=5.0)
        after = {name: count - received[name] for name, count in self._chats_received().items()}
        return SlowReaderResult(self._sent, self.chats, received, after, dict(self._starved), listed_until, active_until, reaped,
                                observed_s, resumed, self.expected_reap_s)

    def _chats_received(self) -> dict[str, int]:
        return {name: sum(1 for m in sock.received() if m.type == CHAT) for name, sock in self.sockets.items()}

    def _drop_frozen_and_wait(self, t0_s: float) -> float | None:
        """Drop the frozen connection; seconds until an observer receives a frame again (None: not within the wait)."""
        assert self.frozen is not None
        counts = {name: sock.received_count() for name, sock in self.sockets.items() if name != "sender"}
        closed_s = time.monotonic()
        self.frozen.close()
        deadline = closed_s + RESUME_WAIT_S
        resumed: float | None = None
        next_s = closed_s + 1.0
        while time.monotonic() < deadline:
            if resumed is None and any(self.sockets[n].received_count() > c for n, c in counts.items()):
                resumed = time.monotonic() - closed_s
            if time.monotonic() >= next_s:
                next_s += 1.0
                self._traffic(time.monotonic() - t0_s, AFTER_CLOSE, time.monotonic())
                if resumed is not None:
                    break
            time.sleep(0.05)
        return resumed

    def close(self) -> None:
        self._stop.set()
        if self.frozen is not None:
            self.frozen.close()
        for sock in self.sockets.values():
            sock.close()
