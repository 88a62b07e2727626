"""Minimal real peers for the relay's own tests and capacity benchmark: a WHIP publisher, a WHEP subscriber, an RTSP reader.

- :class:`LoopPublisher` sends a pre-encoded Opus loop (``harness.rtc.audio.load_loop``) paced on an absolute
  20 ms schedule; aiortc's sender only packs the ``av.Packet`` s. It records when each payload was sent.
- :class:`RecordingSubscriber` reads a WHEP path and records every RTP packet (arrival time, sequence number,
  timestamp, SSRC, payload hash) through the relay's RTP tap: no jitter buffer, no decoding.
- :class:`RtspClient` speaks RTSP/1.0 over one TCP connection, one request at a time, and collects the
  interleaved frames it receives (RFC 2326 10.12); ``play()`` is the DESCRIBE/SETUP/PLAY a TCP reader does.

Both use ``iceServers=[]`` and loopback-only ICE host candidates. Deliberately independent of ``harness.media``'s
WhipPublisher/WhepListener (the load engine), so the relay is tested with peers that share no code with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import struct
import time
from fractions import Fraction
from urllib.parse import urljoin, urlsplit

import av
import httpx
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtp import RtpPacket

from harness.rtc.audio import payload_hash
from harness.rtc import aiortc_patches

FRAME_SAMPLES = 960
FRAME_S = 0.02
OPUS_TIME_BASE = Fraction(1, 48000)

aiortc_patches.install(aiortc_patches.Role.TAP)  # loopback-only ICE, parsed-packet taps

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


class LoopTrack(MediaStreamTrack):
    kind = "audio"

    def __init__(self, payloads: tuple[bytes, ...] | list[bytes], clock=time.monotonic) -> None:
        super().__init__()
        self._payloads = payloads
        self._clock = clock
        self._index = 0
        self._start_s: float | None = None
        self.sent_at_s: dict[bytes, float] = {}  # payload hash -> last send time
        self.sent_count = 0

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start_s is None:
            self._start_s = self._clock()
        # Absolute schedule: packet n leaves at start + n * 20 ms, so pacing never drifts.
        wait_s = self._start_s + self._index * FRAME_S - self._clock()
        if wait_s > 0:
            await asyncio.sleep(wait_s)
        payload = self._payloads[self._index % len(self._payloads)]
        packet = av.Packet(payload)
        packet.pts = self._index * FRAME_SAMPLES
        packet.time_base = OPUS_TIME_BASE
        self._index += 1
        # aiortc's sender packs and sends this packet without suspending: now is the send time.
        self.sent_at_s[payload_hash(payload)] = self._clock()
        self.sent_count += 1
        return packet


class WhipWhepError(RuntimeError):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body}")
        self.status = status


async def _post_offer(http: httpx.AsyncClient, url: str, pc: RTCPeerConnection) -> str:
    await pc.setLocalDescription(await pc.createOffer())
    response = await http.post(url, content=pc.localDescription.sdp, headers={"Content-Type": "application/sdp"})
    if response.status_code != 201:
        raise WhipWhepError(response.status_code, response.text)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=response.text, type="answer"))
    return urljoin(url, response.headers["Location"])


async def wait_connected(pc: RTCPeerConnection, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while pc.connectionState != "connected":
        if pc.connectionState in ("failed", "closed") or time.monotonic() > deadline:
            raise TimeoutError(f"peer connection {pc.connectionState}")
        await asyncio.sleep(0.02)


class LoopPublisher:
    def __init__(self, http: httpx.AsyncClient, media_url: str, path: str, payloads) -> None:
        self.http = http
        self.url = f"{media_url}/{path}/whip"
        self.track = LoopTrack(payloads)
        self.pc = RTCPeerConnection(aiortc_patches.ice_configuration())
        self.session_url: str | None = None

    async def start(self) -> LoopPublisher:
        self.pc.addTransceiver(self.track, direction="sendonly")
        self.session_url = await _post_offer(self.http, self.url, self.pc)
        await wait_connected(self.pc)
        return self

    async def close(self, delete: bool = True) -> None:
        if delete and self.session_url:
            await self.http.delete(self.session_url)
        await self.pc.close()


@dataclasses.dataclass(frozen=True)
class Arrival:
    time_s: float
    seq: int
    ts: int
    ssrc: int
    hash: bytes


class RecordingSubscriber:
    def __init__(self, http: httpx.AsyncClient, media_url: str, path: str, clock=time.monotonic, record: bool = True) -> None:
        self.http = http
        self.url = f"{media_url}/{path}/whep"
        self.clock = clock
        self.record = record  # False: only count packets (benchmarks), no per-packet record or hash
        self.packet_count = 0
        self.pc = RTCPeerConnection(aiortc_patches.ice_configuration())
        self.arrivals: list[Arrival] = []
        self.session_url: str | None = None
        self.states: list[str] = []
        self.pc.on("connectionstatechange", lambda: self.states.append(self.pc.connectionState))

    async def start(self, wait: bool = True) -> RecordingSubscriber:
        transceiver = self.pc.addTransceiver("audio", direction="recvonly")
        aiortc_patches.attach_tap(transceiver.receiver, self._tap, passthrough=False)
        self.session_url = await _post_offer(self.http, self.url, self.pc)
        if wait:
            await wait_connected(self.pc)
        return self

    def _tap(self, packet: RtpPacket) -> None:
        self.packet_count += 1
        if not self.record:
            return
        self.arrivals.append(Arrival(self.clock(), packet.sequence_number, packet.timestamp, packet.ssrc, payload_hash(packet.payload)))

    async def wait_packets(self, count: int, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.arrivals) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self.arrivals)} of {count} packets arrived")
            await asyncio.sleep(0.02)

    async def close(self, delete: bool = True) -> None:
        if delete and self.session_url:
            await self.http.delete(self.session_url)
        await self.pc.close()


class RtspClient:
    """An RTSP/1.0 client on one TCP connection: requests answered in order, interleaved frames collected.

    ``record=False`` only counts frames (benchmarks). Responses are ``(status, headers, body)`` with lower-case
    header names. Written from RFC 2326 alone, sharing no code with the relay's server.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, record: bool = True) -> None:
        self.reader, self.writer = reader, writer
        self.record = record
        self.cseq = 0
        self.frames: list[tuple[int, bytes]] = []
        self.frame_count = 0
        self._pump: asyncio.Task[None] | None = None

    @classmethod
    async def connect(cls, rtsp_url: str, record: bool = True) -> RtspClient:
        parts = urlsplit(rtsp_url)
        return cls(*await asyncio.open_connection(parts.hostname, parts.port), record=record)

    async def send_raw(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def request(self, method: str, url: str, headers: dict[str, str] | None = None, cseq: bool = True):
        lines = [f"{method} {url} RTSP/1.0"]
        if cseq:
            self.cseq += 1
            lines.append(f"CSeq: {self.cseq}")
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        await self.send_raw(("\r\n".join(lines) + "\r\n\r\n").encode())
        return await self.response()

    async def _frame(self) -> None:
        channel, size = struct.unpack("!BH", await self.reader.readexactly(3))
        data = await self.reader.readexactly(size)
        self.frame_count += 1
        if self.record:
            self.frames.append((channel, data))

    async def response(self, timeout_s: float = 10.0):
        async def read():
            while True:
                first = await self.reader.readexactly(1)
                if first == b"$":
                    await self._frame()
                    continue
                head = (first + await self.reader.readuntil(b"\r\n\r\n")).decode()
                status_line, *header_lines = head.strip().split("\r\n")
                headers = {k.strip().lower(): v.strip() for k, v in (h.split(":", 1) for h in header_lines)}
                body = await self.reader.readexactly(int(headers.get("content-length", 0)))
                return int(status_line.split()[1]), headers, body.decode()

        return await asyncio.wait_for(read(), timeout_s)

    async def read_frames(self, count: int, timeout_s: float = 10.0) -> None:
        """Read until ``count`` frames have arrived in all (nothing else may arrive meanwhile)."""
        async def read():
            while self.frame_count < count:
                if await self.reader.readexactly(1) != b"$":
                    raise ValueError("expected an interleaved frame")
                await self._frame()

        await asyncio.wait_for(read(), timeout_s)

    async def play(self, url: str, transport: str = "RTP/AVP/TCP;unicast;interleaved=0-1") -> str:
        """DESCRIBE, SETUP of track 0, PLAY; then frames are read in the background. Returns the session id."""
        for method, target, headers in (("DESCRIBE", url, {}), ("SETUP", f"{url}/trackID=0", {"Transport": transport})):
            status, response_headers, _ = await self.request(method, target, headers)
            if status != 200:
                raise WhipWhepError(status, f"RTSP {method} {target}")
        session = response_headers["session"].split(";")[0]
        status, _, _ = await self.request("PLAY", url, {"Session": session})
        if status != 200:
            raise WhipWhepError(status, f"RTSP PLAY {url}")
        self._pump = asyncio.get_running_loop().create_task(self.read_frames(2**62, timeout_s=None))
        return session

    async def at_eof(self, timeout_s: float = 5.0) -> bool:
        """Whether the server closes the connection within ``timeout_s`` (whatever it still sends is dropped)."""
        async def drain():
            while await self.reader.read(65536):
                pass

        try:
            await asyncio.wait_for(drain(), timeout_s)
        except asyncio.TimeoutError:
            return False
        return True

    async def close(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, asyncio.IncompleteReadError, ConnectionError):
                await self._pump
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()
