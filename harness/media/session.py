"""The life of one WebRTC session (publisher or listener): its state machine, setup timing, and the
translation of aiortc/aioice exceptions into the typed errors of errors.py, phase by phase.

States change only through ``_set_state`` (logged ``old -> new`` and kept in ``transitions``):

    NEW -> OFFERING -> POSTING -> CONNECTING -> CONNECTED -> STREAMING -> CLOSING -> CLOSED
    any state before CLOSING -> FAILED (then CLOSING -> CLOSED on close)

STREAMING means the first RTP packet was sent (publisher) or received (listener).
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import logging
import time

import aiohttp
from aiortc import RTCPeerConnection, RTCSessionDescription

from . import signaling
from ..rtc.aiortc_patches import ice_configuration
from .errors import AnswerError, FirstPacketTimeout, IceError, OfferError, SessionError

logger = logging.getLogger(__name__)


class SessionState(enum.Enum):
    NEW = "new"
    OFFERING = "offering"
    POSTING = "posting"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    STREAMING = "streaming"
    FAILED = "failed"
    CLOSING = "closing"
    CLOSED = "closed"


@dataclasses.dataclass(frozen=True)
class SessionTimeouts:
    post_s: float = 10.0
    connect_s: float = 10.0
    first_packet_s: float = 5.0
    delete_s: float = 2.0


@dataclasses.dataclass(frozen=True)
class SetupTimes:
    """Milliseconds from the start of setup (before createOffer) to each milestone; None if not reached."""

    offer_ms: float | None = None  # offer created and ICE gathering complete
    post_ms: float | None = None  # POST -> 2xx, measured from the POST alone
    connected_ms: float | None = None  # ICE + DTLS connected
    first_packet_ms: float | None = None  # first RTP packet sent or received


class MediaSession:
    """Common part of WhipPublisher and WhepListener: offer, POST, answer, connect, first packet, close."""

    kind = "session"

    def __init__(self, handle: str, url: str, http: aiohttp.ClientSession, timeouts: SessionTimeouts) -> None:
        self.handle = handle
        self.url = url
        self._http = http
        self.timeouts = timeouts
        self.state = SessionState.NEW
        self.transitions: list[tuple[SessionState, SessionState]] = []
        self.location: str | None = None
        self.etag: str | None = None
        self.error: SessionError | None = None
        self.pc = RTCPeerConnection(configuration=ice_configuration())
        self._t0_ns = time.monotonic_ns()
        self._times: dict[str, float] = {}
        self._connected = asyncio.Event()
        self._failed = asyncio.Event()
        self._first_packet = asyncio.Event()
        self.pc.on("connectionstatechange", self._on_connection_state)

    # --- state ---
    def _set_state(self, new: SessionState) -> None:
        old = self.state
        if old == new:
            return
        self.state = new
        self.transitions.append((old, new))
        logger.debug("%s %s: %s -> %s", self.kind, self.handle, old.value, new.value)

    def _mark(self, milestone: str) -> None:
        self._times.setdefault(milestone, (time.monotonic_ns() - self._t0_ns) / 1e6)

    @property
    def setup_times(self) -> SetupTimes:
        return SetupTimes(**{k: self._times.get(k) for k in ("offer_ms", "post_ms", "connected_ms", "first_packet_ms")})

    def _on_connection_state(self) -> None:
        state = self.pc.connectionState
        if state == "connected":
            self._connected.set()
        elif state in ("failed", "closed"):
            self._failed.set()

    def _first_packet_seen(self) -> None:
        if not self._first_packet.is_set():
            self._mark("first_packet_ms")
            self._first_packet.set()
            if self.state == SessionState.CONNECTED:
                self._set_state(SessionState.STREAMING)

    @property
    def disconnected(self) -> bool:
        return self._failed.is_set()

    # --- setup ---
    def _prepare(self) -> None:
        """Add the transceiver (subclasses)."""
        raise NotImplementedError

    async def setup(self) -> SetupTimes:
        """Run the whole setup; raises the SessionError of the failing phase (the session is then FAILED)."""
        try:
            await self._setup()
        except SessionError as exc:
            self.error = exc
            self._set_state(SessionState.FAILED)
            raise
        return self.setup_times

    async def _setup(self) -> None:
        self._set_state(SessionState.OFFERING)
        try:
            self._prepare()
            # aiortc gathers every candidate inside setLocalDescription: the offer is complete (no trickle).
            await self.pc.setLocalDescription(await self.pc.createOffer())
        except Exception as exc:  # aiortc raises plain exceptions of many kinds here
            raise OfferError(f"{self.kind} {self.handle}: creating the offer failed: {exc}") from exc
        self._mark("offer_ms")

        self._set_state(SessionState.POSTING)
        post_start_ns = time.monotonic_ns()
        answer = await signaling.post_offer(self._http, self.url, self.pc.localDescription.sdp, self.timeouts.post_s)
        self._times["post_ms"] = (time.monotonic_ns() - post_start_ns) / 1e6
        self.location, self.etag = answer.location, answer.etag

        self._set_state(SessionState.CONNECTING)
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer.sdp, type="answer"))
        except Exception as exc:
            raise AnswerError(f"{self.kind} {self.handle}: the SDP answer was not usable: {exc}") from exc
        self._after_answer()
        await self._wait_for(self._connected, self.timeouts.connect_s, IceError, "ICE/DTLS did not connect")
        self._mark("connected_ms")
        self._set_state(SessionState.CONNECTED)
        await self._wait_for(self._first_packet, self.timeouts.first_packet_s, FirstPacketTimeout, "no RTP packet")
        self._set_state(SessionState.STREAMING)

    async def _wait_for(self, event: asyncio.Event, timeout_s: float, error: type[SessionError], what: str) -> None:
        waiter = asyncio.ensure_future(event.wait())
        failed = asyncio.ensure_future(self._failed.wait())
        try:
            done, _ = await asyncio.wait({waiter, failed}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            failed.cancel()
        if event.is_set():
            return
        if self._failed.is_set():
            raise error(f"{self.kind} {self.handle}: {what}: peer connection {self.pc.connectionState}")
        raise error(f"{self.kind} {self.handle}: {what} within {timeout_s:g} s")

    # --- teardown ---
    async def close(self) -> None:
        if self.state in (SessionState.CLOSING, SessionState.CLOSED):
            return
        self._set_state(SessionState.CLOSING)
        self._on_close()
        if self.location:
            await signaling.delete_session(self._http, self.location, self.timeouts.delete_s)
        await self.pc.close()
        self._set_state(SessionState.CLOSED)

    def _after_answer(self) -> None:
        """Hook: the answer is applied (aiortc has created the remote tracks)."""

    def _on_close(self) -> None:
        """Hook: stop subclass tasks before the peer connection closes."""
