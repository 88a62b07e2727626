"""WebSocket connection sets and fan-out (contract 8.3).

Owns, per string booth id, the set of booth sockets (``/ws/booth/...``) and the set of caption sockets
(``/ws/captions/...``), and the one way messages reach them: :meth:`ConnectionManager.broadcast_booth` and
:meth:`ConnectionManager.broadcast_captions`.

Contract 8.3, reproduced on purpose: a broadcast serialises the message ONCE and then awaits ``send_text`` on
each socket SEQUENTIALLY, in the task of whoever caused the change. A socket whose peer stopped reading
(full TCP buffers) therefore blocks the broadcast, the sockets after it, and the sender's handler: the
head-of-line blocking of contract 14.12. Do not parallelise or add timeouts here; the harness measures it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Any

from starlette.websockets import WebSocket

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ConnectionStatistics:
    booths: int
    booth_sockets: int
    caption_sockets: int
    send_failures: int


class ConnectionManager:
    def __init__(self) -> None:
        self._booth_sockets: dict[str, set[WebSocket]] = {}
        self._caption_sockets: dict[str, set[WebSocket]] = {}
        self._send_failures = 0

    # --- membership ---
    def add_booth_socket(self, booth_id: str, ws: WebSocket) -> None:
        self._booth_sockets.setdefault(booth_id, set()).add(ws)

    def remove_booth_socket(self, booth_id: str, ws: WebSocket) -> None:
        self._discard(self._booth_sockets, booth_id, ws)

    def add_caption_socket(self, booth_id: str, ws: WebSocket) -> None:
        self._caption_sockets.setdefault(booth_id, set()).add(ws)

    def remove_caption_socket(self, booth_id: str, ws: WebSocket) -> None:
        self._discard(self._caption_sockets, booth_id, ws)

    @staticmethod
    def _discard(table: dict[str, set[WebSocket]], booth_id: str, ws: WebSocket) -> None:
        sockets = table.get(booth_id)
        if sockets is not None:
            sockets.discard(ws)
            if not sockets:
                del table[booth_id]

    def caption_socket_count(self, booth_id: str) -> int:
        return len(self._caption_sockets.get(booth_id, ()))

    def statistics(self) -> ConnectionStatistics:
        return ConnectionStatistics(
            booths=len(self._booth_sockets),
            booth_sockets=sum(len(s) for s in self._booth_sockets.values()),
            caption_sockets=sum(len(s) for s in self._caption_sockets.values()),
            send_failures=self._send_failures,
        )

    # --- fan-out ---
    @staticmethod
    async def send(ws: WebSocket, message: dict[str, Any]) -> None:
        await ws.send_text(json.dumps(message))

    async def broadcast_booth(self, booth_id: str, message: dict[str, Any]) -> None:
        await self._broadcast(self._booth_sockets, booth_id, message)

    async def broadcast_captions(self, booth_id: str, message: dict[str, Any]) -> None:
        await self._broadcast(self._caption_sockets, booth_id, message)

    async def _broadcast(self, table: dict[str, set[WebSocket]], booth_id: str, message: dict[str, Any]) -> None:
        text = json.dumps(message)  # Contract 8.3: serialised once per broadcast.
        for ws in list(table.get(booth_id, ())):
            try:
                # Contract 8.3: awaited one after another; a non-reading peer stalls everything behind it.
                await ws.send_text(text)
            except Exception as exc:
                # A socket closed under us: drop it so later broadcasts skip it (its handler cleans up too).
                self._send_failures += 1
                log.debug("dropping socket of booth %s after send failure: %r", booth_id, exc)
                self._discard(table, booth_id, ws)
