"""RTSP surface of the reference media relay, for readers (MediaMTX ``rtspAddress``, VoxBento ``:8554``).

Spec: RFC 2326 (RTSP 1.0), with RTP carried on the RTSP connection (RFC 2326 section 10.12), the Opus RTP
payload of RFC 7587 and SDP (RFC 4566). Where the RFC leaves room, MediaMTX (gortsplib) is imitated, because
VoxBento's transcription workers read MediaMTX: ``ffmpeg -rtsp_transport tcp -i {MEDIAMTX_RTSP_BASE}/{path}``
(contract 7.1). Owns the RTSP wire format (requests, responses, interleaved frames), :class:`RtspConnection`
(one TCP connection) and :class:`RtspSession` (one reader of one path). Which path may be read is decided by
``relay.py``, like for WHEP; packets come from the path's ``forwarding.PathForwarder`` and keep their Opus
payload bytes; each session rewrites SSRC, sequence number and timestamp (``forwarding.RtpRewriter``).

What is served:

- ``OPTIONS`` -> 200 with ``Public``. ``DESCRIBE`` -> 200 with an SDP holding the path's one Opus track
  (``a=rtpmap:96 opus/48000/2``, ``a=control:trackID=0``) and ``Content-Base``; 404 when the path has no
  publisher and is not ``alwaysAvailable`` (MediaMTX ``PathNoStreamAvailableError``).
- ``SETUP`` with ``RTP/AVP/TCP`` (interleaved): 200 with ``Transport`` and ``Session: <id>;timeout=60``; the
  session is listed as a reader of the path from here on (as MediaMTX adds it at SETUP). UDP, multicast and
  SRTP transports -> 461 Unsupported Transport (MediaMTX also serves UDP; VoxBento's workers ask for TCP).
- ``PLAY`` -> 200 with ``RTP-Info`` (seq and rtptime of the first packet the reader will get); packets flow
  as ``$`` + channel + 16-bit length + RTP. On an ``alwaysAvailable`` path with no publisher, the packets are
  MediaMTX's offline track: Opus DTX frames (silence) in real time, until a publisher arrives. ``GET_PARAMETER`` (keepalive) -> 200. ``TEARDOWN`` -> 200 and the
  session ends; the connection stays open. Publishing methods (``ANNOUNCE``, ``RECORD``) -> 501.
- Control API (``control_api.py``): ``/v3/rtspsessions/list|get|kick`` and ``/v3/rtspconns/list|get`` with
  MediaMTX's field names; readers of a path are ``{"type": "rtspSession", "id": ...}``.

Not served: RTCP sender reports (optional for readers; ffmpeg decodes without them), PAUSE, authentication.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import enum
import logging
import os
import random
import struct
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from .faults import FaultConfig
from .forwarding import RtpRewriter, SourcePacket
from .session_rules import SessionError

if TYPE_CHECKING:
    from .relay import MediaRelay

logger = logging.getLogger(__name__)

RTSP_VERSION = "RTSP/1.0"
DEFAULT_RTSP_PORT = 8554  # MediaMTX rtspAddress :8554 (contract section 0)
SERVER_HEADER = "voxload-refstack"
# RFC 3551 section 3: a dynamic payload type, bound to Opus by the SDP's rtpmap (the number is the server's choice).
OPUS_PAYLOAD_TYPE = 96
# The relay's paths carry exactly one track.
TRACK_CONTROL = "trackID=0"
# MediaMTX (gortsplib IdleTimeout 60 s) advertises the session timeout in the Session header (RFC 2326 12.37).
SESSION_TIMEOUT_S = 60
# MediaMTX readTimeout (default 10 s): a connection that sends nothing for this long is closed, unless it is
# playing over TCP (then RTP flows the other way and the client owes nothing but optional RTCP).
DEFAULT_READ_TIMEOUT_S = 10.0
# Bounds on what a client may send: a request head, a body (RTSP readers send none) and an interleaved frame.
MAX_HEAD_BYTES = 16 * 1024
MAX_BODY_BYTES = 64 * 1024
# A reader that stops reading its socket: packets are discarded once this much is queued in its transport,
# counted as outboundRTPPacketsDiscarded (MediaMTX's write queue full), instead of buffering without bound.
MAX_WRITE_BUFFER_BYTES = 256 * 1024
PUBLIC_METHODS = ("DESCRIBE", "SETUP", "PLAY", "GET_PARAMETER", "TEARDOWN")

# RFC 2326 section 7.1.1 status codes used here.
REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    454: "Session Not Found",
    455: "Method Not Valid in This State",
    461: "Unsupported Transport",
    500: "Internal Server Error",
    501: "Not Implemented",
    505: "RTSP Version Not Supported",
}


class RtspError(Exception):
    """A request the server refuses with ``status``; ``close`` also ends the connection (unparseable input)."""

    def __init__(self, status: int, message: str, close: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.close = close


@dataclasses.dataclass(frozen=True)
class RtspRequest:
    method: str
    url: str
    version: str
    headers: dict[str, str]  # lower-case names (RFC 2326 section 4.2: header names are case-insensitive)
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def parse_request_head(head: bytes) -> tuple[str, str, str, dict[str, str]]:
    """Request-Line and headers (RFC 2326 section 6). Raises RtspError(400) on anything malformed."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        raise RtspError(400, "request head is not UTF-8", close=True) from None
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[0] or not parts[1]:
        raise RtspError(400, f"malformed request line {lines[0][:80]!r}", close=True)
    method, url, version = parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise RtspError(400, f"malformed header line {line[:80]!r}", close=True)
        headers[name.strip().lower()] = value.strip()
    return method, url, version, headers


