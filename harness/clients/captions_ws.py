"""`/ws/captions/{booth_id}`: the listener's caption socket (contract 6.3, 3.6, 7.4).

Server to client only (client text is read and ignored). :class:`CaptionSocket` records every caption
(`partial`, `final`, `clear`) and every `booth:state` (sent here only on broadcast lock/unlock) with its
monotonic receive time. Matching captions with what was said is harness/media/captions_match.py's job
(speech transcript, or the reference portal's ``marker <id>`` stand-in).
"""

from __future__ import annotations

import dataclasses

from ..contract import routes
from ..rtc.markers import marker_ids
from .booth_state import BoothState
from .ws_base import BoothScopedSocket, ReceivedMessage


# Contract 6.3: message types and caption statuses.
CAPTION = "caption"
STATE = "booth:state"
PARTIAL = "partial"
FINAL = "final"
CLEAR = "clear"


@dataclasses.dataclass(frozen=True)
class Caption:
    status: str
    text: str
    segment_id: str | None  # only on finals from a worker (contract 6.3); absent on admin-pushed empty finals
    seq: int | None  # restarts at 1 when the worker's loop restarts
    received_at_s: float
    markers: tuple[int, ...]  # the reference portal's marker stand-in only

    @classmethod
    def from_message(cls, message: ReceivedMessage) -> Caption:
        payload = message.payload
        text = str(payload.get("text") or "")
        seq = payload.get("seq")
        return cls(
            status=str(payload.get("status", "")),
            text=text,
            segment_id=payload.get("segment_id"),
            seq=int(seq) if isinstance(seq, int) else None,
            received_at_s=message.received_at_s,
            markers=tuple(marker_ids(text)),
        )


class CaptionSocket(BoothScopedSocket):
    ROUTE = routes.WS_CAPTIONS

    def captions(self, status: str | None = None) -> list[Caption]:
        return [Caption.from_message(m) for m in self.received(CAPTION) if status is None or m.payload.get("status") == status]

    def finals(self) -> list[Caption]:
        return self.captions(FINAL)

    def state_receipts(self) -> list[tuple[float, BoothState]]:
        return [(m.received_at_s, BoothState.from_json(m.payload.get("state"), self.url)) for m in self.received(STATE)]

    def wait_for_caption(self, status: str | None = None, *, timeout_s: float = 10.0, after_index: int = 0) -> Caption:
        message = self.wait_for(
            lambda m: m.type == CAPTION and (status is None or m.payload.get("status") == status),
            waiting_for=f"caption {status or ''}".strip(),
            timeout_s=timeout_s,
            after_index=after_index,
        )
        return Caption.from_message(message)
