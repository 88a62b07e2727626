"""Timing markers carried in the synthetic audio: the encoding scheme and a streaming detector.

Shared interface (media engine <-> the relay's stand-in transcriber): 48 kHz mono, 20 ms frames.
Every ``MARKER_INTERVAL_S`` (0.5 s) the signal carries one marker that encodes an integer id in
``[0, MARKER_ID_COUNT)``; ids count up with the marker's position in the pre-encoded loop, so an id
names one point of the loop unambiguously for ``MARKER_ID_COUNT * MARKER_INTERVAL_S`` = 120 s.

Scheme (chosen to survive Opus at speech bitrates):
- A marker occupies the first two 20 ms frames of its 500 ms slot: frame 1 carries tone ``a``,
  frame 2 carries tone ``b``, each one of 16 frequencies ``2500 + 200 * k`` Hz (k = 0..15, all
  inside 2.5-6 kHz and each exactly on a 50 Hz FFT bin of a 20 ms window).
- ``b != a`` always, so a marker is always a *change* of tone and its two halves never merge:
  ``a = id // 15``, ``b = (a + 1 + id % 15) % 16``. That gives 16 * 15 = 240 ids.
- Each tone frame has 1 ms raised-cosine ramps at both ends (less spectral splatter in Opus).
- The speech-like carrier (audio.py) is low-passed below 2 kHz, so the marker band is otherwise quiet.

Detection: sliding 20 ms Hann-windowed FFTs every 5 ms classify each window as "tone k" when that
tone holds most of the 2.3-5.7 kHz band energy; a run of tone ``a`` followed by tone ``b`` is a
marker. The marker start is then refined to about a sample by complex demodulation of tone ``a``
(5 ms moving average) and its half-amplitude crossing. Pure numpy: no aiortc, Locust or gevent.
"""

from __future__ import annotations

import re

import numpy as np

MARKER_INTERVAL_S = 0.5
SAMPLE_RATE = 48000
FRAME_SAMPLES = 960  # 20 ms at 48 kHz
TONE_COUNT = 16
TONE_BASE_HZ = 2500.0
TONE_STEP_HZ = 200.0
TONE_FREQS_HZ = tuple(TONE_BASE_HZ + TONE_STEP_HZ * k for k in range(TONE_COUNT))
MARKER_ID_COUNT = TONE_COUNT * (TONE_COUNT - 1)  # 240
MARKER_AMPLITUDE = 0.12  # of full scale, per tone
RAMP_SAMPLES = 48  # 1 ms raised-cosine ramp at each end of a tone frame

# Detector tuning.
_HOP_SAMPLES = 240  # 5 ms between analysis windows
_BAND_LOW_HZ = 2300.0
_BAND_HIGH_HZ = 5700.0
_TONE_SHARE_MIN = 0.55  # tone bin (+/- 1 bin) share of the band energy
_TONE_AMPLITUDE_MIN = 0.02  # of full scale: below this a window is "no tone"
_MAX_RUN_BREAK_HOPS = 3  # windows allowed between the end of tone a and the start of tone b
_DEMOD_AVERAGE_SAMPLES = 240  # 5 ms moving average for onset refinement


def marker_tones(marker_id: int) -> tuple[int, int]:
    """Tone indices (a, b) of a marker id; a != b by construction."""
    if not 0 <= marker_id < MARKER_ID_COUNT:
        raise ValueError(f"marker id {marker_id} outside [0, {MARKER_ID_COUNT})")
    a = marker_id // (TONE_COUNT - 1)
    b = (a + 1 + marker_id % (TONE_COUNT - 1)) % TONE_COUNT
    return a, b


def marker_id_from_tones(a: int, b: int) -> int | None:
    """Inverse of marker_tones; None when a == b (not a valid marker)."""
    d = (b - a - 1) % TONE_COUNT
    if d == TONE_COUNT - 1:
        return None
    return a * (TONE_COUNT - 1) + d


def _tone_frame(tone: int, sample_rate: int) -> np.ndarray:
    n = np.arange(FRAME_SAMPLES * sample_rate // SAMPLE_RATE)
    tone_signal = np.sin(2 * np.pi * TONE_FREQS_HZ[tone] * n / sample_rate)
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(RAMP_SAMPLES) / RAMP_SAMPLES)
    envelope = np.ones_like(tone_signal)
    envelope[:RAMP_SAMPLES] = ramp
    envelope[-RAMP_SAMPLES:] = ramp[::-1]
    return MARKER_AMPLITUDE * tone_signal * envelope


