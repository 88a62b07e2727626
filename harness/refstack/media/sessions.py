"""WebRTC sessions of the reference media relay: one aiortc peer connection per WHIP publisher or WHEP reader.

Owns the session state machine and the aiortc side of each session. HTTP lives in ``whip_server.py``;
which path a session belongs to, override and 404 rules live in ``relay.py``.

State machine (changed only by ``_set_state``, which logs ``old -> new``)::

    NEW --answer()--> CONNECTING --ICE+DTLS up--> CONNECTED
     \\                   \\                         \\
      +-------------------+-------------------------+--> CLOSED (DELETE, eviction, failure, handshake timeout)

- A publisher's audio receiver gets an RTP tap (``aiortc_patches.attach_tap``, no passthrough): packets go to
  the path's forwarder with their payload bytes untouched; nothing is decoded and no decoder thread starts.
- A reader's sender is fed by the forwarder, not by a track: ``forward()`` rewrites sequence number and
  timestamp (``forwarding.RtpRewriter``), applies the reader's share of injected loss, and writes the packet
  to the sender's DTLS transport.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcrtpparameters import RTCRtpSendParameters
from aiortc.rtp import RtpPacket
from aiortc.sdp import candidate_from_sdp

from harness.rtc import aiortc_patches

from .faults import FaultConfig
from .forwarding import RtpRewriter, SourcePacket
from .session_rules import SessionError, SessionState, UnsupportedOfferError

logger = logging.getLogger(__name__)


class WebRTCSession:
    """Common part of publisher and reader sessions."""

    kind = "session"

    def __init__(self, path_name: str, handshake_timeout_s: float, on_state: Callable[[WebRTCSession, SessionState], None]) -> None:
        self.path_name = path_name
        self.id = uuid.uuid4()  # MediaMTX "ID" header and API ids
        self.secret = uuid.uuid4()  # MediaMTX session URL: /{path}/whip|whep/{secret}
        self.created_s = time.time()
        self.state = SessionState.NEW
        self.state_history: list[SessionState] = [SessionState.NEW]
        self.close_reason = ""
        self._handshake_timeout_s = handshake_timeout_s
        self._on_state = on_state
        self._watchdog: asyncio.Task[None] | None = None
        self.pc = RTCPeerConnection(aiortc_patches.ice_configuration())
        self.pc.on("connectionstatechange", self._on_connection_state)

    def _set_state(self, new: SessionState) -> None:
        old = self.state
        if old is new:
            return
        self.state = new
        self.state_history.append(new)
        logger.info("%s %s on %s: %s -> %s", self.kind, str(self.id)[:8], self.path_name, old.value, new.value)
        self._on_state(self, new)

    async def answer(self, offer_sdp: str) -> str:
        """Apply the offer, return the complete SDP answer (ICE gathering done: no trickle needed)."""
        if self.state is not SessionState.NEW:
            raise SessionError(400, "session already negotiated")
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            self._prepare_transceivers()
            answer = await self.pc.createAnswer()
            await self.pc.setLocalDescription(answer)
        except SessionError:
            raise
        except (ValueError, AssertionError, KeyError) as exc:
            # aiortc raises these for malformed or unacceptable SDP.
            raise SessionError(400, f"invalid offer: {exc}") from exc
        self._set_state(SessionState.CONNECTING)
        self._watchdog = asyncio.get_running_loop().create_task(self._handshake_watchdog())
        return self.pc.localDescription.sdp

    def _prepare_transceivers(self) -> None:
        raise NotImplementedError

    async def _handshake_watchdog(self) -> None:
        # MediaMTX webrtcHandshakeTimeout: a session that never connects is closed.
        await asyncio.sleep(self._handshake_timeout_s)
        if self.state is SessionState.CONNECTING:
            await self.close("handshake timeout")

    async def _on_connection_state(self) -> None:
        state = self.pc.connectionState
        if state == "connected" and self.state is SessionState.CONNECTING:
            self._set_state(SessionState.CONNECTED)
        elif state in ("failed", "closed"):
            await self.close(f"peer connection {state}")

    async def add_candidates(self, fragment: str) -> None:
        """WHIP/WHEP trickle (PATCH application/trickle-ice-sdpfrag): add each ``a=candidate`` line."""
        mid = None
        for line in fragment.splitlines():
            line = line.strip()
            if line.startswith("a=mid:"):
                mid = line[len("a=mid:"):]
            elif line.startswith("a=candidate:"):
                try:
                    candidate = candidate_from_sdp(line[len("a="):].split(":", 1)[1])
                except (ValueError, IndexError) as exc:
                    raise SessionError(400, f"invalid candidate: {line}") from exc
                candidate.sdpMid = mid
                candidate.sdpMLineIndex = 0 if mid is None else None
                # Only loopback candidates can ever be reached; others are accepted and simply fail their checks.
                await self.pc.addIceCandidate(candidate)

    async def close(self, reason: str) -> None:
        if self.state is SessionState.CLOSED:
            return
        self.close_reason = reason
        self._set_state(SessionState.CLOSED)
        if self._watchdog is not None and self._watchdog is not asyncio.current_task():
            self._watchdog.cancel()
        await self.pc.close()

    def describe(self) -> dict[str, str]:
        """MediaMTX API shape of a source or reader entry."""
        return {"type": "webRTCSession", "id": str(self.id)}


class PublisherSession(WebRTCSession):
    """A WHIP publisher: receives Opus and hands every RTP packet to ``on_packet`` untouched."""

    kind = "publisher"

    def __init__(self, path_name: str, handshake_timeout_s: float, on_state, on_packet: Callable[[PublisherSession, RtpPacket], None]) -> None:
        super().__init__(path_name, handshake_timeout_s, on_state)
        self._on_packet = on_packet
        self.packets_received = 0
        self.bytes_received = 0

    def _prepare_transceivers(self) -> None:
        audio = [t for t in self.pc.getTransceivers() if t.kind == "audio"]
        if not audio:
            raise UnsupportedOfferError(406, "the offer has no audio track")
        for transceiver in audio:
            aiortc_patches.attach_tap(transceiver.receiver, self._tap, passthrough=False)

    def _tap(self, packet: RtpPacket) -> None:
        if not packet.payload:
            return  # padding-only packets carry no audio
        self.packets_received += 1
        self.bytes_received += len(packet.payload)
        self._on_packet(self, packet)


class _SilentTrack(MediaStreamTrack):
    """The reader's sender needs a track to start; this one never yields: the relay writes RTP itself."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._ended = asyncio.Event()

    async def recv(self):
        await self._ended.wait()
        raise MediaStreamError

    def stop(self) -> None:
        super().stop()
        self._ended.set()


