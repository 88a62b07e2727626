"""WHEP listener: RTP-tap statistics per packet, and (probe listeners) decoded audio with marker latency.

Tap mode (the default, media-design 1): the receiver's raw RTP tap (aiortc_patches) sees each decrypted
datagram; no jitter buffer, no decoder thread, no ``recv()``. Per packet only its arrival time and bytes are
kept; once per interval the batch gives sequence and RFC 3550 statistics (rtpstats.py), and payload-identity
latency: payload -> loop index (audio.py) -> scheduled send time (schedule.py) -> ``arrival - send``, in
one loop per batch without a function call per packet (issue 15: the same figures for less CPU).

Stock mode (benchmarks only: the baseline the tap is compared with): the same tap, then the stock aiortc
path, whose decoded frames are read and dropped.

Probe mode: the same tap, then the stock aiortc path (jitter buffer, Opus decoder thread, ``recv()``) feeds
a ``ProbeAnalyzer``: markers detected in the decoded audio give mouth-to-ear latency (send time of the marker's
packet -> the moment its first sample leaves ``recv()``; this includes the jitter buffer's 80 ms prefetch and
Opus's 6.5 ms look-ahead, as a browser's ear would), and continuity (skipped markers, gaps in decoded time).
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import enum
import time

import aiohttp
import numpy as np
from aiortc.mediastreams import MediaStreamError
from aiortc.rtp import RtpPacket

from ..rtc import aiortc_patches
from ..rtc.audio import OpusLoop, frame_to_mono_int16
from ..rtc.markers import FRAME_SAMPLES, SAMPLE_RATE, MarkerDetector
from .rtpstats import IntervalStats, RtpStreamStats
from .schedule import PACKETS_PER_MARKER, BoothSchedules
from .session import MediaSession, SessionTimeouts


class ListenerMode(enum.Enum):
    TAP = "listener"  # the value is the role name used in aggregates and sample files
    PROBE = "probe"
    STOCK = "stock"
    QUEUED = "queued"  # benchmarks only: TAP without the raw fast path (aioice queue + DTLS task per packet)


@dataclasses.dataclass(frozen=True)
class ProbeInterval:
    marker_latencies_ms: tuple[float, ...]
    markers: int
    markers_skipped: int
    decoded_gap_ms: float
    frames: int


# Decoded frames handed to the marker detector at once. Per call it runs ~10 small numpy operations whatever
# the length, which per 20 ms frame made it the larger half of a probe's cost; five frames (100 ms) find the
# same markers at the same sample offsets, and each marker's wall time still comes from its own frame.
DETECT_BATCH_FRAMES = 5


class ProbeAnalyzer:
    """Decoded-audio checks of a probe listener (pure: frames and their wall times are passed in)."""

    def __init__(self, loop_markers: int, marker_slots: tuple[int, ...] | None = None,
                 detect_batch_frames: int = DETECT_BATCH_FRAMES) -> None:
        self._detector = MarkerDetector(SAMPLE_RATE)
        self._loop_markers = loop_markers
        # Speech loops carry markers only between utterances: skipped = expected slots passed over, not ids.
        self._slot_rank = {slot: rank for rank, slot in enumerate(sorted(marker_slots))} if marker_slots is not None else None
        self._detect_batch_frames = detect_batch_frames
        self._pending: list = []  # decoded mono frames not yet given to the detector
        self._schedules: BoothSchedules | None = None
        self._samples_pushed = 0
        self._frame_times: collections.deque[tuple[int, int]] = collections.deque(maxlen=200)  # (start sample, wall ns)
        self._last_marker: int | None = None
        self._last_pts: int | None = None
        self._reset()

    def _reset(self) -> None:
        self._latencies: list[float] = []
        self._markers = 0
        self._skipped = 0
        self._gap_ms = 0.0
        self._frames = 0

    def on_frame(self, mono_pcm, pts: int | None, wall_ns: int, schedules: BoothSchedules) -> None:
        if pts is not None and self._last_pts is not None:
            step = pts - self._last_pts
            if step > FRAME_SAMPLES:
                # Decoded time jumped: audio the listener never heard (lost or dropped by the jitter buffer).
                self._gap_ms += (step - FRAME_SAMPLES) / SAMPLE_RATE * 1000.0
        if pts is not None:
            self._last_pts = pts
        self._frames += 1
        self._frame_times.append((self._samples_pushed, wall_ns))
        self._samples_pushed += len(mono_pcm)
        self._schedules = schedules
        self._pending.append(mono_pcm)
        if len(self._pending) >= self._detect_batch_frames:
            self._detect()

    def _detect(self) -> None:
        if not self._pending:
            return
        chunk = self._pending[0] if len(self._pending) == 1 else np.concatenate(self._pending)
        self._pending = []
        for marker_id, offset in self._detector.push(chunk):
            self._on_marker(marker_id, offset, self._schedules)

    def _on_marker(self, marker_id: int, offset: int, schedules: BoothSchedules) -> None:
        self._markers += 1
        if self._last_marker is not None:
            if self._slot_rank is None:
                self._skipped += (marker_id - self._last_marker - 1) % self._loop_markers
            elif marker_id in self._slot_rank and self._last_marker in self._slot_rank:
                self._skipped += (self._slot_rank[marker_id] - self._slot_rank[self._last_marker] - 1) % len(self._slot_rank)
        self._last_marker = marker_id
        ear_ns = None
        for start, wall_ns in reversed(self._frame_times):
            if start <= offset:
                ear_ns = wall_ns + int((offset - start) * 1e9 / SAMPLE_RATE)
                break
        if ear_ns is None or marker_id >= self._loop_markers:
            return
        latency = schedules.latency_ns(marker_id * PACKETS_PER_MARKER, ear_ns)
        if latency is not None:
            self._latencies.append(latency / 1e6)

    def take_interval(self) -> ProbeInterval:
        self._detect()  # the interval's last frames count in it
        interval = ProbeInterval(tuple(self._latencies), self._markers, self._skipped, self._gap_ms, self._frames)
        self._reset()
        return interval


class WhepListener(MediaSession):
    kind = "listener"

    def __init__(
        self,
        handle: str,
        whep_url: str,
        booth: str,
        loop: OpusLoop,
        schedules: BoothSchedules,
        http: aiohttp.ClientSession,
        timeouts: SessionTimeouts,
        mode: ListenerMode = ListenerMode.TAP,
        silence_threshold_ms: float = 200.0,
    ) -> None:
        super().__init__(handle, whep_url, http, timeouts)
        self.booth = booth
        self.mode = mode
        self._index_by_payload = loop.index_by_payload
        self._schedules = schedules
        self.rtp = RtpStreamStats(SAMPLE_RATE, silence_threshold_ms)
        self._latencies_ms: list[float] = []
        self._unknown_payloads = 0
        self._malformed = 0
        self._awaiting_first_packet = True
        self._pending_arrivals_ns: list[int] = []  # raw tap: packets received since the last interval
        self._pending_datagrams: list[bytes] = []
        self.analyzer = ProbeAnalyzer(loop.params.loop_markers, loop.marker_slots) if mode == ListenerMode.PROBE else None
        self._decode_task: asyncio.Task | None = None

    def _prepare(self) -> None:
        self._transceiver = self.pc.addTransceiver("audio", direction="recvonly")
        if self.mode in (ListenerMode.TAP, ListenerMode.QUEUED):
            fast_path = self.mode == ListenerMode.TAP
            aiortc_patches.attach_raw_tap(self._transceiver.receiver, self._on_rtp_datagram, fast_path=fast_path)
        else:
            aiortc_patches.attach_tap(self._transceiver.receiver, self._on_rtp_packet, passthrough=True)

    def _after_answer(self) -> None:
        if self.mode in (ListenerMode.PROBE, ListenerMode.STOCK):
            # The remote track exists only once the answer is applied.
            self._decode_task = asyncio.ensure_future(self._consume_decoded(self._transceiver.receiver.track))

    def _on_rtp_packet(self, packet: RtpPacket) -> None:
        self._record(packet.ssrc, packet.sequence_number, packet.timestamp, packet.payload)

    def _on_rtp_datagram(self, data: bytes) -> None:
        # Hot path of the tap (50 calls/s per listener): the arrival time and the bytes, the rest per batch.
        self._pending_arrivals_ns.append(time.time_ns())
        self._pending_datagrams.append(data)
        if self._awaiting_first_packet:
            self._awaiting_first_packet = False
            self._first_packet_seen()

    def _record_pending(self) -> None:
        """The raw tap's packets since the last call, through the same statistics as ``_record``."""
        datagrams, self._pending_datagrams = self._pending_datagrams, []
        arrivals_ns, self._pending_arrivals_ns = self._pending_arrivals_ns, []
        if not datagrams:
            return
        payloads, arrivals_ns, malformed = self.rtp.on_datagrams(datagrams, arrivals_ns)
        self._malformed += malformed
        get_index = self._index_by_payload.get
        indices = list(map(get_index, payloads))
        if None in indices:
            self._unknown_payloads += indices.count(None)
            arrivals_ns = [arrival for arrival, index in zip(arrivals_ns, indices) if index is not None]
            indices = [index for index in indices if index is not None]
        self._latencies_ms.extend([latency * 1e-6 for latency in self._schedules.latencies_ns(indices, arrivals_ns)])

    def _record(self, ssrc: int, seq: int, timestamp: int, payload: bytes) -> None:
        # Hot path (50 calls/s per listener): keep it to plain attribute and dict look-ups.
        arrival_ns = time.time_ns()
        self.rtp.on_packet(ssrc, seq, timestamp, arrival_ns * 1e-9)
        index = self._index_by_payload.get(payload)
        if index is None:
            self._unknown_payloads += 1
        else:
            latency_ns = self._schedules.latency_ns(index, arrival_ns)
            if latency_ns is not None:
                self._latencies_ms.append(latency_ns * 1e-6)
        if self._awaiting_first_packet:
            self._awaiting_first_packet = False
            self._first_packet_seen()

    async def _consume_decoded(self, track) -> None:
        try:
            while True:
                frame = await track.recv()
                if self.analyzer is None:
                    continue
                self.analyzer.on_frame(frame_to_mono_int16(frame), frame.pts, time.time_ns(), self._schedules)
        except MediaStreamError:
            return

    def take_interval(self, now_wall_s: float) -> tuple[IntervalStats, list[float], int, ProbeInterval | None]:
        """(RTP stats, payload latencies ms, unknown payloads, probe interval) since the last call."""
        self._record_pending()
        latencies, self._latencies_ms = self._latencies_ms, []
        # Malformed datagrams count as unknown payloads: neither can be attributed to the loop.
        unknown, self._unknown_payloads = self._unknown_payloads + self._malformed, 0
        self._malformed = 0
        probe = self.analyzer.take_interval() if self.analyzer is not None else None
        return self.rtp.take_interval(now_wall_s), latencies, unknown, probe

    def _on_close(self) -> None:
        if self._decode_task is not None:
            self._decode_task.cancel()