def marker_waveform(marker_id: int, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The 40 ms float waveform (full scale 1.0) of one marker, to be added at the start of its slot."""
    a, b = marker_tones(marker_id)
    return np.concatenate([_tone_frame(a, sample_rate), _tone_frame(b, sample_rate)])


def marker_start_sample(slot_index: int, sample_rate: int = SAMPLE_RATE) -> int:
    """Sample offset of the marker in 500 ms slot ``slot_index`` of the loop."""
    return int(round(slot_index * MARKER_INTERVAL_S * sample_rate))


class MarkerDetector:
    """Streaming marker detector: push PCM in any chunk size, get (marker_id, start_sample) back.

    Offsets count from the first sample ever pushed. Each marker is reported once, as soon as
    its second tone has been seen.
    """

    def __init__(self, sample_rate: int = SAMPLE_RATE) -> None:
        self.sample_rate = sample_rate
        self._window = int(round(0.020 * sample_rate))
        self._hop = max(1, int(round(_HOP_SAMPLES * sample_rate / SAMPLE_RATE)))
        self._hann = np.hanning(self._window)
        self._hann_sum = float(self._hann.sum())
        bin_hz = sample_rate / self._window
        self._tone_bins = np.array([int(round(f / bin_hz)) for f in TONE_FREQS_HZ])
        self._band = slice(int(_BAND_LOW_HZ / bin_hz), int(_BAND_HIGH_HZ / bin_hz) + 1)
        self._buffer = np.zeros(0, dtype=np.float64)
        self._buffer_start = 0  # absolute sample offset of self._buffer[0]
        self._next_window = 0  # absolute offset of the next analysis window
        # Run state: the current tone run (tone, first window offset, last window offset).
        self._run_tone: int | None = None
        self._run_first = 0
        self._run_last = 0
        self._prev_run: tuple[int, int, int] | None = None
        self._reported_run_first: int | None = None

    def push(self, samples: np.ndarray) -> list[tuple[int, int]]:
        chunk = np.asarray(samples)
        if chunk.ndim != 1:
            raise ValueError("MarkerDetector.push takes mono samples (a 1-D array)")
        if chunk.dtype == np.int16:
            chunk = chunk.astype(np.float64) / 32768.0
        else:
            chunk = chunk.astype(np.float64, copy=False)
        self._buffer = np.concatenate([self._buffer, chunk])
        found: list[tuple[int, int]] = []
        end = self._buffer_start + len(self._buffer)
        count = (end - self._window - self._next_window) // self._hop + 1
        if count > 0:
            first = self._next_window - self._buffer_start
            frames = np.lib.stride_tricks.sliding_window_view(self._buffer[first:], self._window)[:: self._hop][:count]
            for i, tone in enumerate(self._classify(frames)):
                found.extend(self._advance(int(tone), self._next_window + i * self._hop))
            self._next_window += count * self._hop
        # Keep enough history to refine the onset of a tone run that started a while ago.
        keep_from = min(self._next_window, self._run_first if self._run_tone is not None else self._next_window)
        keep_from -= 3 * self._window
        if keep_from > self._buffer_start:
            self._buffer = self._buffer[keep_from - self._buffer_start :]
            self._buffer_start = keep_from
        return found

    def _classify(self, frames: np.ndarray) -> np.ndarray:
        """Tone index per window, or -1 for no tone."""
        spectrum = np.abs(np.fft.rfft(frames * self._hann, axis=1)) ** 2
        band_energy = spectrum[:, self._band].sum(axis=1) + 1e-20
        tone_energy = spectrum[:, self._tone_bins - 1] + spectrum[:, self._tone_bins] + spectrum[:, self._tone_bins + 1]
        best = np.argmax(tone_energy, axis=1)
        rows = np.arange(len(frames))
        share = tone_energy[rows, best] / band_energy
        amplitude = 2.0 * np.sqrt(spectrum[rows, self._tone_bins[best]]) / self._hann_sum
        return np.where((share >= _TONE_SHARE_MIN) & (amplitude >= _TONE_AMPLITUDE_MIN), best, -1)

    def _advance(self, tone: int, offset: int) -> list[tuple[int, int]]:
        if tone == self._run_tone:
            self._run_last = offset
            return []
        # The current run ended.
        if self._run_tone is not None:
            self._prev_run = (self._run_tone, self._run_first, self._run_last)
        self._run_tone = tone if tone >= 0 else None
        self._run_first = self._run_last = offset
        if tone < 0 or self._prev_run is None:
            return []
        prev_tone, prev_first, prev_last = self._prev_run
        if offset - prev_last > _MAX_RUN_BREAK_HOPS * self._hop or prev_first == self._reported_run_first:
            return []
        marker_id = marker_id_from_tones(prev_tone, tone)
        if marker_id is None:
            return []
        self._reported_run_first = offset  # tone b's run must not start a marker of its own
        return [(marker_id, self._refine_onset(prev_tone, prev_first))]

    def _refine_onset(self, tone: int, run_first: int) -> int:
        """Half-amplitude crossing of tone ``tone`` around the start of its run (complex demodulation)."""
        lo = max(self._buffer_start, run_first - self._window)
        hi = min(self._buffer_start + len(self._buffer), run_first + 2 * self._window)
        segment = self._buffer[lo - self._buffer_start : hi - self._buffer_start]
        if len(segment) < _DEMOD_AVERAGE_SAMPLES * 2:
            return run_first
        n = np.arange(lo, hi)
        baseband = segment * np.exp(-2j * np.pi * TONE_FREQS_HZ[tone] * n / self.sample_rate)
        kernel = np.ones(_DEMOD_AVERAGE_SAMPLES) / _DEMOD_AVERAGE_SAMPLES
        envelope = np.abs(np.convolve(baseband, kernel, mode="valid"))  # envelope[i] averages segment[i:i+L]
        peak = float(envelope.max())
        if peak <= 0:
            return run_first
        above = np.nonzero(envelope >= 0.5 * peak)[0]
        # The window average reaches half of a step L/2 samples before the step; the tone reaches
        # half amplitude RAMP_SAMPLES/2 after the frame start.
        crossing = int(above[0]) + _DEMOD_AVERAGE_SAMPLES // 2
        return lo + crossing - RAMP_SAMPLES // 2


# The marker stand-in captioner's words for the markers it heard, and how a caption reader finds them again: one
# owner for the writer (refstack's captioner) and the readers (caption clients, caption matching).
STAND_IN_PATTERN = re.compile(r"\bmarker\s+(\d+)", re.IGNORECASE)


def stand_in_words(marker_ids: list[int]) -> str:
    """A caption naming these marker ids, as the stand-in captioner writes it."""
    return " ".join(f"marker {marker_id}" for marker_id in marker_ids) + "."


def marker_ids(text: str) -> list[int]:
    """Timing-marker ids the marker stand-in named in a caption."""
    return [int(found) for found in STAND_IN_PATTERN.findall(text)]
