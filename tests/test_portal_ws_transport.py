"""The portal's WebSocket transport as uvicorn serves it (contract 1.1, 8.4): implementation and keepalive pings.

VoxBento runs uvicorn's `websockets` legacy protocol with 20 s pings and a 20 s timeout; ``Stack`` passes the
same (uvicorn 0.54's ``auto`` would pick websockets-sansio). A half-open socket is reaped after ping interval +
ping timeout + the legacy protocol's 10 s close timeout (not configurable through uvicorn): the 45-50 s of
contract 8.4 at the defaults, about 11 s with the knobs at 0.5 s, which is what the ghost test uses.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
from urllib.parse import urlparse

from test_portal_live_helpers import connect, cookie_header, mint, provision, recv_until, session_claims

PING_S = "0.5"
# 0.5 + 0.5 + 10 s close timeout, with room for a loaded CI box; at the default pings reaping takes ~50 s.
REAP_BOUND_S = 25.0


def _raw_handshake(portal_url: str, path: str, extra_headers: str = "") -> tuple[socket.socket, bytes]:
    """The opening handshake on a plain TCP socket; returns the socket and the 101 response head."""
    parsed = urlparse(portal_url)
    sock = socket.create_connection((parsed.hostname, parsed.port), timeout=5.0)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET {path} HTTP/1.1\r\nHost: {parsed.netloc}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extra_headers}\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:  # byte by byte: leave any frame after the 101 unread
        chunk = sock.recv(1)
        assert chunk, "server closed during handshake"
        head += chunk
    assert head.split(b"\r\n", 1)[0].split()[1] == b"101", head
    return sock, head


def _masked_text_frame(text: str) -> bytes:
    """RFC 6455 5.2: one FIN text frame, client-masked (payloads under 64 KiB)."""
    payload = text.encode()
    mask = os.urandom(4)
    length = bytes([0x80 | len(payload)]) if len(payload) < 126 else bytes([0x80 | 126]) + struct.pack("!H", len(payload))
    return b"\x81" + length + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def test_portal_speaks_the_legacy_websockets_protocol(portal):
    """Contract 1.1: the legacy protocol answers permessage-deflate with its default (15-bit) windows;
    websockets-sansio under uvicorn 0.54 would answer server_max_window_bits=12; client_max_window_bits=12."""
    sock, head = _raw_handshake(
        portal.portal_url, "/ws/captions/any-1-es", "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    )
    sock.close()
    extensions = [line for line in head.decode().split("\r\n") if line.lower().startswith("sec-websocket-extensions:")]
    assert extensions == ["Sec-WebSocket-Extensions: permessage-deflate"]


def test_frozen_participant_is_reaped_by_shortened_pings(stack_factory):
    """Contract 8.4: a half-open (non-reading, non-ponging) participant stays until the keepalive gives up; with
    REFSTACK_WS_PING_INTERVAL_S/TIMEOUT_S = 0.5 that is ~11 s instead of 45-50 s (the bound below is 25 s)."""
    portal = stack_factory(portal_env={"REFSTACK_WS_PING_INTERVAL_S": PING_S, "REFSTACK_WS_PING_TIMEOUT_S": PING_S})
    booth = provision(portal, "ghostfest", "es")
    booth_id = booth["booth_id"]
    cookie = cookie_header("session_token", mint(portal, session_claims("ghostfest", booth["room_id"], "es")))

    async def scenario() -> list[list[str]]:
        observer = await connect(portal, booth_id)  # the websockets client answers pings by itself
        cookie_line = "".join(f"{k}: {v}\r\n" for k, v in cookie.items())
        frozen, _ = _raw_handshake(portal.portal_url, f"/ws/booth/{booth_id}", cookie_line)
        try:
            frozen.sendall(_masked_text_frame(json.dumps({"type": "booth:join", "display_name": "Frozen"})))
            joined = await recv_until(observer, "booth:state", where=lambda m: m["state"]["participants"])
            seen = [[p["display_name"] for p in joined["state"]["participants"]]]
            # From here the raw client neither reads nor answers pings: only the keepalive can remove it.
            left = await recv_until(observer, "booth:state", timeout_s=REAP_BOUND_S, where=lambda m: not m["state"]["participants"])
            seen.append([p["display_name"] for p in left["state"]["participants"]])
            assert left["state"]["active_interpreter_id"] is None
            return seen
        finally:
            frozen.close()
            await observer.close()

    assert asyncio.run(scenario()) == [["Frozen"], []]
