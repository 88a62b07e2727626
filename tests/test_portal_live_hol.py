"""Head-of-line blocking in the booth fan-out (contract 8.3 [V], 14.12), reproduced against a real portal.

One booth socket completes the WebSocket handshake on a raw TCP socket with a tiny receive buffer and then
never reads. A joined interpreter sends chat messages with large high-entropy bodies; every chat costs two
broadcasts (the message and the whole state, which carries the chat history). Because the server awaits
each ``send_text`` sequentially, the healthy observer stops receiving once the frozen socket's buffers fill,
and resumes when the frozen socket goes away. Bounded: a few seconds, a few MB over loopback.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
from urllib.parse import urlparse

import httpx
from test_portal_live_helpers import connect, cookie_header, join, mint, provision, recv_until, send, session_claims

CHATS = 30
BODY_RANDOM_BYTES = 48 * 1024  # base64 -> 64 KiB of text per body; incompressible
QUIET_WINDOW_S = 3.0


def open_frozen_socket(portal_url: str, path: str) -> socket.socket:
    """A WebSocket client that does the handshake and then never reads a byte."""
    parsed = urlparse(portal_url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: small advertised window
    sock.settimeout(5.0)
    sock.connect((parsed.hostname, parsed.port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET {path} HTTP/1.1\r\nHost: {parsed.netloc}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:  # byte by byte: do not consume any frame after the 101
        chunk = sock.recv(1)
        assert chunk, "server closed during handshake"
        head += chunk
    assert head.split(b"\r\n", 1)[0].split()[1] == b"101", head
    return sock


def test_non_reading_booth_socket_blocks_the_healthy_observer(portal):
    booth = provision(portal, "holfest", "es")
    booth_id, room_id = booth["booth_id"], booth["room_id"]
    headers = cookie_header("session_token", mint(portal, session_claims("holfest", room_id, "es")))

    async def scenario() -> tuple[int, int]:
        # max_queue=None: the clients themselves never exert back-pressure on the server.
        sender = await connect(portal, booth_id, headers, max_queue=None, max_size=None)
        observer = await connect(portal, booth_id, max_queue=None, max_size=None)
        await join(sender)
        frozen = open_frozen_socket(portal.portal_url, f"/ws/booth/{booth_id}")
        try:
            # A small chat proves the frozen socket is registered before the big ones start.
            await send(sender, "booth:chat", body="warm-up")
            await recv_until(observer, "booth:chat")
            bodies = [base64.b64encode(os.urandom(BODY_RANDOM_BYTES)).decode() for _ in range(CHATS)]

            async def send_all():
                for body in bodies:
                    await send(sender, "booth:chat", body=body)

            sending = asyncio.create_task(send_all())
            received = 0
            try:
                while True:
                    await recv_until(observer, "booth:chat", timeout_s=QUIET_WINDOW_S)
                    received += 1
            except TimeoutError:
                pass
            # The event loop itself is fine: only this booth's fan-out is stuck.
            async with httpx.AsyncClient(base_url=portal.portal_url) as client:
                assert (await client.get("/healthz")).status_code == 200
            frozen.close()
            # With the frozen peer gone, the stuck send fails, it is dropped, and fan-out resumes.
            await recv_until(observer, "booth:chat", timeout_s=30.0)
            resumed = received + 1
            sending.cancel()
            return received, resumed
        finally:
            frozen.close()
            await sender.close()
            await observer.close()

    stalled_at, resumed_at = asyncio.run(scenario())
    assert stalled_at < CHATS, f"observer got all {CHATS} chats: no head-of-line blocking"
    assert resumed_at > stalled_at
