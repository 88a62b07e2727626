"""Markers survive a real Opus encode/decode (PyAV libopus) and the detector finds every id at its offset."""

from __future__ import annotations

import numpy as np
import pytest

from harness.rtc import audio
from harness.rtc import markers
from harness.media.schedule import PACKETS_PER_MARKER

# libopus look-ahead: a decoder shows the input 312 samples (6.5 ms) late.
OPUS_DELAY_SAMPLES = 312


@pytest.fixture(scope="module")
def short_loop(tmp_path_factory) -> audio.OpusLoop:
    return audio.load_loop(audio.AudioParams(loop_markers=24), cache_dir=tmp_path_factory.mktemp("audio-cache"))


def test_marker_ids_round_trip_through_tones():
    assert markers.MARKER_ID_COUNT >= 128
    seen = set()
    for marker_id in range(markers.MARKER_ID_COUNT):
        a, b = markers.marker_tones(marker_id)
        assert a != b
        assert markers.marker_id_from_tones(a, b) == marker_id
        seen.add((a, b))
    assert len(seen) == markers.MARKER_ID_COUNT
    assert all(2500 <= f <= 6000 for f in markers.TONE_FREQS_HZ)


@pytest.mark.parametrize("chunk", ["random", "frame", "whole"])
def test_detector_finds_every_marker_after_opus(short_loop, chunk):
    pcm = audio.decode_opus(short_loop.payloads * 2)  # two laps: ids 0..23 twice
    detector = markers.MarkerDetector()
    found: list[tuple[int, int]] = []
    if chunk == "whole":
        found = detector.push(pcm)
    else:
        rng = np.random.default_rng(7)
        pos = 0
        while pos < len(pcm):
            size = 960 if chunk == "frame" else int(rng.integers(1, 4000))
            found += detector.push(pcm[pos : pos + size])
            pos += size
    laps = 2
    assert [mid for mid, _ in found] == list(range(24)) * laps
    for n, (_, offset) in enumerate(found):
        expected = markers.marker_start_sample(n) + OPUS_DELAY_SAMPLES
        # Sub-millisecond onset precision (48 samples = 1 ms).
        assert abs(offset - expected) <= 48, (n, offset, expected)


def test_detector_accepts_float_pcm_and_ignores_plain_speech():
    params = audio.AudioParams(loop_markers=6)
    with_markers = audio.synthesize(params)
    without = audio.synthesize(audio.AudioParams(loop_markers=6, with_markers=False))
    assert [m for m, _ in markers.MarkerDetector().push(with_markers.astype(np.float32))] == list(range(6))
    assert markers.MarkerDetector().push(without) == []


def test_high_marker_ids_decode(tmp_path):
    # Ids near the top of the range use the last tones; build a signal holding ids 200..239.
    pcm = np.zeros(markers.marker_start_sample(41))
    for slot, marker_id in enumerate(range(200, 240)):
        wave = markers.marker_waveform(marker_id)
        start = markers.marker_start_sample(slot)
        pcm[start : start + len(wave)] += wave
    decoded = audio.decode_opus(audio.encode_opus_loop(pcm, 32000))
    assert [m for m, _ in markers.MarkerDetector().push(decoded)] == list(range(200, 240))


def test_loop_cache_is_reused_and_payload_hashes_index_the_loop(short_loop, tmp_path):
    params = audio.AudioParams(loop_markers=24)
    first = audio.load_loop(params, cache_dir=tmp_path)
    cached = list(tmp_path.glob("opus-loop-*.npz"))
    assert len(cached) == 1
    mtime = cached[0].stat().st_mtime_ns
    again = audio.load_loop(params, cache_dir=tmp_path)
    assert cached[0].stat().st_mtime_ns == mtime
    assert again.payloads == first.payloads
    assert first.length == 24 * PACKETS_PER_MARKER
    # The room-tone floor keeps payloads distinct, so (almost) every packet names its position.
    assert first.duplicate_hashes == 0
    for i in (0, 1, 300, first.length - 1):
        assert first.index_by_hash[audio.payload_hash(first.payloads[i])] == i
    # A different parameter is a different cache entry.
    audio.load_loop(audio.AudioParams(loop_markers=24, seed=2), cache_dir=tmp_path)
    assert len(list(tmp_path.glob("opus-loop-*.npz"))) == 2
