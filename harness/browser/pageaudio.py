"""What a canary's page reported, turned into figures: per-interval getStats() deltas and marker mouth-to-ear.

Input is what ``page_probe.js``'s ``drain()`` returns. getStats() counters are cumulative per RTP stream
(W3C webrtc-stats, RTCInboundRtpStreamStats); an interval's figures are differences between two drains,
summed over the streams the page had (a WHEP reconnect starts a new stream from zero):

* jitter buffer delay = delta ``jitterBufferDelay`` / delta ``jitterBufferEmittedCount`` (s per sample -> ms);
  this is the average time a sample spent in NetEq, the browser's adaptive jitter buffer,
* concealed % = delta ``concealedSamples`` / delta ``totalSamplesReceived`` x 100,
* packets, lost: deltas of ``packetsReceived`` and ``packetsLost``; jitter: the stream's current RFC 3550
  ``jitter`` (seconds -> ms).

Mouth-to-ear: the page's tapped PCM (stamped with the time Chromium handed it over for playout: decoded, out of
NetEq, before the sound card, like the synthetic probe's decode time) goes through harness/rtc/markers.py's detector; each
marker's ear time minus its scheduled send time (harness/media/schedule.py) is one sample. Pure numpy.
"""

from __future__ import annotations

import base64
import bisect
import dataclasses
from collections.abc import Iterable

import numpy as np

from ..rtc.markers import SAMPLE_RATE, MarkerDetector
from ..media.schedule import PACKETS_PER_MARKER, BoothSchedules


@dataclasses.dataclass(frozen=True)
class InboundInterval:
    packets: int
    lost: int
    jitter_ms: float | None
    jitter_buffer_delay_ms: float | None
    concealed_pct: float | None
    audio_level: float | None
    streams: int

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


_COUNTERS = ("packetsReceived", "packetsLost", "jitterBufferDelay", "jitterBufferEmittedCount",
             "concealedSamples", "totalSamplesReceived")


class InboundDeltas:
    """Successive inbound-rtp audio stats -> one ``InboundInterval`` per call of ``take``."""

    def __init__(self) -> None:
        self._last: dict[tuple, dict] = {}
        self.packets_total = 0
        self.lost_total = 0

    def take(self, stats: Iterable[dict]) -> InboundInterval:
        sums = dict.fromkeys(_COUNTERS, 0.0)
        jitters, levels, streams = [], [], 0
        for row in stats:
            if row.get("type") != "inbound-rtp":
                continue
            streams += 1
            key = (row.get("pc"), row.get("ssrc"))
            before = self._last.get(key, {})
            for name in _COUNTERS:
                sums[name] += max(0.0, float(row.get(name) or 0) - float(before.get(name) or 0))
            self._last[key] = row
            if row.get("jitter") is not None:
                jitters.append(float(row["jitter"]) * 1000.0)
            if row.get("audioLevel") is not None:
                levels.append(float(row["audioLevel"]))
        emitted = sums["jitterBufferEmittedCount"]
        samples = sums["totalSamplesReceived"]
        packets, lost = int(sums["packetsReceived"]), int(sums["packetsLost"])
        self.packets_total += packets
        self.lost_total += lost
        return InboundInterval(
            packets=packets,
            lost=lost,
            jitter_ms=max(jitters) if jitters else None,
            jitter_buffer_delay_ms=1000.0 * sums["jitterBufferDelay"] / emitted if emitted else None,
            concealed_pct=100.0 * sums["concealedSamples"] / samples if samples else None,
            audio_level=max(levels) if levels else None,
            streams=streams,
        )


class EarMarkers:
    """Tapped PCM chunks -> marker mouth-to-ear latencies (ms) against a booth's publisher schedules."""

    def __init__(self, schedules: BoothSchedules) -> None:
        self.schedules = schedules
        self._detector = MarkerDetector(SAMPLE_RATE)
        self._starts: list[int] = []  # first sample offset of each chunk
        self._ears_ns: list[int] = []  # its ear time
        self._pushed = 0
        self.markers = 0
        self.unplaced = 0  # markers heard before any schedule of the booth was known

    def push(self, chunks: Iterable[dict]) -> list[float]:
        latencies = []
        for chunk in chunks:
            if int(chunk.get("sample_rate", SAMPLE_RATE)) != SAMPLE_RATE:
                raise ValueError(f"page audio at {chunk.get('sample_rate')} Hz; the marker detector needs {SAMPLE_RATE}")
            pcm = np.frombuffer(base64.b64decode(chunk["pcm_b64"]), dtype=np.int16)
            self._starts.append(self._pushed)
            self._ears_ns.append(int(chunk["t_play_ms"] * 1e6))
            self._pushed += len(pcm)
            for marker_id, offset in self._detector.push(pcm):
                self.markers += 1
                i = bisect.bisect_right(self._starts, offset) - 1
                if i < 0:
                    continue
                ear_ns = self._ears_ns[i] + int((offset - self._starts[i]) * 1e9 / SAMPLE_RATE)
                latency_ns = self.schedules.latency_ns(marker_id * PACKETS_PER_MARKER, ear_ns)
                if latency_ns is None:
                    self.unplaced += 1
                else:
                    latencies.append(latency_ns / 1e6)
            # Keep a few seconds of chunk times: the detector reports a marker within ~60 ms of its onset.
            if len(self._starts) > 200:
                del self._starts[:100], self._ears_ns[:100]
        return latencies
