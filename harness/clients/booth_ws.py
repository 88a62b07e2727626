"""`/ws/booth/{booth_id}`: the booth coordination socket (contract 3.6, 5.3, 5.4, 5.5, 8.3).

:class:`BoothSocket` is one browser tab's socket: an interpreter, or a coordinator / Mission Control
observer that never joins. Each request method sends one client message of contract 5.3 and waits for
the reply that proves it took effect (reported as a timed round trip); ``send_message`` is the
fire-and-forget variant. Every received ``booth:state`` / ``booth:error`` is kept with its monotonic
receive time, so fan-out delay (sender's ``sent_at_s`` to each receiver's ``received_at_s``, same clock
in one process) and handover timing can be measured.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..contract import routes
from .booth_state import BoothState, HandoffState
from .errors import BoothErrorReply, BoothMismatch, SocketError
from .ws_base import DEFAULT_REPLY_TIMEOUT_S, BoothScopedSocket, JsonSocket, ReceivedMessage, SentMessage


# Contract 5.3: message types.
JOIN = "booth:join"
LEAVE = "booth:leave"
CHAT = "booth:chat"
SET_ACTIVE = "booth:set-active"
UPDATE_STATE = "booth:update-state"
SET_BROADCAST_UNLOCKED = "booth:set-broadcast-unlocked"
INITIATE_HANDOFF = "booth:initiate-handoff"
ACCEPT_HANDOFF = "booth:accept-handoff"
CANCEL_HANDOFF = "booth:cancel-handoff"
JOINED = "booth:joined"
STATE = "booth:state"
ERROR = "booth:error"

# VoxBento's `booth:error` text for a join whose event_slug is not the booth id's event (portal/booth_state.py).
BOOTH_OF_OTHER_EVENT = "does not belong to event"

# Contract 5.3: transcription trouble is pushed to every booth socket as `booth:error` with a bracketed text
# (`[Server overloaded - ...]`, `[Transcription provider failed. ...]`); those are notices, not replies.
_NOTICE_PREFIX = "["


def is_notice(message: ReceivedMessage) -> bool:
    return message.type == ERROR and str(message.payload.get("message", "")).startswith(_NOTICE_PREFIX)


class BoothSocket(BoothScopedSocket):
    """One `/ws/booth/{booth_id}` connection; `participant_id` is set once `join` succeeded.

    `event_slug` is the event the booth was provisioned in: every `booth:join` sends it (the server refuses a
    booth of another event, contract 5.3) and the joined state must name it. Contract 15: a target older than
    d2bee53 reads `ev-3-es` as a booth of event `ev-3` and joins it without error; these checks make that a
    :class:`BoothMismatch` instead of a phantom booth that measures nothing.
    """

    # Contract 5.2 step 5: the browser opens `/ws/booth/{encodeURIComponent(booth_id)}`, `?token=<jwt>` when it has one.
    ROUTE = routes.WS_BOOTH

    def __init__(self, url: str, booth_id: str, *, event_slug: str | None = None, **kwargs: Any) -> None:
        super().__init__(url, booth_id, **kwargs)
        self.event_slug = event_slug
        self.participant_id: str | None = None
        self._latest_state: Mapping[str, Any] | None = None

    # --- records ---
    def _on_message(self, message: ReceivedMessage) -> None:
        if message.type == STATE:
            self._latest_state = message.payload.get("state")
        elif message.type == JOINED:
            self._latest_state = message.payload.get("state")

    @property
    def latest_state(self) -> BoothState | None:
        """The last state object received (from `booth:joined` or `booth:state`), parsed."""
        raw = self._latest_state
        return BoothState.from_json(raw, self.url) if raw is not None else None

    def state_receipts(self) -> list[tuple[float, BoothState]]:
        """Every `booth:state` with its receive time (monotonic seconds)."""
        return [(m.received_at_s, BoothState.from_json(m.payload.get("state"), self.url)) for m in self.received(STATE)]

    def errors(self) -> list[ReceivedMessage]:
        return self.received(ERROR)

    # --- requests (contract 5.3) ---
    def _fail_on_error(self, request_type: str) -> Callable[[ReceivedMessage], BaseException | None]:
        def fail(message: ReceivedMessage) -> BaseException | None:
            if message.type == ERROR and not is_notice(message):
                return BoothErrorReply(self.url, request_type, str(message.payload.get("message", "")))
            return None

        return fail

    def _request(self, message: Mapping[str, Any], accept: Callable[[BoothState], bool], waiting_for: str, timeout_s: float) -> BoothState:
        def accept_state(received: ReceivedMessage) -> bool:
            return received.type == STATE and accept(BoothState.from_json(received.payload.get("state"), self.url))

        reply = self.request(
            message, accept=accept_state, fail=self._fail_on_error(message["type"]), waiting_for=waiting_for, timeout_s=timeout_s
        )
        return BoothState.from_json(reply.payload.get("state"), self.url)

    def _require_joined(self, what: str) -> str:
        if self.participant_id is None:
            raise SocketError(self.url, f"{what} needs a joined participant (call join first)")
        return self.participant_id

    def join(
        self,
        display_name: str = "Interpreter",
        role: str = "interpreter",
        *,
        language: str | None = None,
        channel_id: str | None = None,
        participant_id: str | None = None,
        event_slug: str | None = None,
        room_id: int | None = None,
        timeout_s: float = DEFAULT_REPLY_TIMEOUT_S,
    ) -> BoothState:
        """Contract 5.3 `booth:join` -> `booth:joined {participant_id, state}`; returns the joined state."""
        message: dict[str, Any] = {"type": JOIN, "display_name": display_name, "role": role}
        slug = event_slug or self.event_slug
        optional = {"language": language, "channel_id": channel_id, "participant_id": participant_id,
                    "event_slug": slug, "room_id": room_id}
        message.update({k: v for k, v in optional.items() if v is not None})
        try:
            reply = self.request(
                message, accept=lambda m: m.type == JOINED, fail=self._fail_on_error(JOIN), waiting_for=JOINED, timeout_s=timeout_s
            )
        except BoothErrorReply as exc:
            # Contract 5.3: the server refuses a join whose event_slug does not match the booth id it parsed.
            if slug is not None and BOOTH_OF_OTHER_EVENT in exc.message:
                raise BoothMismatch(self.url, f"{self.booth_id} of event {slug}", exc.message) from None
            raise
        self.participant_id = str(reply.payload["participant_id"])
        state = BoothState.from_json(reply.payload.get("state"), self.url)
        if state.booth_id != self.booth_id or (slug is not None and state.event_slug != slug):
            raise BoothMismatch(self.url, f"{self.booth_id} of event {slug or '?'}",
                                f"booth {state.booth_id} of event {state.event_slug}")
        return state

    def leave(self, timeout_s: float = DEFAULT_REPLY_TIMEOUT_S) -> BoothState:
        """Contract 5.3 `booth:leave`: participant removed, `booth:state` to all."""
        me = self._require_joined(LEAVE)
        state = self._request({"type": LEAVE}, lambda s: s.participant(me) is None, "state without us", timeout_s)
        self.participant_id = None
        return state

    def chat(self, body: str, timeout_s: float = DEFAULT_REPLY_TIMEOUT_S) -> Mapping[str, Any]:
        """Contract 5.3 `booth:chat {body}` -> `booth:chat {message}` (and a state) to all; returns our message."""
        me = self._require_joined(CHAT)

        def accept(m: ReceivedMessage) -> bool:
            msg = m.payload.get("message") or {}
            return m.type == CHAT and msg.get("sender_id") == me and msg.get("body") == body

        reply = self.request({"type": CHAT, "body": body}, accept=accept, fail=self._fail_on_error(CHAT),
                             waiting_for="our booth:chat echo", timeout_s=timeout_s)
        return reply.payload["message"]

    def set_active(self, target_id: str, timeout_s: float = DEFAULT_REPLY_TIMEOUT_S) -> BoothState:
        return self._request({"type": SET_ACTIVE, "target_id": target_id},
                             lambda s: s.active_interpreter_id == target_id, f"{target_id} active", timeout_s)

    def update_state(
        self,
        *,
        mic_active: bool | None = None,
        ingest_connected: bool | None = None,
        connected: bool | None = None,
        timeout_s: float = DEFAULT_REPLY_TIMEOUT_S,
    ) -> BoothState:
        """Contract 5.3 `booth:update-state`; waits until our participant shows the flags we set."""
        me = self._require_joined(UPDATE_STATE)
        flags = {k: v for k, v in {"mic_active": mic_active, "ingest_connected": ingest_connected, "connected": connected}.items()
                 if v is not None}

        def accept(state: BoothState) -> bool:
            p = state.participant(me)
            return p is not None and all(getattr(p, k) == v for k, v in flags.items())

        return self._request({"type": UPDATE_STATE, **flags}, accept, f"our flags {flags}", timeout_s)

    def set_broadcast_unlocked(self, unlocked: bool, timeout_s: float = DEFAULT_REPLY_TIMEOUT_S) -> BoothState:
        """Contract 5.3/5.5: Mission Control's Go Live (no join needed; coordinator, owner or super admin)."""
        return self._request({"type": SET_BROADCAST_UNLOCKED, "unlocked": unlocked},
                             lambda s: s.broadcast_unlocked is unlocked, f"broadcast_unlocked={unlocked}", timeout_s)

    def initiate_handoff(self, timeout_s: float = DEFAULT_REPLY_TIMEOUT_S) -> BoothState:
        """Contract 5.3: `offered` if we are active, `requested` otherwise."""
        me = self._require_joined(INITIATE_HANDOFF)
        return self._request({"type": INITIATE_HANDOFF},
                             lambda s: s.handoff_initiator_id == me and s.handoff_state in (HandoffState.OFFERED, HandoffState.REQUESTED),
                             "handoff offered/requested by us", timeout_s)

    def accept_handoff(self, timeout_s: float = DEFAULT_REPLY_TIMEOUT_S) -> BoothState:
        """Contract 5.3: the active interpreter flips and `handoff_state` returns to `idle`."""
        self._require_joined(ACCEPT_HANDOFF)
        return self._request({"type": ACCEPT_HANDOFF}, lambda s: s.handoff_state is HandoffState.IDLE, "handoff idle", timeout_s)

    def cancel_handoff(self, timeout_s: float = DEFAULT_REPLY_TIMEOUT_S) -> BoothState:
        self._require_joined(CANCEL_HANDOFF)
        return self._request({"type": CANCEL_HANDOFF}, lambda s: s.handoff_state is HandoffState.IDLE, "handoff idle", timeout_s)

    def send_message(self, msg_type: str, **fields: Any) -> SentMessage:
        """Fire and forget any client message (not reported: nothing is timed)."""
        return self.send_json({"type": msg_type, **fields})


def first_receipt_delay_ms(
    sent: SentMessage, sockets: Iterable[JsonSocket], accept: Callable[[ReceivedMessage], bool]
) -> list[float | None]:
    """Per socket: ms from `sent.sent_at_s` to its first accepted frame received at or after it (None = not received).

    Valid only when all sockets share one clock (one process, the default `time.monotonic`).
    """
    delays: list[float | None] = []
    for sock in sockets:
        hit = next((m for m in sock.received() if m.received_at_s >= sent.sent_at_s and accept(m)), None)
        delays.append((hit.received_at_s - sent.sent_at_s) * 1000.0 if hit is not None else None)
    return delays
