"""The reference media relay's core: WHIP/WHEP session rules per path, as MediaMTX applies them.

Owns which session may publish or read where (contract 12.3), publisher override and what it does to readers,
session lookup for DELETE/PATCH, and the run-time fault knobs. HTTP is in ``whip_server.py`` and
``control_api.py``; aiortc is in ``sessions.py``.

Rules (MediaMTX as deployed by VoxBento, contract 12.1/12.3):

- WHIP creates the path on demand (``all_others``). The publisher becomes the path's source once ICE+DTLS are
  up (MediaMTX adds the publisher after ``WaitUntilConnected``).
- A second publisher: with ``overridePublisher`` it evicts (closes) the current one; without it, it is
  refused (400 at POST, or closed on connect if it raced).
- WHEP on a path with no ready publisher: 404 ``no stream is available on path``, unless the path is
  configured ``alwaysAvailable``; then 201 and the reader hears the next publisher.
- When a path's source goes away (DELETE, failure, or eviction): readers of an ``alwaysAvailable`` path keep
  their session; readers of any other path are closed (MediaMTX ``setNotReady`` closes its readers).
- While an ``alwaysAvailable`` path has no publisher, MediaMTX streams an offline track (Opus DTX, silence). The
  relay sends it to RTSP readers (``offline_audio``), so a transcription worker's ffmpeg decodes silence as it
  does against MediaMTX; WHEP readers get nothing until the next publisher (unchanged, see forwarding.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .faults import FaultConfig
from .forwarding import OfflineSource, PathForwarder, SourcePacket
from .paths import PathRegistry
from .session_rules import SessionError, SessionState, UnsupportedOfferError, offer_has_opus_audio

if TYPE_CHECKING:
    from aiortc.rtp import RtpPacket

    from .sessions import PublisherSession, ReaderSession, WebRTCSession

logger = logging.getLogger(__name__)

WHIP = "whip"
WHEP = "whep"


class SessionNotFoundError(SessionError):
    """MediaMTX ErrSessionNotFound: 404 on DELETE/PATCH of an unknown session URL."""

    def __init__(self) -> None:
        super().__init__(404, "session not found")


def _aiortc_sessions() -> ModuleType:
    """The aiortc side of the relay, imported with the first session: an idle relay never loads aiortc, PyAV
    and their OpenSSL/FFmpeg libraries (about half of its idle RSS). The first import also installs the
    aiortc patches (role FORWARD), which checks the pinned internals."""
    from harness.rtc import aiortc_patches

    from . import sessions

    # ICE host candidates: loopback only (the relay never sends traffic off the machine). Idempotent.
    aiortc_patches.install(aiortc_patches.Role.FORWARD, aiortc_patches.DEFAULT_ICE_HOSTS)
    return sessions


class MediaRelay:
    def __init__(self, faults: FaultConfig | None = None, handshake_timeout_s: float = 10.0) -> None:
        self._faults = faults or FaultConfig()
        self._handshake_timeout_s = handshake_timeout_s
        self.registry = PathRegistry(self._make_forwarder)
        self._sessions: dict[tuple[str, uuid.UUID], WebRTCSession] = {}
        self._readers_created = 0
        self._background: set[asyncio.Task[None]] = set()

    # --- faults ---
    @property
    def faults(self) -> FaultConfig:
        return self._faults

    def update_faults(self, changes: Mapping[str, Any]) -> FaultConfig:
        new = self._faults.updated(changes)
        logger.warning("faults: %s -> %s", self._faults.as_dict(), new.as_dict())
        self._faults = new
        return new

    def _current_faults(self) -> FaultConfig:
        return self._faults

    def _make_forwarder(self, path_name: str, readers) -> PathForwarder:
        return PathForwarder(path_name, self._current_faults, readers)

    # --- WHIP ---
    async def publish(self, path_name: str, offer_sdp: str) -> tuple[PublisherSession, str]:
        if not offer_has_opus_audio(offer_sdp):
            # MediaMTX (draft-ietf-wish-whip): unsupported tracks -> 406 Not Acceptable.
            raise UnsupportedOfferError(406, "the offer has no Opus audio track")
        conf = self.registry.effective_conf(path_name)
        path = self.registry.ensure_runtime(path_name)
        if path.publisher is not None and not conf.override_publisher:
            raise SessionError(400, f"someone is already publishing to path '{path_name}'")
        session = _aiortc_sessions().PublisherSession(path_name, self._handshake_timeout_s, self._on_state, self._on_packet)
        path.pending_publishers.add(session)
        return session, await self._negotiate(WHIP, session, offer_sdp)

    def _on_packet(self, publisher: PublisherSession, packet: RtpPacket) -> None:
        path = self.registry.runtime(publisher.path_name)
        if path is None or path.publisher is not publisher:
            return  # an evicted or not yet attached publisher is not the path's source
        path.forwarder.push(
            SourcePacket(packet.payload, packet.sequence_number, packet.timestamp, packet.marker, path.generation)
        )

    def _attach_publisher(self, session: PublisherSession) -> None:
        path = self.registry.ensure_runtime(session.path_name)
        path.pending_publishers.discard(session)
        conf = self.registry.effective_conf(session.path_name)
        old = path.publisher
        if old is not None:
            if not conf.override_publisher:
                self._spawn(session.close(f"someone is already publishing to path '{session.path_name}'"))
                return
            # Contract 12.1 overridePublisher: yes -> the new publisher evicts the old one.
            path.publisher = None
            self._spawn(old.close("evicted by a new publisher (overridePublisher)"))
            if not conf.always_available:
                self._close_readers(path, "stream replaced")
        path.publisher = session
        path.generation += 1
        path.ready_time_s = time.time()
        logger.info("path %s: publisher %s is the source (generation %d)", path.name, str(session.id)[:8], path.generation)

    # --- WHEP ---
    async def read(self, path_name: str, offer_sdp: str) -> tuple[ReaderSession, str]:
        if not offer_has_opus_audio(offer_sdp):
            raise UnsupportedOfferError(400, "the stream doesn't contain any supported codec")
        self.check_readable(path_name)
        path = self.registry.ensure_runtime(path_name)
        session = _aiortc_sessions().ReaderSession(
            path_name, self._handshake_timeout_s, self._on_state, self.next_reader_number(), self._current_faults
        )
        # MediaMTX adds the reader to the path before negotiating; it gets packets once connected.
        path.readers[str(session.id)] = session
        return session, await self._negotiate(WHEP, session, offer_sdp)

    def check_readable(self, path_name: str) -> None:
        """The one rule for every reader (WHEP, RTSP DESCRIBE/SETUP): a path with no ready publisher can be
        read only if it is configured alwaysAvailable."""
        conf = self.registry.effective_conf(path_name)
        path = self.registry.runtime(path_name)
        if (path is None or not path.ready) and not conf.always_available:
            # MediaMTX PathNoStreamAvailableError -> 404 (contract 12.3; RTSP: 404 as well).
            raise SessionError(404, f"no stream is available on path '{path_name}'")

    def next_reader_number(self) -> int:
        """Readers are numbered in creation order; the number seeds each reader's loss generator."""
        self._readers_created += 1
        return self._readers_created

    # --- RTSP readers (rtsp_server.py): no peer connection, so no state callbacks; they attach and detach ---
    def add_reader(self, path_name: str, reader) -> None:
        self.check_readable(path_name)
        self.registry.ensure_runtime(path_name).readers[str(reader.id)] = reader

    def remove_reader(self, reader) -> None:
        path = self.registry.runtime(reader.path_name)
        if path is not None and path.readers.get(str(reader.id)) is reader:
            del path.readers[str(reader.id)]
            self._spawn(self.registry.discard_if_idle(path.name))

    def reader_playing(self, reader) -> None:
        """An RTSP reader started playing: if its path is offline, it gets the offline track right away."""
        path = self.registry.runtime(reader.path_name)
        if path is not None:
            self._start_offline_source(path)

    def _offline(self, path) -> bool:
        return (self.registry.runtime(path.name) is path and path.publisher is None
                and self.registry.effective_conf(path.name).always_available
                and any(getattr(r, "offline_audio", False) for r in path.readers.values()))

    def _start_offline_source(self, path) -> None:
        if (path.offline_task is not None and not path.offline_task.done()) or not self._offline(path):
            return
        source = OfflineSource(
            # Negative: distinct from every publisher generation, and from the offline stretch after each of them.
            -(path.generation + 1),
            lambda: self._offline(path),
            lambda: [r for r in path.readers.values() if getattr(r, "offline_audio", False)],
            self._current_faults,
        )
        path.offline_task = asyncio.get_running_loop().create_task(source.run(), name=f"offline:{path.name}")
        self._background.add(path.offline_task)
        path.offline_task.add_done_callback(self._background.discard)

    def _close_readers(self, path, reason: str) -> None:
        for reader in list(path.readers.values()):
            self._spawn(reader.close(reason))

    # --- shared session plumbing ---
    async def _negotiate(self, kind: str, session: WebRTCSession, offer_sdp: str) -> str:
        self._sessions[(kind, session.secret)] = session
        try:
            return await session.answer(offer_sdp)
        except BaseException:
            await session.close("negotiation failed")
            raise

    def _on_state(self, session: WebRTCSession, state: SessionState) -> None:
        if state is SessionState.CONNECTED and session.kind == "publisher":
            self._attach_publisher(session)
        elif state is SessionState.CLOSED:
            self._detach(session)

    def _detach(self, session: WebRTCSession) -> None:
        is_publisher = session.kind == "publisher"
        kind = WHIP if is_publisher else WHEP
        self._sessions.pop((kind, session.secret), None)
        path = self.registry.runtime(session.path_name)
        if path is None:
            return
        if is_publisher:
            path.pending_publishers.discard(session)
            if path.publisher is session:
                path.publisher = None
                path.ready_time_s = None
                if not self.registry.effective_conf(path.name).always_available:
                    self._close_readers(path, "stream ended")
                else:
                    self._start_offline_source(path)
        else:
            path.readers.pop(str(session.id), None)
        self._spawn(self.registry.discard_if_idle(path.name))

    def find_session(self, kind: str, path_name: str, secret: str) -> WebRTCSession:
        try:
            key = (kind, uuid.UUID(secret))
        except ValueError:
            raise SessionError(400, "invalid secret") from None
        session = self._sessions.get(key)
        if session is None or session.path_name != path_name:
            raise SessionNotFoundError()
        return session

    async def delete(self, kind: str, path_name: str, secret: str) -> None:
        await self.find_session(kind, path_name, secret).close("deleted by the client")

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def close(self) -> None:
        for path in self.registry.runtimes():
            if path.offline_task is not None:
                path.offline_task.cancel()
        if self._sessions:
            await _aiortc_sessions().close_all(list(self._sessions.values()), "relay shutting down")
        for path in self.registry.runtimes():
            await path.forwarder.close()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    # --- observation ---
    def statistics(self) -> dict[str, Any]:
        """Counters for tests and drills (``GET /v3/refstack/stats``)."""
        paths = {}
        for path in self.registry.runtimes():
            fwd = path.forwarder.statistics()
            paths[path.name] = {
                "generation": path.generation,
                "publisher": str(path.publisher.id) if path.publisher else None,
                "packetsReceived": fwd.packets_received,
                "packetsDroppedStall": fwd.packets_dropped_stall,
                "packetsQueued": fwd.packets_queued,
                "readers": [
                    {"id": str(r.id), "state": r.state.value, "packetsSent": r.packets_sent, "packetsDroppedLoss": r.packets_dropped_loss}
                    for r in path.readers.values()
                ],
            }
        return {"faults": self._faults.as_dict(), "sessions": len(self._sessions), "paths": paths}
