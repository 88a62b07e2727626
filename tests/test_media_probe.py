"""ProbeAnalyzer (a probe listener's decoded-audio checks) on the real Opus loop, decoded by real libopus."""

from __future__ import annotations

import numpy as np
import pytest

from harness.rtc import audio
from harness.media.listener import DETECT_BATCH_FRAMES, ProbeAnalyzer
from harness.rtc.markers import FRAME_SAMPLES
from harness.media.schedule import PACKET_PERIOD_NS, BoothSchedules, PublisherSchedule

LOOP_MARKERS = 24
NETWORK_DELAY_NS = 50_000_000
OPUS_DELAY_MS = 312 / 48.0  # libopus look-ahead: 6.5 ms


@pytest.fixture(scope="module")
def decoded(tmp_path_factory) -> np.ndarray:
    loop = audio.load_loop(audio.AudioParams(loop_markers=LOOP_MARKERS), cache_dir=tmp_path_factory.mktemp("audio-cache"))
    return audio.decode_opus(loop.payloads * 2), loop.length


def _analyze(pcm: np.ndarray, loop_length: int, batch: int, drop_frames: range = range(0)):
    epoch_ns = 1_700_000_000_000_000_000
    schedules = BoothSchedules()
    schedules.add(PublisherSchedule("p", epoch_ns, loop_length))
    analyzer = ProbeAnalyzer(LOOP_MARKERS, detect_batch_frames=batch)
    intervals = []
    for k in range(len(pcm) // FRAME_SAMPLES):
        if k in drop_frames:
            continue  # never decoded: a gap in decoded time
        frame = pcm[k * FRAME_SAMPLES : (k + 1) * FRAME_SAMPLES]
        analyzer.on_frame(frame, k * FRAME_SAMPLES, epoch_ns + k * PACKET_PERIOD_NS + NETWORK_DELAY_NS, schedules)
        if k % 50 == 49:
            intervals.append(analyzer.take_interval())
    intervals.append(analyzer.take_interval())
    return intervals


def test_batched_detection_gives_the_frame_by_frame_figures(decoded):
    pcm, loop_length = decoded
    one = _analyze(pcm, loop_length, batch=1)
    batched = _analyze(pcm, loop_length, batch=DETECT_BATCH_FRAMES)
    assert DETECT_BATCH_FRAMES > 1
    latencies_one = [ms for i in one for ms in i.marker_latencies_ms]
    latencies_batched = [ms for i in batched for ms in i.marker_latencies_ms]
    assert len(latencies_one) == 2 * LOOP_MARKERS  # every marker of both laps
    assert latencies_batched == pytest.approx(latencies_one, abs=1e-9)
    # Mouth-to-ear = network delay + Opus look-ahead, to the millisecond.
    assert all(abs(ms - (NETWORK_DELAY_NS / 1e6 + OPUS_DELAY_MS)) <= 1.0 for ms in latencies_batched), latencies_batched
    assert sum(i.markers for i in batched) == sum(i.markers for i in one) == 2 * LOOP_MARKERS
    assert sum(i.markers_skipped for i in batched) == 0
    assert sum(i.frames for i in batched) == len(pcm) // FRAME_SAMPLES


def test_batched_detection_still_sees_skipped_markers_and_gaps(decoded):
    pcm, loop_length = decoded
    # Drop 1.2 s of decoded audio in the second lap: markers in it are skipped, the gap is measured.
    start = loop_length + 100
    intervals = _analyze(pcm, loop_length, batch=DETECT_BATCH_FRAMES, drop_frames=range(start, start + 60))
    assert sum(i.decoded_gap_ms for i in intervals) == pytest.approx(60 * 20.0)
    assert sum(i.markers_skipped for i in intervals) >= 2