def split_url(url: str) -> tuple[str, str]:
    """Path name and query of a request URL: ``rtsp://h:p/ev/1/es/trackID=0?x`` -> (``ev/1/es``, ``x``).

    The track suffix is dropped: a SETUP URL is the Content-Base plus the track's control (RFC 2326 C.1.1).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("rtsp", "rtsps") or not parts.path.startswith("/"):
        raise RtspError(400, f"invalid URL {url[:120]!r}")
    path = unquote(parts.path[1:]).rstrip("/")
    if path.endswith(TRACK_CONTROL):
        path = path[: -len(TRACK_CONTROL)].rstrip("/")
    elif "/trackID=" in path or path.startswith("trackID="):
        # MediaMTX: a SETUP for a track the stream does not have is 400 (media not found).
        raise RtspError(400, "no such track")
    if not path:
        raise RtspError(400, "invalid path")
    return path, parts.query


def session_description(server_host: str) -> str:
    """SDP of a path (RFC 4566; Opus per RFC 7587 section 7: clock rate 48000 and 2 channels, always)."""
    return "\r\n".join([
        "v=0",
        f"o=- 0 0 IN IP4 {server_host}",
        "s=voxload relay",
        "c=IN IP4 0.0.0.0",  # as MediaMTX: RTP goes over the RTSP connection, so no address applies
        "t=0 0",
        f"m=audio 0 RTP/AVP {OPUS_PAYLOAD_TYPE}",
        f"a=control:{TRACK_CONTROL}",
        f"a=rtpmap:{OPUS_PAYLOAD_TYPE} opus/48000/2",
        f"a=fmtp:{OPUS_PAYLOAD_TYPE} sprop-stereo=0",
        "",
    ])


@dataclasses.dataclass(frozen=True)
class TcpTransport:
    """The one transport served: RTP/AVP over the RTSP connection on channels (rtp, rtp + 1)."""

    rtp_channel: int


def choose_transport(header: str | None) -> TcpTransport:
    """RFC 2326 section 12.39: the client lists transports by preference; the first one served is chosen."""
    if not header:
        raise RtspError(400, "missing Transport header")
    for spec in header.split(","):
        params = [p.strip() for p in spec.split(";") if p.strip()]
        if not params or params[0].upper() != "RTP/AVP/TCP":
            continue  # RTP/AVP (UDP), RTP/AVP/UDP and RTP/SAVP are not served here
        values = dict(p.split("=", 1) if "=" in p else (p, "") for p in params[1:])
        if values.get("mode", "play").strip('"').lower() != "play":
            raise RtspError(400, "only mode=play is served (this server has no RTSP publishers)")
        if "interleaved" not in values:
            return TcpTransport(0)
        first, _, second = values["interleaved"].partition("-")
        try:
            rtp = int(first)
            rtcp = int(second) if second else rtp + 1
        except ValueError:
            raise RtspError(400, f"invalid interleaved={values['interleaved']!r}") from None
        # As gortsplib: the pair must be (n, n + 1) and fit in the frame's one-byte channel (RFC 2326 10.12).
        if rtcp != rtp + 1 or not 0 <= rtp <= 254:
            raise RtspError(400, f"invalid interleaved={values['interleaved']!r}")
        return TcpTransport(rtp)
    # RFC 2326 11.3 (461 Unsupported Transport): no listed transport is served; ffmpeg then retries with TCP.
    raise RtspError(461, "only RTP/AVP/TCP (interleaved) is served")


def _iso(ts_s: float) -> str:
    return datetime.datetime.fromtimestamp(ts_s, datetime.timezone.utc).isoformat().replace("+00:00", "Z")


class RtspSessionState(enum.Enum):
    """RFC 2326 Appendix A.2 server states of a reader, plus CLOSED once it has ended."""

    INIT = "init"
    READY = "ready"  # SETUP done; MediaMTX's API calls this "idle"
    PLAYING = "playing"  # MediaMTX's API: "read"
    CLOSED = "closed"


_API_STATE = {RtspSessionState.INIT: "idle", RtspSessionState.READY: "idle", RtspSessionState.PLAYING: "read",
              RtspSessionState.CLOSED: "idle"}


class RtspSession:
    """One RTSP reader of one path, bound to the TCP connection that set it up."""

    kind = "rtsp-reader"
    # relay.py: readers that get MediaMTX's offline track (DTX silence) while an alwaysAvailable path has no publisher.
    offline_audio = True

    def __init__(self, conn: RtspConnection, path_name: str, query: str, user_agent: str, transport: TcpTransport,
                 number: int, faults: Callable[[], FaultConfig]) -> None:
        self.id = uuid.uuid4()  # MediaMTX API id of the session (readers[].id, /v3/rtspsessions/get/{id})
        self.secret = os.urandom(8).hex()  # the Session header value (RFC 2326 12.37), distinct from the API id
        self.conn = conn
        self.path_name = path_name
        self.query = query
        self.user_agent = user_agent
        self.transport = transport
        self.number = number
        self.created_s = time.time()
        self.state = RtspSessionState.INIT
        self.state_history = [RtspSessionState.INIT]
        self.close_reason = ""
        self._faults = faults
        self._rng = faults().reader_rng(number)
        self.ssrc = random.getrandbits(32)
        self._rewriter = RtpRewriter(self._rng)
        self.packets_sent = 0
        self.bytes_sent = 0  # everything written for RTP, framing included (MediaMTX outboundBytes)
        self.packets_dropped_loss = 0
        self.packets_discarded = 0
        self.rtcp_packets_received = 0
        self.bytes_received = 0

    def _set_state(self, new: RtspSessionState) -> None:
        old = self.state
        if old is new:
            return
        self.state = new
        self.state_history.append(new)
        logger.info("rtsp session %s on %s: %s -> %s", str(self.id)[:8], self.path_name, old.value, new.value)

    def set_up(self) -> None:
        self._set_state(RtspSessionState.READY)

    def play(self) -> tuple[int, int]:
        """Start sending; returns (seq, rtptime) of the first packet for RTP-Info (RFC 2326 section 12.33)."""
        first = self._rewriter.initial()
        self._set_state(RtspSessionState.PLAYING)
        self.conn.server.relay.reader_playing(self)
        return first

    def forward(self, packet: SourcePacket, now_s: float) -> None:
        # forwarding.PacketSink: called once per packet of the path; never suspends.
        if self.state is not RtspSessionState.PLAYING:
            return
        seq, ts = self._rewriter.map(packet, now_s)
        loss_pct = self._faults().loss_pct
        if loss_pct and self._rng.random() * 100.0 < loss_pct:
            self.packets_dropped_loss += 1  # injected loss: the sequence number is consumed, leaving a gap
            return
        if self.conn.write_buffer_bytes() > MAX_WRITE_BUFFER_BYTES:
            self.packets_discarded += 1
            return
        # RFC 3550 section 5.1 fixed header: V=2, no padding/extension/CSRC; marker and PT in the 2nd byte.
        rtp = struct.pack("!BBHII", 0x80, (packet.marker & 1) << 7 | OPUS_PAYLOAD_TYPE, seq, ts, self.ssrc) + packet.payload
        self.bytes_sent += self.conn.write_interleaved(self.transport.rtp_channel, rtp)
        self._rewriter.sent(seq, ts, now_s)
        self.packets_sent += 1

    def received_interleaved(self, channel: int, size: int) -> None:
        self.bytes_received += size + 4
        if channel == self.transport.rtp_channel + 1:
            self.rtcp_packets_received += 1  # receiver reports; read and counted, not interpreted

    async def close(self, reason: str) -> None:
        """End the session (relay: stream ended / replaced; API kick; connection gone). Closes the connection
        too, as MediaMTX does for a TCP reader whose session it ends: the client sees end of stream."""
        if self.state is RtspSessionState.CLOSED:
            return
        self.close_reason = reason
        self._set_state(RtspSessionState.CLOSED)
        self.conn.session_ended(self, reason, close_connection=True)

    def end(self, reason: str) -> None:
        """TEARDOWN or a closed connection: the session ends, the connection (if any) stays."""
        if self.state is RtspSessionState.CLOSED:
            return
        self.close_reason = reason
        self._set_state(RtspSessionState.CLOSED)
        self.conn.session_ended(self, reason, close_connection=False)

    def describe(self) -> dict[str, str]:
        """MediaMTX API shape of a path's reader entry."""
        return {"type": "rtspSession", "id": str(self.id)}

    def api_item(self) -> dict[str, Any]:
        """MediaMTX ``APIRTSPSession`` (GET /v3/rtspsessions/list and /get/{id}), deprecated aliases included."""
        return {
            "id": str(self.id),
            "created": _iso(self.created_s),
            "remoteAddr": self.conn.remote_addr,
            "state": _API_STATE[self.state],
            "path": self.path_name,
            "query": self.query,
            "user": "",
            "userAgent": self.user_agent,
            "transport": "TCP",
            "profile": "AVP",
            "conns": [str(self.conn.id)] if not self.conn.closed else [],
            "inboundBytes": self.bytes_received,
            "inboundRTPPackets": 0,
            "inboundRTPPacketsLost": 0,
            "inboundRTPPacketsInError": 0,
            "inboundRTPPacketsJitter": 0.0,
            "inboundRTCPPackets": self.rtcp_packets_received,
            "inboundRTCPPacketsInError": 0,
            "outboundBytes": self.bytes_sent,
            "outboundRTPPackets": self.packets_sent,
            "outboundRTPPacketsReportedLost": 0,
            "outboundRTPPacketsDiscarded": self.packets_discarded,
            "outboundRTCPPackets": 0,
            "bytesReceived": self.bytes_received,
            "bytesSent": self.bytes_sent,
            "rtpPacketsReceived": 0,
            "rtpPacketsSent": self.packets_sent,
            "rtpPacketsLost": 0,
            "rtpPacketsInError": 0,
            "rtpPacketsJitter": 0.0,
            "rtcpPacketsReceived": self.rtcp_packets_received,
            "rtcpPacketsSent": 0,
            "rtcpPacketsInError": 0,
        }


