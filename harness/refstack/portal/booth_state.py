"""The in-memory booth registry: participants, active interpreter, handoff, lock, chat (contract 5, 8).

Owns VoxBento's single-process live state (contract 8.1): one :class:`Booth` per string booth id, kept in
one :class:`BoothRegistry` guarded by ONE ``asyncio.Lock`` for all booths (contract 8.2, 14.14). Every
mutation and every snapshot holds that lock while it builds the public state object (contract 5.4), so
booth churn serialises exactly as it does in VoxBento. Nothing here talks to sockets or the database;
``routes_ws`` and ``routes_booth_api`` call in and broadcast what they get back.

Reproduced on purpose (they are what the harness measures):

- any booth id named by a message creates a booth, never freed except by the JSON DELETE route (8.2, 14.23);
- ``participant_id`` from ``booth:join`` is trusted as given (2, 8.4);
- the handoff machine's dead ends ``pending`` and ``completed`` (5.5, 14.15).
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import datetime as dt
import enum
import logging
import uuid
from typing import Any

from ...contract.roles import ELIGIBLE_ROLES
from .roles import MANAGER_ROLES
from .timeline import BoothNaming

log = logging.getLogger(__name__)

# Contract 5.4: up to 500 chat messages are kept, the state object carries the last 100.
CHAT_KEPT = 500
CHAT_IN_STATE = 100


class BoothError(ValueError):
    """A booth operation refused; ``str(exc)`` is the exact ``booth:error`` message of contract 5.3."""


class HandoffState(enum.Enum):
    """Contract 5.5: ``pending`` and ``completed`` are entered but never left until the booth empties."""

    IDLE = "idle"
    OFFERED = "offered"
    REQUESTED = "requested"
    PENDING = "pending"
    COMPLETED = "completed"


class IngestStatus(enum.Enum):
    DISCONNECTED = "disconnected"
    CONNECTED = "connected"
    OVERLOADED = "overloaded"  # contract 7.3: set by a lagging local provider; the stand-in captioner never lags


def _now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat()


@dataclasses.dataclass(frozen=True)
class BoothIdentity:
    """What a string booth id names (contract 2): ``{event_slug}-{room_id}-{language_code}`` at HEAD,
    ``{event_slug}-{language_code}`` before d2bee53 (``REFSTACK_VOXBENTO_DATE``, see ``timeline``)."""

    booth_id: str
    event_slug: str
    room_id: int | None
    language_code: str
    mediamtx_path: str

    @classmethod
    def parse(cls, booth_id: str, naming: BoothNaming) -> BoothIdentity:
        event_slug, room_id, language_code = naming.parse(booth_id)
        return cls(booth_id, event_slug, room_id, language_code, naming.mediamtx_path(event_slug, room_id, language_code))


@dataclasses.dataclass
class Participant:
    participant_id: str
    display_name: str
    role: str
    language: str
    channel_id: str
    mic_active: bool = False
    ingest_connected: bool = False
    connected: bool = True
    joined_at: str = dataclasses.field(default_factory=_now_iso)
    updated_at: str = dataclasses.field(default_factory=_now_iso)

    @property
    def can_go_live(self) -> bool:
        return self.role in ELIGIBLE_ROLES

    def clear_publisher_flags(self) -> None:
        if self.mic_active or self.ingest_connected:
            self.mic_active = False
            self.ingest_connected = False
            self.updated_at = _now_iso()

    def as_public_dict(self) -> dict[str, Any]:
        return {
            "participant_id": self.participant_id,
            "display_name": self.display_name,
            "role": self.role,
            "language": self.language,
            "channel_id": self.channel_id,
            "mic_active": self.mic_active,
            "ingest_connected": self.ingest_connected,
            "connected": self.connected,
            "joined_at": self.joined_at,
            "updated_at": self.updated_at,
        }


@dataclasses.dataclass(frozen=True)
class ChatMessage:
    message_id: str
    sender_id: str
    sender_name: str
    body: str
    sent_at: str

    def as_public_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class Booth:
    """One booth's live state. Mutated only by :class:`BoothRegistry` while it holds the registry lock."""

    def __init__(self, identity: BoothIdentity, *, language: str, instance: str = "primary", channel_id: str | None = None,
                 room_id: int | None = None) -> None:
        if room_id is not None:
            # As VoxBento's `_get_or_create_booth`: a room id given at creation wins over the one the id names.
            identity = dataclasses.replace(identity, room_id=room_id)
        self.identity = identity
        self.booth_id = identity.booth_id
        self.language = language
        self.instance = instance
        self.mediamtx_path = identity.mediamtx_path
        # The booth's audio channel: its MediaMTX path when an HTTP route creates it (the value the booth page renders
        # as data-default-channel, contract 5.1); when a socket message creates it, that socket's channel, as in
        # VoxBento (`_get_or_create_booth` keeps the creator's channel_id; a socket's default is `{booth_id}-audio`).
        self.channel_id = channel_id or self.mediamtx_path
        # dict keeps insertion order: contract 5.5 picks "the first remaining eligible one" by it.
        self.participants: dict[str, Participant] = {}
        self.chat: collections.deque[ChatMessage] = collections.deque(maxlen=CHAT_KEPT)
        self.active_interpreter_id: str | None = None
        self.handoff_state = HandoffState.IDLE
        self.handoff_initiator_id: str | None = None
        self.broadcast_unlocked = False
        self.ingest_status = IngestStatus.DISCONNECTED

    def _set_handoff_state(self, new: HandoffState, initiator_id: str | None = None) -> None:
        old = self.handoff_state
        self.handoff_state = new
        self.handoff_initiator_id = initiator_id
        if old is not new:
            log.info("booth %s handoff %s -> %s", self.booth_id, old.value, new.value)

    def _set_active(self, participant_id: str | None) -> None:
        self.active_interpreter_id = participant_id
        # Contract 5.3: a change of active interpreter clears everyone else's mic/ingest flags.
        for p in self.participants.values():
            if p.participant_id != participant_id:
                p.clear_publisher_flags()
        self._recompute_ingest()

    def _recompute_ingest(self) -> None:
        # Contract 5.3: `connected` if any participant reports ingest, else `disconnected`.
        connected = any(p.ingest_connected for p in self.participants.values())
        self.ingest_status = IngestStatus.CONNECTED if connected else IngestStatus.DISCONNECTED

    def _participant(self, participant_id: str | None) -> Participant:
        if participant_id is None or participant_id not in self.participants:
            raise BoothError("You must join the booth first.")
        return self.participants[participant_id]

    def has_other_eligible(self, participant_id: str) -> bool:
        return any(p.can_go_live for p in self.participants.values() if p.participant_id != participant_id)

    def as_public_dict(self) -> dict[str, Any]:
        """Contract 5.4: exactly these keys; chat limited to the last 100 of up to 500 kept."""
        chat = list(self.chat)[-CHAT_IN_STATE:]
        return {
            "booth_id": self.booth_id,
            "event_slug": self.identity.event_slug,
            "language_code": self.identity.language_code,
            "instance": self.instance,
            "mediamtx_path": self.mediamtx_path,
            "room_id": self.identity.room_id,
            "language": self.language,
            "channel_id": self.channel_id,
            "active_interpreter_id": self.active_interpreter_id,
            "handoff_state": self.handoff_state.value,
            "handoff_initiator_id": self.handoff_initiator_id,
            "broadcast_unlocked": self.broadcast_unlocked,
            "ingest_status": self.ingest_status.value,
            "participants": [p.as_public_dict() for p in self.participants.values()],
            "chat_messages": [m.as_public_dict() for m in chat],
        }