class ReaderSession(WebRTCSession):
    """A WHEP reader: gets the path's packets with its own SSRC/sequence/timestamp and the same payload bytes."""

    kind = "reader"

    def __init__(self, path_name: str, handshake_timeout_s: float, on_state, number: int, faults: Callable[[], FaultConfig]) -> None:
        super().__init__(path_name, handshake_timeout_s, on_state)
        self.number = number
        self._faults = faults
        self._rng = faults().reader_rng(number)
        self._rewriter = RtpRewriter(self._rng)
        self._sender = None
        self._build_rtp: Callable[[int, int, int, bytes], bytes] | None = None  # set once the codec is negotiated
        self.packets_sent = 0
        self.bytes_sent = 0
        self.packets_dropped_loss = 0

    def _prepare_transceivers(self) -> None:
        if not any(t.kind == "audio" for t in self.pc.getTransceivers()):
            raise UnsupportedOfferError(400, "the stream doesn't contain any supported codec")
        self._sender = self.pc.addTrack(_SilentTrack())
        aiortc_patches.capture_send_parameters(self._sender, self._on_send_parameters)

    def _on_send_parameters(self, parameters: RTCRtpSendParameters) -> None:
        codec = parameters.codecs[0]
        if codec.mimeType.lower() != "audio/opus":
            logger.warning("reader %s negotiated %s, not Opus: nothing will be forwarded", str(self.id)[:8], codec.mimeType)
            return
        self._build_rtp = aiortc_patches.rtp_packet_builder(
            payload_type=codec.payloadType, ssrc=aiortc_patches.sender_ssrc(self._sender), mid=parameters.muxId,
            ext_map=aiortc_patches.header_extensions_map(parameters),
        )

    def forward(self, packet: SourcePacket, now_s: float) -> None:
        # Synchronous (called once per reader and packet): building, protecting and sending never suspend.
        if self.state is not SessionState.CONNECTED or self._build_rtp is None:
            return
        if not aiortc_patches.sender_transport_connected(self._sender):
            return
        seq, ts = self._rewriter.map(packet, now_s)
        loss_pct = self._faults().loss_pct
        if loss_pct and self._rng.random() * 100.0 < loss_pct:
            # Injected loss on the relay -> reader leg: the sequence number is consumed, leaving a gap.
            self.packets_dropped_loss += 1
            return
        data = self._build_rtp(seq, ts, packet.marker, packet.payload)
        try:
            aiortc_patches.send_rtp_now(self._sender, data)
        except ConnectionError:
            return
        self._rewriter.sent(seq, ts, now_s)
        aiortc_patches.record_sent_rtp(self._sender, ts, len(packet.payload))
        self.packets_sent += 1
        self.bytes_sent += len(packet.payload)


async def close_all(sessions: list[WebRTCSession], reason: str) -> None:
    """Close sessions concurrently; one failing close must not keep the others open (shutdown path)."""
    results = await asyncio.gather(*(s.close(reason) for s in sessions), return_exceptions=True)
    for session, result in zip(sessions, results):
        if isinstance(result, Exception):
            logger.warning("%s %s: close failed: %r", session.kind, str(session.id)[:8], result)
