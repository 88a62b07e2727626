"""Scripted people the probes put on the target, built only from ``harness.clients``.

- :class:`Interpreter`: invite join, booth page (which also ensures the MediaMTX path, contract 5.1),
  booth socket and ``booth:join`` (contract 5.2 steps 1-7, without the browser's media);
- :class:`Coordinator`: an admin-cookie socket per booth that never joins (Mission Control, contract 5.5);
- :func:`caption_listener`: a ``/ws/captions`` socket, anonymous as a browser's in open mode; in auth mode (the
  anonymous handshake refused with 403) it carries the admin's cookie, which contract 3.6 accepts.
"""

from __future__ import annotations

from ..clients.booth_api import BoothApi
from ..clients.booth_ws import BoothSocket
from ..clients.captions_ws import CaptionSocket
from ..clients.errors import HandshakeRejected
from ..clients.interpreter import BoothPage, InterpreterClient
from .event import ProbeBooth
from ..target.targets import Target


class Interpreter:
    def __init__(self, target: Target, booth: ProbeBooth, invite: str, display_name: str) -> None:
        self.booth = booth
        self.display_name = display_name
        self.http = target.http()
        self.client = InterpreterClient(self.http)
        self.client.join_invite(invite)
        self.page: BoothPage = self.client.booth_page(booth.ref)
        self.api = BoothApi(self.http, room_scoped=booth.ref.room_scoped)
        self.socket: BoothSocket | None = None

    def connect_and_join(self) -> BoothSocket:
        """A new socket and `booth:join` (a refreshed tab is a new participant, contract 8.4)."""
        # The page's booth id and the event's slug on join (contract 15: a mismatch raises BoothMismatch).
        self.socket = BoothSocket.for_portal(self.http, self.page.booth_id, event_slug=self.booth.ref.event_slug)
        self.socket.connect()
        self.socket.join(self.display_name, "interpreter", language=self.booth.language,
                         channel_id=self.page.default_channel, room_id=self.page.room_id)
        return self.socket

    def drop(self) -> None:
        """The tab goes away: the socket closes, nothing else is sent (no `booth:leave`, no transcription stop)."""
        if self.socket is not None:
            self.socket.close()

    def close(self) -> None:
        self.drop()
        self.http.close()


class Coordinator:
    """Mission Control: one admin-cookie socket per booth, never joined (contract 5.5)."""

    def __init__(self, admin_http, booths: list[ProbeBooth]) -> None:
        self.sockets = {b.booth_id: BoothSocket.for_portal(admin_http, b.booth_id) for b in booths}
        for sock in self.sockets.values():
            sock.connect()

    def unlock(self, booth_id: str, unlocked: bool = True) -> None:
        self.sockets[booth_id].set_broadcast_unlocked(unlocked)

    def close(self) -> None:
        for sock in self.sockets.values():
            sock.close()


def caption_listener(target: Target, booth_id: str, admin_http=None) -> CaptionSocket:
    """Anonymous first (open mode, contract 6.3). With BOOTH_ACCESS_TOKEN set the handshake fails with 403 (contract
    3.6: a real client never sees 4001/4003); the auth mode is recognised from that, and `admin_http`'s cookie used."""
    http = target.http()
    sock = CaptionSocket.for_portal(http, booth_id)
    try:
        sock.connect()
        return sock
    except HandshakeRejected as exc:
        http.close()
        if exc.status != 403 or admin_http is None:
            raise
    sock = CaptionSocket.for_portal(admin_http, booth_id)
    sock.connect()
    return sock
