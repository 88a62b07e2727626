"""The booth state object as clients receive it (contract 5.4), parsed into frozen records.

The same object arrives in `booth:joined`, every `booth:state` (booth and caption sockets), the JSON
state route and the 201 of the booth-create shortcut. ``BoothState.raw`` keeps the original dict so
nothing the server adds is lost.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from typing import Any

from .errors import MalformedResponse


class HandoffState(enum.Enum):
    # Contract 5.4/5.5: `pending` and `completed` are dead ends until the booth empties.
    IDLE = "idle"
    OFFERED = "offered"
    REQUESTED = "requested"
    PENDING = "pending"
    COMPLETED = "completed"


class IngestStatus(enum.Enum):
    # Contract 5.4 / 7.3: `overloaded` after the local provider's back-pressure trips.
    DISCONNECTED = "disconnected"
    CONNECTED = "connected"
    OVERLOADED = "overloaded"



@dataclasses.dataclass(frozen=True)
class Participant:
    participant_id: str
    display_name: str
    role: str
    mic_active: bool
    ingest_connected: bool
    connected: bool
    raw: Mapping[str, Any]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Participant:
        return cls(
            participant_id=str(data["participant_id"]),
            display_name=str(data.get("display_name", "")),
            role=str(data.get("role", "")),
            mic_active=bool(data.get("mic_active", False)),
            ingest_connected=bool(data.get("ingest_connected", False)),
            connected=bool(data.get("connected", False)),
            raw=data,
        )


@dataclasses.dataclass(frozen=True)
class BoothState:
    booth_id: str
    event_slug: str
    room_id: int | None
    language_code: str
    mediamtx_path: str
    channel_id: str
    active_interpreter_id: str | None
    handoff_state: HandoffState
    handoff_initiator_id: str | None
    broadcast_unlocked: bool
    ingest_status: IngestStatus
    participants: tuple[Participant, ...]
    chat_messages: tuple[Mapping[str, Any], ...]
    raw: Mapping[str, Any]

    # Contract 5.4: the keys every state object carries.
    REQUIRED_KEYS = (
        "booth_id", "event_slug", "language_code", "instance", "mediamtx_path", "room_id", "language", "channel_id",
        "active_interpreter_id", "handoff_state", "handoff_initiator_id", "broadcast_unlocked", "ingest_status",
        "participants", "chat_messages",
    )

    @classmethod
    def from_json(cls, data: Any, source: str = "booth state") -> BoothState:
        if not isinstance(data, Mapping):
            raise MalformedResponse(source, f"state is {type(data).__name__}, not an object")
        missing = [k for k in cls.REQUIRED_KEYS if k not in data]
        if missing:
            raise MalformedResponse(source, f"state object lacks contract 5.4 keys {missing}")
        try:
            return cls(
                booth_id=str(data["booth_id"]),
                event_slug=str(data["event_slug"]),
                room_id=int(data["room_id"]) if data["room_id"] is not None else None,
                language_code=str(data["language_code"]),
                mediamtx_path=str(data["mediamtx_path"]),
                channel_id=str(data["channel_id"]),
                active_interpreter_id=data["active_interpreter_id"],
                handoff_state=HandoffState(data["handoff_state"]),
                handoff_initiator_id=data["handoff_initiator_id"],
                broadcast_unlocked=bool(data["broadcast_unlocked"]),
                ingest_status=IngestStatus(data["ingest_status"]),
                participants=tuple(Participant.from_json(p) for p in data["participants"]),
                chat_messages=tuple(data["chat_messages"]),
                raw=data,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedResponse(source, f"state object does not match contract 5.4: {exc!r}") from exc

    def participant(self, participant_id: str) -> Participant | None:
        return next((p for p in self.participants if p.participant_id == participant_id), None)
