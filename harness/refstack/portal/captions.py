"""Caption aggregation for the local (chunked) provider path (contract 7.4) and the caption message shapes (6.3).

Owns :class:`CaptionAggregator`: it turns recognised-text chunks (one per ~3 s of audio, '' for silence) into
``partial`` / ``final`` / ``clear`` caption messages. One aggregator is built per worker loop iteration, so
``seq`` restarts at 1 whenever the worker's provider restarts (contract 6.3). Sending is awaited: a slow
caption socket slows the caller, i.e. the transcription worker (contract 7.4).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

# Contract 7.4: a sentence end finalises its prefix only when that prefix has at least this many words.
MIN_FINAL_WORDS = 10
SENTENCE_ENDS = ".?!"


@dataclasses.dataclass(frozen=True)
class FinalCaption:
    segment_id: str
    seq: int
    text: str


def partial_message(text: str) -> dict[str, Any]:
    return {"type": "caption", "status": "partial", "text": text}


def clear_message() -> dict[str, Any]:
    return {"type": "caption", "status": "clear", "text": ""}


def final_message(final: FinalCaption) -> dict[str, Any]:
    return {"type": "caption", "status": "final", "text": final.text, "segment_id": final.segment_id, "seq": final.seq}


def settings_changed_message() -> dict[str, Any]:
    """Contract 6.3: pushed when an admin disables or changes transcription on a booth with an active interpreter."""
    return {"type": "caption", "status": "final", "text": ""}


def first_final_cut(text: str) -> int | None:
    """Index just past the earliest sentence end whose prefix has >= MIN_FINAL_WORDS words, or None."""
    for i, ch in enumerate(text):
        if ch in SENTENCE_ENDS and len(text[: i + 1].split()) >= MIN_FINAL_WORDS:
            return i + 1
    return None


class CaptionAggregator:
    """Contract 7.4, local-chunk rule. The 50-word / 15 s rule is deliberately NOT applied on this path:
    VoxBento keeps it in an unreachable branch, so unpunctuated speech grows one partial until silence."""

    def __init__(
        self,
        send: Callable[[dict[str, Any]], Awaitable[None]],
        on_final: Callable[[FinalCaption], None] | None = None,
    ) -> None:
        self._send = send
        self._on_final = on_final
        self._pending = ""
        self._seq = 0

    @property
    def pending_text(self) -> str:
        return self._pending

    async def add_chunk(self, text: str) -> None:
        text = text.strip()
        if not text:
            await self.add_silence()
            return
        self._pending = f"{self._pending} {text}".strip()
        cut = first_final_cut(self._pending)
        if cut is None:
            await self._send(partial_message(self._pending))
            return
        finished, self._pending = self._pending[:cut].strip(), self._pending[cut:].strip()
        await self._finalise(finished)
        # Contract 7.4: the rest stays as a partial; when nothing remains a clear is sent.
        await self._send(partial_message(self._pending) if self._pending else clear_message())

    async def add_silence(self) -> None:
        # Contract 7.4: silence finalises pending text, else sends clear.
        if self._pending:
            finished, self._pending = self._pending, ""
            await self._finalise(finished)
        else:
            await self._send(clear_message())

    async def _finalise(self, text: str) -> None:
        self._seq += 1
        final = FinalCaption(segment_id=str(uuid.uuid4()), seq=self._seq, text=text)
        if self._on_final is not None:
            self._on_final(final)
        await self._send(final_message(final))
