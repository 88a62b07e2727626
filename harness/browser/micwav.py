"""The interpreter canary's microphone: a WAV file Chromium's fake capture device plays in a loop.

The same speech-like signal with timing markers the synthetic publishers send (harness/rtc/audio.py), so a
listener of the booth hears markers whoever publishes; 16-bit mono 48 kHz, as ``--use-file-for-fake-audio-capture``
reads it.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from ..rtc.audio import AudioParams, synthesize
from ..rtc.markers import MARKER_ID_COUNT, MARKER_INTERVAL_S, SAMPLE_RATE


def write_mic_wav(path: Path, seconds: float = 60.0) -> Path:
    slots = max(1, min(MARKER_ID_COUNT, int(seconds / MARKER_INTERVAL_S)))
    pcm = (synthesize(AudioParams(loop_markers=slots)) * 32767).astype("<i2")
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(np.ascontiguousarray(pcm).tobytes())
    return path
