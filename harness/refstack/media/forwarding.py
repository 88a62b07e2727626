"""Packet forwarding of one path: publisher RTP -> (delay, stall) -> every reader, payload bytes unchanged.

Owns the data plane of the relay:

- :class:`SourcePacket` - what a publisher's RTP tap hands over: the Opus payload exactly as received, its
  RTP sequence number and timestamp, and the publisher *generation* of the path (a new publisher after an
  override or a reconnect is a new generation).
- :class:`PathForwarder` - one task per path that applies the run-time fault knobs (``faults.py``) and fans
  each packet out to the path's readers.
- :class:`RtpRewriter` - one per reader: maps source sequence numbers and timestamps onto the reader's own
  outgoing RTP stream (its own SSRC, random initial sequence number and timestamp, RFC 3550 5.1).
- :class:`OfflineSource` - MediaMTX's offline stream of an ``alwaysAvailable`` path with no publisher: Opus DTX
  frames in real time, for the readers that ask for it (RTSP readers; WHEP readers keep waiting silently).

Continuity across publishers (overridePublisher, contract 12.1): what a real SFU does, and what the relay
does, is keep each reader's stream continuous when the source changes. The first packet of a new generation
gets sequence number ``last + 1`` (no false loss is reported to the reader) and a timestamp advanced by the
wall-clock time since the reader's last packet (so the reader's jitter buffer sees the real gap as time, not
as a discontinuity). Within one generation, sequence gaps are preserved, so loss before the relay and loss
injected by the relay stay visible to readers.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import time
from collections.abc import Callable, Iterable
from typing import Protocol

from .faults import FaultConfig

logger = logging.getLogger(__name__)

OPUS_CLOCK_RATE_HZ = 48_000
SEQ_MODULO = 1 << 16
TS_MODULO = 1 << 32


@dataclasses.dataclass(frozen=True, slots=True)
class SourcePacket:
    payload: bytes
    sequence_number: int
    timestamp: int
    marker: int
    generation: int


class PacketSink(Protocol):
    """A reader as the forwarder sees it."""

    def forward(self, packet: SourcePacket, now_s: float) -> None: ...


class RtpRewriter:
    """Sequence/timestamp mapping of one reader's outgoing stream (see the module docstring for the rules)."""

    def __init__(self, rng: random.Random, clock_rate_hz: int = OPUS_CLOCK_RATE_HZ) -> None:
        self._clock_rate_hz = clock_rate_hz
        # RFC 3550 5.1: initial sequence number and timestamp are random. The sequence number starts in the
        # lower half like aiortc's senders, so SRTP rollover handling is never exercised at start.
        self._next_seq = rng.randrange(SEQ_MODULO // 2)
        self._next_ts = rng.randrange(TS_MODULO)
        self._generation: int | None = None
        self._seq_offset = 0
        self._ts_offset = 0
        self._last_out: tuple[int, int, float] | None = None  # (seq, ts, time_s) of the last packet sent

    def map(self, packet: SourcePacket, now_s: float) -> tuple[int, int]:
        if packet.generation != self._generation:
            self._anchor(packet, now_s)
        seq = (packet.sequence_number + self._seq_offset) % SEQ_MODULO
        ts = (packet.timestamp + self._ts_offset) % TS_MODULO
        return seq, ts

    def initial(self) -> tuple[int, int]:
        """Sequence number and timestamp the first packet will carry, before any was mapped (RTSP RTP-Info)."""
        return self._next_seq, self._next_ts

    def sent(self, seq: int, ts: int, now_s: float) -> None:
        self._last_out = (seq, ts, now_s)

    def _anchor(self, packet: SourcePacket, now_s: float) -> None:
        if self._last_out is None:
            out_seq, out_ts = self._next_seq, self._next_ts
        else:
            last_seq, last_ts, last_s = self._last_out
            elapsed_ticks = max(1, round((now_s - last_s) * self._clock_rate_hz))
            out_seq, out_ts = (last_seq + 1) % SEQ_MODULO, (last_ts + elapsed_ticks) % TS_MODULO
        self._seq_offset = (out_seq - packet.sequence_number) % SEQ_MODULO
        self._ts_offset = (out_ts - packet.timestamp) % TS_MODULO
        self._generation = packet.generation


# MediaMTX (internal/stream/offline_sub_stream_track.go): while an alwaysAvailable path has no publisher, its Opus
# track carries this DTX frame every 20 ms (TOC 0xF8: CELT fullband, 20 ms, mono, one frame); it decodes to silence.
OPUS_DTX_FRAME = b"\xf8\xff\xfe"
OFFLINE_FRAME_S = 0.02
OFFLINE_FRAME_TICKS = 960  # 20 ms at 48 kHz (RFC 7587 section 4.1: the RTP clock is always 48 kHz)


class OfflineSource:
    """Real-time DTX packets while ``active()`` holds, to ``readers()``; one task per offline stretch of a path.

    Its packets are a generation of their own, so each reader's stream stays continuous across publisher ->
    offline -> publisher (the rewriter re-anchors on every generation change). Stall drops them like any packet.
    """

    def __init__(
        self,
        generation: int,
        active: Callable[[], bool],
        readers: Callable[[], Iterable[PacketSink]],
        faults: Callable[[], FaultConfig],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._generation = generation
        self._active = active
        self._readers = readers
        self._faults = faults
        self._clock = clock
        self.packets_sent = 0

    async def run(self) -> None:
        start_s = self._clock()
        index = 0
        while self._active():
            if not self._faults().stall:
                packet = SourcePacket(OPUS_DTX_FRAME, index % SEQ_MODULO, index * OFFLINE_FRAME_TICKS % TS_MODULO, 0,
                                      self._generation)
                now_s = self._clock()
                for reader in list(self._readers()):
                    try:
                        reader.forward(packet, now_s)
                    except Exception:  # one broken reader must not stop the others' silence
                        logger.exception("offline source: forwarding to a reader failed")
                self.packets_sent += 1
            index += 1
            # Absolute schedule (frame n at start + n * 20 ms), so pacing does not drift.
            wait_s = start_s + index * OFFLINE_FRAME_S - self._clock()
            if wait_s > 0:
                await asyncio.sleep(wait_s)


@dataclasses.dataclass(frozen=True)
class ForwarderStatistics:
    packets_received: int
    packets_dropped_stall: int
    packets_queued: int


class PathForwarder:
    """Applies delay and stall to one path's packets and fans them out to its readers, in arrival order."""

    def __init__(
        self,
        path_name: str,
        faults: Callable[[], FaultConfig],
        readers: Callable[[], Iterable[PacketSink]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._path_name = path_name
        self._faults = faults
        self._readers = readers
        self._clock = clock
        self._queue: asyncio.Queue[tuple[float, SourcePacket]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._received = 0
        self._dropped_stall = 0

    def push(self, packet: SourcePacket) -> None:
        """Called by the publisher's RTP tap for every packet; never blocks."""
        self._received += 1
        faults = self._faults()
        if faults.stall:
            self._dropped_stall += 1
            return
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"forward:{self._path_name}")
        self._queue.put_nowait((self._clock() + faults.delay_s, packet))

    async def _run(self) -> None:
        while True:
            due_s, packet = await self._queue.get()
            wait_s = due_s - self._clock()
            if wait_s > 0:
                await asyncio.sleep(wait_s)
            if self._faults().stall:
                # A stall set while packets were queued drops those too: nothing leaves during a stall.
                self._dropped_stall += 1
                continue
            now_s = self._clock()
            for reader in list(self._readers()):
                try:
                    reader.forward(packet, now_s)
                except Exception:  # one broken reader must not stop the path
                    logger.exception("path %s: forwarding to a reader failed", self._path_name)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def statistics(self) -> ForwarderStatistics:
        return ForwarderStatistics(self._received, self._dropped_stall, self._queue.qsize())
