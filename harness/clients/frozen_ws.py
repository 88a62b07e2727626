"""A booth socket whose reader is frozen: the half-open, non-reading client of contract 8.3, 8.4 and 14.12.

:class:`FrozenSocket` completes the WebSocket opening handshake (RFC 6455 4.1) on a raw TCP (or TLS) socket
with a small receive buffer, reads the server's 101 response byte by byte (so no frame after it is
consumed), can then send client frames (masked, RFC 6455 5.3), e.g. a ``booth:join``, and never reads again:
no frames, no pongs. The server's send buffer to it fills once the booth's broadcasts are large and
incompressible, which is what stalls VoxBento's sequential fan-out (contract 8.3 [V]); a browser tab frozen
by SIGSTOP or a network that drops without a FIN looks the same from the server.

Nothing here reads after the handshake, on purpose; ``close()`` just drops the TCP connection.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import ssl
import struct
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from ..contract import routes
from .cookies import JWT_COOKIE_ORDER, cookie_header
from .errors import HandshakeRejected, SocketClosed, TargetUnreachable, redact_url
from .http import PortalHttp
from .media_urls import encode_uri_component

# A receive window this small fills after a few kB: the server's writes then queue on its side.
RECEIVE_BUFFER_BYTES = 4096
MAX_RESPONSE_HEAD_BYTES = 16 * 1024
# RFC 6455 5.2: opcode of a text frame with FIN set.
FIN_TEXT = 0x81
MASK_BIT = 0x80


def masked_text_frame(text: str) -> bytes:
    """RFC 6455 5.2/5.3: one FIN text frame, masked with a fresh random key as every client frame must be."""
    payload = text.encode()
    n = len(payload)
    if n < 126:
        length = bytes([MASK_BIT | n])
    elif n < 1 << 16:
        length = bytes([MASK_BIT | 126]) + struct.pack("!H", n)
    else:
        length = bytes([MASK_BIT | 127]) + struct.pack("!Q", n)
    key = os.urandom(4)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return bytes([FIN_TEXT]) + length + key + masked


class FrozenSocket:
    """Handshake, optional sends, then silence. Not thread-safe; one owner."""

    def __init__(self, url: str, *, cookie: str = "", origin: str | None = None, connect_timeout_s: float = 10.0) -> None:
        self.url = url
        self._cookie = cookie
        self._origin = origin
        self._connect_timeout_s = connect_timeout_s
        self._sock: socket.socket | None = None
        self.closed = False

    def __repr__(self) -> str:
        return f"FrozenSocket({redact_url(self.url)!r}, open={self._sock is not None and not self.closed})"

    @classmethod
    def for_booth(cls, http: PortalHttp, booth_id: str) -> FrozenSocket:
        """A frozen `/ws/booth/{booth_id}` with the JWT cookies of `http` and the portal's own Origin (contract 3.6)."""
        url = http.ws_url(routes.WS_BOOTH.path(booth_id=encode_uri_component(booth_id)))
        return cls(url, cookie=cookie_header(http.cookies, JWT_COOKIE_ORDER), origin=http.base_url)

    def connect(self) -> FrozenSocket:
        parts = urlsplit(self.url)
        secure = parts.scheme == "wss"
        port = parts.port or (443 if secure else 80)
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # Before connect, so the small window is what the server sees from the first segment on.
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER_BYTES)
        raw.settimeout(self._connect_timeout_s)
        try:
            raw.connect((parts.hostname, port))
            sock = ssl.create_default_context().wrap_socket(raw, server_hostname=parts.hostname) if secure else raw
            key = base64.b64encode(os.urandom(16)).decode()
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            lines = [f"GET {path} HTTP/1.1", f"Host: {parts.netloc}", "Upgrade: websocket", "Connection: Upgrade",
                     f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
            if self._cookie:
                lines.append(f"Cookie: {self._cookie}")
            if self._origin:
                lines.append(f"Origin: {self._origin}")
            sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
            head = self._read_head(sock)
        except OSError as exc:
            raw.close()
            raise TargetUnreachable(self.url, str(exc) or type(exc).__name__) from exc
        status_line = head.split(b"\r\n", 1)[0].split()
        status = int(status_line[1]) if len(status_line) >= 2 and status_line[1].isdigit() else 0
        if status != 101:
            sock.close()
            # Contract 3.6: a refused socket fails the HTTP upgrade (403), it never sees a close code.
            raise HandshakeRejected(self.url, status, head.split(b"\r\n", 1)[0].decode("latin-1"))
        sock.settimeout(None)
        self._sock = sock
        return self

    @staticmethod
    def _read_head(sock: socket.socket) -> bytes:
        # Byte by byte: whatever the server sends after the 101 (a first frame) must stay unread.
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(1)
            if not chunk:
                raise ConnectionResetError("the server closed the connection during the handshake")
            head += chunk
            if len(head) > MAX_RESPONSE_HEAD_BYTES:
                raise ConnectionError("handshake response head too long")
        return head

    def send_json(self, message: Mapping[str, Any]) -> None:
        """One client frame (e.g. `booth:join`); sending is fine, it is the reading that is frozen."""
        if self._sock is None or self.closed:
            raise SocketClosed(self.url, None, "frozen socket is not open")
        try:
            self._sock.sendall(masked_text_frame(json.dumps(message, separators=(",", ":"))))
        except OSError as exc:
            raise SocketClosed(self.url, None, f"send failed: {exc}") from exc

    def close(self) -> None:
        """Drop the TCP connection without a close frame (the tab is killed, not closed)."""
        if self._sock is not None and not self.closed:
            self.closed = True
            self._sock.close()