@dataclasses.dataclass(frozen=True)
class RegistryStatistics:
    booths: int  # never shrinks except through the JSON DELETE route (contract 14.23)
    participants: int
    chat_messages_kept: int


class BoothRegistry:
    """All booths of the process behind one lock (contract 8.2)."""

    def __init__(self, naming: BoothNaming | None = None) -> None:
        self._naming = naming or BoothNaming()
        self._booths: dict[str, Booth] = {}
        self._lock = asyncio.Lock()

    # --- lookups ---
    def get_sync(self, booth_id: str) -> Booth | None:
        """Contract 8.2: admin pages read without the lock."""
        return self._booths.get(booth_id)

    def __len__(self) -> int:
        return len(self._booths)

    def statistics(self) -> RegistryStatistics:
        """Read without the lock, like ``get_sync``: a monitoring view, not a snapshot."""
        booths = list(self._booths.values())
        return RegistryStatistics(
            booths=len(booths),
            participants=sum(len(b.participants) for b in booths),
            chat_messages_kept=sum(len(b.chat) for b in booths),
        )

    def _get_or_create(self, booth_id: str, language: str | None = None, instance: str = "primary",
                       channel_id: str | None = None, room_id: int | None = None) -> Booth:
        booth = self._booths.get(booth_id)
        if booth is None:
            # Contract 8.2, 14.23: any message naming an unknown booth id creates it, never freed.
            identity = BoothIdentity.parse(booth_id, self._naming)
            booth = Booth(identity, language=language or identity.language_code.upper(), instance=instance, channel_id=channel_id,
                          room_id=room_id)
            self._booths[booth_id] = booth
        return booth

    async def snapshot(self, booth_id: str) -> dict[str, Any] | None:
        async with self._lock:
            booth = self._booths.get(booth_id)
            return None if booth is None else booth.as_public_dict()

    async def snapshots(self, event_slug: str) -> list[dict[str, Any]]:
        async with self._lock:
            return [b.as_public_dict() for b in self._booths.values() if b.identity.event_slug == event_slug]

    async def get_or_create(self, booth_id: str, *, language: str | None = None, instance: str = "primary",
                            room_id: int | None = None) -> dict[str, Any]:
        """Create the booth if missing (contract 4.2: "created, or snapshotted if it exists")."""
        async with self._lock:
            return self._get_or_create(booth_id, language, instance, room_id=room_id).as_public_dict()

    async def delete(self, booth_id: str) -> bool:
        """Contract 4.4: only the JSON DELETE route drops a booth; open sockets recreate it on their next message."""
        async with self._lock:
            return self._booths.pop(booth_id, None) is not None

    # --- contract 5.3 messages ---
    async def join(
        self,
        booth_id: str,
        *,
        participant_id: str | None,
        display_name: str,
        role: str,
        language: str,
        channel_id: str,
        booth_language: str | None = None,
    ) -> tuple[str, dict[str, Any]]:
        async with self._lock:
            booth = self._get_or_create(booth_id, booth_language, channel_id=channel_id)
            # Contract 2, 8.4: a client-sent participant id is trusted as given (a rejoin overwrites).
            pid = participant_id or uuid.uuid4().hex
            participant = Participant(pid, display_name, role, language, channel_id)
            booth.participants[pid] = participant
            # Contract 5.5: the first participant with an eligible requested role becomes active.
            if booth.active_interpreter_id is None and participant.can_go_live:
                booth._set_active(pid)
            return pid, booth.as_public_dict()

    async def leave(self, booth_id: str, participant_id: str) -> dict[str, Any] | None:
        """Remove a participant; None when it was not there (contract 8.4: removal is by id only)."""
        async with self._lock:
            booth = self._booths.get(booth_id)
            if booth is None or booth.participants.pop(participant_id, None) is None:
                return None
            if not booth.participants:
                # Contract 5.5: only emptying the booth clears the handoff state.
                booth._set_active(None)
                booth._set_handoff_state(HandoffState.IDLE)
            elif booth.active_interpreter_id == participant_id:
                successor = next((p for p in booth.participants.values() if p.can_go_live), None)
                booth._set_active(successor.participant_id if successor else None)
                if successor is not None:
                    # Contract 5.5 [V]: the successor is promoted and the handoff is left `pending`, a dead end.
                    booth._set_handoff_state(HandoffState.PENDING)
            else:
                booth._recompute_ingest()
            return booth.as_public_dict()

    async def chat(self, booth_id: str, participant_id: str | None, body: str) -> tuple[dict[str, Any], dict[str, Any]]:
        async with self._lock:
            booth = self._get_or_create(booth_id)
            sender = booth._participant(participant_id)
            if not body.strip():
                raise BoothError("Message body cannot be empty.")
            message = ChatMessage(uuid.uuid4().hex, sender.participant_id, sender.display_name, body, _now_iso())
            booth.chat.append(message)
            return message.as_public_dict(), booth.as_public_dict()

    async def set_active(self, booth_id: str, requester_id: str | None, target_id: str) -> dict[str, Any]:
        async with self._lock:
            booth = self._get_or_create(booth_id)
            requester = booth._participant(requester_id)
            target = booth.participants.get(target_id)
            if target is None:
                raise BoothError("Target participant does not exist.")
            if not target.can_go_live:
                raise BoothError("Target participant cannot go live.")
            # Contract 5.3: coordinator/owner/admin, the active interpreter, or the target itself.
            allowed = (
                requester.role in MANAGER_ROLES
                or requester.participant_id == booth.active_interpreter_id
                or requester.participant_id == target_id
            )
            if not allowed:
                raise BoothError("You do not have permission to change the active interpreter.")
            booth._set_active(target_id)
            # Contract 5.5 [V]: set-active leaves the handoff `completed`, a dead end.
            booth._set_handoff_state(HandoffState.COMPLETED)
            return booth.as_public_dict()

    async def update_state(
        self,
        booth_id: str,
        participant_id: str | None,
        *,
        mic_active: bool | None,
        ingest_connected: bool | None,
        connected: bool | None,
    ) -> dict[str, Any]:
        async with self._lock:
            booth = self._get_or_create(booth_id)
            participant = booth._participant(participant_id)
            if mic_active or ingest_connected:
                if not (participant.can_go_live and booth.active_interpreter_id == participant.participant_id):
                    raise BoothError("Only the active interpreter can mark mic or ingest active.")
            if mic_active is not None:
                participant.mic_active = mic_active
            if ingest_connected is not None:
                participant.ingest_connected = ingest_connected
            if connected is not None:
                participant.connected = connected
            participant.updated_at = _now_iso()
            booth._recompute_ingest()
            return booth.as_public_dict()

    async def set_broadcast_unlocked(self, booth_id: str, unlocked: bool, *, language: str | None = None,
                                     channel_id: str | None = None) -> dict[str, Any]:
        """Permission (manager role) is checked by the caller: no join is needed (contract 5.3)."""
        async with self._lock:
            booth = self._get_or_create(booth_id, language, channel_id=channel_id)
            booth.broadcast_unlocked = unlocked
            if not unlocked:
                # Contract 5.3: locking clears every publisher flag and forces `disconnected`.
                for p in booth.participants.values():
                    p.clear_publisher_flags()
                booth.ingest_status = IngestStatus.DISCONNECTED
            return booth.as_public_dict()

    async def initiate_handoff(self, booth_id: str, participant_id: str | None) -> dict[str, Any]:
        async with self._lock:
            booth = self._get_or_create(booth_id)
            participant = booth._participant(participant_id)
            if not participant.can_go_live:
                raise BoothError("Your role cannot take part in a handoff.")
            if booth.handoff_state is not HandoffState.IDLE:
                raise BoothError("A handoff is already in progress.")
            if not booth.has_other_eligible(participant.participant_id):
                raise BoothError("No other interpreter in the booth to hand off to.")
            is_active = booth.active_interpreter_id == participant.participant_id
            booth._set_handoff_state(HandoffState.OFFERED if is_active else HandoffState.REQUESTED, participant.participant_id)
            return booth.as_public_dict()

    async def accept_handoff(self, booth_id: str, participant_id: str | None) -> dict[str, Any]:
        async with self._lock:
            booth = self._get_or_create(booth_id)
            participant = booth._participant(participant_id)
            # Contract 5.5: from `pending`/`completed` there is no initiator, so accept always fails.
            if booth.handoff_state not in (HandoffState.OFFERED, HandoffState.REQUESTED) or booth.handoff_initiator_id is None:
                raise BoothError("No handoff in progress.")
            if participant.participant_id == booth.handoff_initiator_id:
                raise BoothError("You cannot accept your own handoff.")
            if not participant.can_go_live:
                raise BoothError("Your role cannot take part in a handoff.")
            is_active = booth.active_interpreter_id == participant.participant_id
            if booth.handoff_state is HandoffState.OFFERED:
                if is_active:
                    raise BoothError("Only a standby interpreter can accept this handoff.")
                new_active = participant.participant_id
            else:
                if not is_active:
                    raise BoothError("Only the active interpreter can accept a handoff request.")
                new_active = booth.handoff_initiator_id
            if new_active not in booth.participants:
                raise BoothError("The handoff initiator has left the booth.")
            booth._set_active(new_active)
            booth._set_handoff_state(HandoffState.IDLE)
            return booth.as_public_dict()

    async def cancel_handoff(self, booth_id: str, participant_id: str | None) -> dict[str, Any]:
        async with self._lock:
            booth = self._get_or_create(booth_id)
            participant = booth._participant(participant_id)
            # Contract 5.5: `pending`/`completed` have no initiator, so nobody can cancel them.
            if booth.handoff_initiator_id is None or participant.participant_id != booth.handoff_initiator_id:
                raise BoothError("Only the handoff initiator can cancel.")
            booth._set_handoff_state(HandoffState.IDLE)
            return booth.as_public_dict()

    async def can_publish(self, booth_id: str, participant_id: str, *, language: str | None = None) -> dict[str, Any]:
        """Whip-url gate (contract 5.5): the participant exists, may go live and is active. Creates the booth."""
        async with self._lock:
            booth = self._get_or_create(booth_id, language)
            participant = booth.participants.get(participant_id)
            if participant is None:
                raise ParticipantMissing("Participant does not exist in booth.")
            if not (participant.can_go_live and booth.active_interpreter_id == participant_id):
                raise PublishForbidden("Only the active interpreter can publish audio.")
            return booth.as_public_dict()


class ParticipantMissing(BoothError):
    """Whip-url route: 404 (contract 5.5)."""


class PublishForbidden(BoothError):
    """Whip-url route: 403 (contract 5.5)."""