class RtspConnection:
    """One client TCP connection: reads requests and interleaved frames in order, answers each request."""

    def __init__(self, server: RtspServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.id = uuid.uuid4()
        self.server = server
        self._reader = reader
        self._writer = writer
        peer = writer.get_extra_info("peername") or ("?", 0)
        self.remote_addr = f"{peer[0]}:{peer[1]}"
        self.created_s = time.time()
        self.session: RtspSession | None = None
        self.closed = False
        self.bytes_received = 0
        self.bytes_sent = 0

    # --- output ---
    def write_buffer_bytes(self) -> int:
        return self._writer.transport.get_write_buffer_size()

    def write_interleaved(self, channel: int, data: bytes) -> int:
        """RFC 2326 section 10.12: '$', the one-byte channel, the two-byte length, then the packet."""
        if self.closed:
            return 0
        frame = struct.pack("!cBH", b"$", channel, len(data)) + data
        self._writer.write(frame)
        self.bytes_sent += len(frame)
        return len(frame)

    def _respond(self, status: int, cseq: str | None, headers: dict[str, str] | None = None, body: bytes = b"") -> None:
        lines = [f"{RTSP_VERSION} {status} {REASONS.get(status, 'Error')}"]
        if cseq is not None:
            lines.append(f"CSeq: {cseq}")  # RFC 2326 12.17: the response carries the request's CSeq
        lines.append(f"Server: {SERVER_HEADER}")
        for name, value in (headers or {}).items():
            lines.append(f"{name}: {value}")
        if body:
            lines.append(f"Content-Length: {len(body)}")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
        if not self.closed:
            self._writer.write(data)
            self.bytes_sent += len(data)

    # --- input ---
    async def serve(self) -> None:
        try:
            while not self.closed:
                playing = self.session is not None and self.session.state is RtspSessionState.PLAYING
                timeout_s = None if playing else self.server.read_timeout_s
                try:
                    first = await asyncio.wait_for(self._reader.readexactly(1), timeout_s)
                except asyncio.TimeoutError:
                    logger.info("rtsp conn %s: nothing read for %.0f s, closing", self.remote_addr, timeout_s)
                    return
                if first == b"$":
                    await self._read_interleaved()
                    continue
                try:
                    request = await self._read_request(first)
                except RtspError as exc:
                    self._respond(exc.status, None)
                    if exc.close:
                        return
                    continue
                await self._handle(request)
                await self._writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client went away
        finally:
            self._close("connection closed")

    async def _read_interleaved(self) -> None:
        channel, size = struct.unpack("!BH", await self._reader.readexactly(3))
        await self._reader.readexactly(size)
        self.bytes_received += size + 4
        if self.session is not None:
            self.session.received_interleaved(channel, size)

    async def _read_request(self, first: bytes) -> RtspRequest:
        try:
            head = first + await self._reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError:
            raise RtspError(400, "request head too large", close=True) from None
        self.bytes_received += len(head)
        method, url, version, headers = parse_request_head(head[:-4])
        length_raw = headers.get("content-length", "0")
        if not length_raw.isdigit() or int(length_raw) > MAX_BODY_BYTES:
            raise RtspError(400, f"invalid Content-Length {length_raw[:20]!r}", close=True)
        body = await self._reader.readexactly(int(length_raw)) if int(length_raw) else b""
        self.bytes_received += len(body)
        return RtspRequest(method, url, version, headers, body)

    async def _handle(self, request: RtspRequest) -> None:
        cseq = request.header("CSeq")
        if cseq is None:
            # RFC 2326 12.17: CSeq MUST be present; gortsplib answers 400 without one.
            self._respond(400, None)
            return
        if request.version != RTSP_VERSION:
            # RFC 2326 section 7.1.1, 505 RTSP Version Not Supported: only RTSP/1.0 is served.
            self._respond(505, cseq)
            return
        handler = {
            "OPTIONS": self._options, "DESCRIBE": self._describe, "SETUP": self._setup, "PLAY": self._play,
            "GET_PARAMETER": self._get_parameter, "TEARDOWN": self._teardown,
        }.get(request.method)
        try:
            if handler is None:
                # RFC 2326 7.1.1, 501 Not Implemented: ANNOUNCE/RECORD (publishing), PAUSE, SET_PARAMETER, REDIRECT.
                raise RtspError(501, f"{request.method[:20]} is not implemented")
            status, headers, body = await handler(request)
        except RtspError as exc:
            logger.info("rtsp %s %s from %s: %d %s", request.method, request.url[:120], self.remote_addr, exc.status, exc)
            self._respond(exc.status, cseq)
            return
        except Exception:  # a bug here must cost one request, not the relay's other readers
            logger.exception("rtsp %s %s from %s failed", request.method, request.url[:120], self.remote_addr)
            self._respond(500, cseq)
            return
        self._respond(status, cseq, headers, body)

    def _session_for(self, request: RtspRequest, required: bool) -> RtspSession | None:
        """The session named by the Session header; sessions over TCP belong to their connection."""
        raw = request.header("Session")
        if raw is None:
            if required:
                # RFC 2326 12.37 and 11.3 (454 Session Not Found): PLAY and TEARDOWN name the session SETUP made.
                raise RtspError(454, "missing Session header")
            return self.session
        secret = raw.split(";", 1)[0].strip()
        if self.session is None or secret != self.session.secret:
            raise RtspError(454, "session not found")
        return self.session

    def _session_header(self, session: RtspSession) -> dict[str, str]:
        return {"Session": f"{session.secret};timeout={SESSION_TIMEOUT_S}"}

    async def _options(self, request: RtspRequest):
        headers = {"Public": ", ".join(PUBLIC_METHODS)}
        session = self._session_for(request, required=False) if request.header("Session") else None
        if session is not None:
            headers.update(self._session_header(session))
        return 200, headers, b""

    async def _describe(self, request: RtspRequest):
        path_name, _ = split_url(request.url)
        try:
            self.server.relay.check_readable(path_name)
        except SessionError as exc:
            raise RtspError(exc.status, str(exc)) from None
        body = session_description(self.server.advertised_host).encode()
        # RFC 2326 C.1.1: relative control URLs resolve against Content-Base (the request URL, as gortsplib).
        base = request.url.split("?", 1)[0].rstrip("/") + "/"
        return 200, {"Content-Base": base, "Content-Type": "application/sdp"}, body

    async def _setup(self, request: RtspRequest):
        session = self._session_for(request, required=False)
        if session is not None:
            # One track per path: a second SETUP in the same session has nothing left to set up (gortsplib 400).
            raise RtspError(400, "media already set up")
        transport = choose_transport(request.header("Transport"))
        path_name, query = split_url(request.url)
        session = RtspSession(self, path_name, query, request.header("User-Agent") or "", transport,
                              self.server.relay.next_reader_number(), lambda: self.server.relay.faults)
        try:
            self.server.relay.add_reader(path_name, session)
        except SessionError as exc:
            raise RtspError(exc.status, str(exc)) from None
        self.session = session
        self.server.sessions[session.id] = session
        session.set_up()
        headers = {
            "Transport": f"RTP/AVP/TCP;unicast;interleaved={transport.rtp_channel}-{transport.rtp_channel + 1};ssrc={session.ssrc:08X}",
            **self._session_header(session),
        }
        return 200, headers, b""

    async def _play(self, request: RtspRequest):
        session = self._session_for(request, required=True)
        path_name, _ = split_url(request.url)
        if path_name != session.path_name:
            raise RtspError(400, f"path has changed from {session.path_name!r}")
        headers = self._session_header(session)
        if session.state is RtspSessionState.READY:
            seq, rtptime = session.play()
            parts = urlsplit(request.url)
            # RFC 2326 12.33: seq and rtptime of the first packet, per track URL.
            headers["RTP-Info"] = f"url={parts.scheme}://{parts.netloc}/{session.path_name}/{TRACK_CONTROL};seq={seq};rtptime={rtptime}"
        return 200, headers, b""

    async def _get_parameter(self, request: RtspRequest):
        # Used as a keepalive by readers (ffmpeg sends it when Public lists it); the body is empty.
        session = self._session_for(request, required=False) if request.header("Session") else None
        headers = {"Content-Type": "text/parameters"}
        if session is not None:
            headers.update(self._session_header(session))
        return 200, headers, b""

    async def _teardown(self, request: RtspRequest):
        session = self._session_for(request, required=True)
        session.end("teardown")
        return 200, {}, b""  # gortsplib: no Session header after TEARDOWN

    # --- teardown of state ---
    def session_ended(self, session: RtspSession, reason: str, close_connection: bool) -> None:
        self.server.sessions.pop(session.id, None)
        self.server.relay.remove_reader(session)
        if self.session is session:
            self.session = None
        logger.info("rtsp session %s on %s ended: %s (%d packets sent)", str(session.id)[:8], session.path_name,
                    reason, session.packets_sent)
        if close_connection:
            self._close(reason)

    def _close(self, reason: str) -> None:
        if self.session is not None:
            self.session.end(reason)
        if self.closed:
            return
        self.closed = True
        self.server.conns.pop(self.id, None)
        self._writer.close()

    def api_item(self) -> dict[str, Any]:
        """MediaMTX ``APIRTSPConn`` (GET /v3/rtspconns/list and /get/{id})."""
        return {
            "id": str(self.id),
            "created": _iso(self.created_s),
            "remoteAddr": self.remote_addr,
            "session": str(self.session.id) if self.session is not None else None,
            "tunnel": "none",
            "inboundBytes": self.bytes_received,
            "outboundBytes": self.bytes_sent,
            "bytesReceived": self.bytes_received,
            "bytesSent": self.bytes_sent,
        }


class RtspServer:
    """The listener: one :class:`RtspConnection` per client, sessions and connections listed for the API."""

    def __init__(self, relay: MediaRelay, advertised_host: str = "127.0.0.1",
                 read_timeout_s: float = DEFAULT_READ_TIMEOUT_S) -> None:
        self.relay = relay
        self.advertised_host = advertised_host
        self.read_timeout_s = read_timeout_s
        self.sessions: dict[uuid.UUID, RtspSession] = {}
        self.conns: dict[uuid.UUID, RtspConnection] = {}
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, host: str, port: int) -> None:
        self._server = await asyncio.start_server(self._accept, host, port, limit=MAX_HEAD_BYTES)

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = RtspConnection(self, reader, writer)
        self.conns[conn.id] = conn
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await conn.serve()
        finally:
            if task is not None:
                self._tasks.discard(task)

    def find_session(self, raw_id: str) -> RtspSession:
        try:
            session = self.sessions.get(uuid.UUID(raw_id))
        except ValueError:
            raise SessionError(400, "invalid id") from None
        if session is None:
            raise SessionError(404, "session not found")
        return session

    def find_conn(self, raw_id: str) -> RtspConnection:
        try:
            conn = self.conns.get(uuid.UUID(raw_id))
        except ValueError:
            raise SessionError(400, "invalid id") from None
        if conn is None:
            raise SessionError(404, "connection not found")
        return conn

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for conn in list(self.conns.values()):
            conn._close("relay shutting down")
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
