"""Synthetic speech-like audio with timing markers, pre-encoded once to an Opus loop and cached on disk.

Owns: the signal (syllable-modulated voiced/noise mix band-limited below 2 kHz, words and pauses, a
quiet room-tone floor so no two Opus packets are identical), the marker embedding (markers.py, one per
500 ms slot, ids counting up with the slot), the Opus encoding (PyAV libopus, 48 kHz mono, 20 ms frames)
and the on-disk cache keyed by every parameter plus ``AUDIO_VERSION``.

A loop is ``MARKER_ID_COUNT`` slots long (120 s, 6000 packets): marker id ``m`` sits in packet
``m * 25``. Packets are identified by ``payload_hash`` (blake2b, 8 bytes) so a listener that receives
a forwarded payload knows which loop packet it is; hashes that occur twice are left out of the index.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from .markers import FRAME_SAMPLES, MARKER_ID_COUNT, SAMPLE_RATE, marker_start_sample, marker_waveform

logger = logging.getLogger(__name__)

AUDIO_VERSION = 1  # bump when the synthesis or encoding changes: it is part of the cache key
PACKET_DURATION_S = FRAME_SAMPLES / SAMPLE_RATE  # 0.02
SPEECH_CUTOFF_HZ = 2000.0  # keeps the 2.5-6 kHz marker band free
ENV_CACHE_DIR = "VOXLOAD_CACHE_DIR"


def payload_hash(payload: bytes) -> bytes:
    """8-byte identity of an Opus payload (media-design 4: 0.5 us per packet)."""
    return hashlib.blake2b(payload, digest_size=8).digest()


@dataclasses.dataclass(frozen=True)
class AudioParams:
    seed: int = 1
    bitrate_bps: int = 32000
    loop_markers: int = MARKER_ID_COUNT  # loop length in 500 ms slots; MARKER_ID_COUNT keeps ids unique per loop
    speech_level_dbfs: float = -20.0
    floor_level_dbfs: float = -55.0
    with_markers: bool = True

    def cache_key(self) -> str:
        text = json.dumps({"v": AUDIO_VERSION, **dataclasses.asdict(self)}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def default_cache_dir() -> Path:
    return Path(os.environ.get(ENV_CACHE_DIR) or Path.home() / ".cache" / "voxload" / "media")


def _lowpass(signal: np.ndarray, cutoff_hz: float) -> np.ndarray:
    spectrum = np.fft.rfft(signal)
    freqs = np.fft.rfftfreq(len(signal), 1.0 / SAMPLE_RATE)
    # Brick-wall above the cutoff plus a gentle speech-like tilt (-6 dB/octave above 500 Hz).
    tilt = 1.0 / np.maximum(1.0, freqs / 500.0)
    spectrum *= np.where(freqs <= cutoff_hz, tilt, 0.0)
    return np.fft.irfft(spectrum, n=len(signal))


def _syllable_envelope(rng: np.random.Generator, total: int) -> tuple[np.ndarray, np.ndarray]:
    """Amplitude envelope (syllables in words, pauses between words and phrases) and a voiced flag."""
    envelope = np.zeros(total)
    voiced = np.zeros(total)
    pos = int(rng.uniform(0.05, 0.3) * SAMPLE_RATE)
    while pos < total:
        for _ in range(int(rng.integers(1, 5))):  # syllables in a word
            length = int(rng.uniform(0.10, 0.28) * SAMPLE_RATE)
            end = min(total, pos + length)
            n = end - pos
            shape = np.sin(np.pi * np.arange(n) / max(1, length)) ** 0.7
            envelope[pos:end] = shape * rng.uniform(0.5, 1.0)
            voiced[pos:end] = 1.0 if rng.random() < 0.75 else 0.0
            pos = end + int(rng.uniform(0.01, 0.05) * SAMPLE_RATE)
            if pos >= total:
                break
        # Word gap, sometimes a phrase pause.
        pause_s = rng.uniform(0.05, 0.15) if rng.random() < 0.8 else rng.uniform(0.3, 0.8)
        pos += int(pause_s * SAMPLE_RATE)
    return envelope, voiced


def synthesize(params: AudioParams) -> np.ndarray:
    """The loop as float64 PCM, full scale 1.0, 48 kHz mono, markers included."""
    total = marker_start_sample(params.loop_markers)
    rng = np.random.default_rng(params.seed)
    envelope, voiced = _syllable_envelope(rng, total)
    # Voiced part: harmonics of a slowly wandering f0 (100-220 Hz), kept below the cutoff.
    f0_hz = 160 + 50 * np.sin(2 * np.pi * 0.3 * np.arange(total) / SAMPLE_RATE) + 10 * rng.standard_normal(total).cumsum() / np.sqrt(total)
    phase = 2 * np.pi * np.cumsum(f0_hz) / SAMPLE_RATE
    harmonics = sum(np.sin(h * phase) / h for h in range(1, 9))
    noise = rng.standard_normal(total)
    source = voiced * harmonics + (1.0 - voiced) * 0.5 * noise + 0.3 * noise
    speech = _lowpass(source * envelope, SPEECH_CUTOFF_HZ)
    speech *= 10 ** (params.speech_level_dbfs / 20) / (np.sqrt(np.mean(speech**2)) + 1e-12)
    floor = _lowpass(rng.standard_normal(total), SPEECH_CUTOFF_HZ)
    floor *= 10 ** (params.floor_level_dbfs / 20) / (np.sqrt(np.mean(floor**2)) + 1e-12)
    signal = speech + floor
    if params.with_markers:
        for slot in range(params.loop_markers):
            wave = marker_waveform(slot % MARKER_ID_COUNT)
            start = marker_start_sample(slot)
            signal[start : start + len(wave)] += wave
    return np.clip(signal, -1.0, 1.0)


def encode_opus_loop(pcm: np.ndarray, bitrate_bps: int) -> list[bytes]:
    """Opus payloads, one per 20 ms frame of ``pcm``, encoded so the loop wraps seamlessly.

    The encoder is first fed the loop's last second, so packet 0 is encoded with the state it has
    when the loop wraps around; packet i then covers the frame i of the loop (plus the codec's own
    look-ahead delay, which a decoder shows as 312 samples).
    """
    frames = len(pcm) // FRAME_SAMPLES
    warmup_frames = min(frames, 50)
    pcm16 = (np.clip(pcm, -1.0, 1.0) * 32767).astype(np.int16)
    feed = np.concatenate([pcm16[-warmup_frames * FRAME_SAMPLES :], pcm16[: frames * FRAME_SAMPLES]])
    codec = av.CodecContext.create("libopus", "w")
    codec.sample_rate = SAMPLE_RATE
    codec.layout = "mono"
    codec.format = "s16"
    codec.bit_rate = bitrate_bps
    codec.time_base = Fraction(1, SAMPLE_RATE)
    codec.options = {"application": "voip", "frame_duration": "20"}
    payloads: list[bytes] = []
    for i in range(len(feed) // FRAME_SAMPLES):
        frame = av.AudioFrame.from_ndarray(feed[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES].reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = i * FRAME_SAMPLES
        payloads.extend(bytes(p) for p in codec.encode(frame))
    payloads.extend(bytes(p) for p in codec.encode(None))
    return payloads[warmup_frames : warmup_frames + frames]


@dataclasses.dataclass(frozen=True)
class OpusLoop:
    """The pre-encoded loop: payloads in order, and the payload -> loop index maps.

    ``index_by_hash`` (8-byte ``payload_hash``) is the compact identity for logs and other processes;
    ``index_by_payload`` (the payload bytes themselves) is what a tap listener looks up per packet: a dict
    probe with the bytes' own hash costs a third of a blake2b digest.
    """

    params: AudioParams
    payloads: tuple[bytes, ...]
    index_by_hash: dict[bytes, int]
    duplicate_hashes: int
    index_by_payload: dict[bytes, int]
    # The 500 ms slots that carry a marker; None = every slot (the synthetic loop). Speech loops (speech.py)
    # carry markers only between utterances.
    marker_slots: tuple[int, ...] | None = None
    language: str | None = None  # what the loop speaks (speech corpus); None for the synthetic loop

    @property
    def length(self) -> int:
        return len(self.payloads)

    @classmethod
    def merged(cls, loops: list[OpusLoop]) -> OpusLoop:
        """One lookup for listeners of booths that play different loops of one length (speech.AudioLibrary).

        ``payloads`` are the first loop's; a payload that two loops share is ambiguous and left out of the index.
        """
        if len(loops) == 1:
            return loops[0]
        if len({loop.length for loop in loops}) != 1:
            raise ValueError("merged loops must have one length")
        by_hash: dict[bytes, int] = {}
        by_payload: dict[bytes, int] = {}
        seen: set[bytes] = set()
        duplicated = sum(loop.duplicate_hashes for loop in loops)
        for loop in loops:
            for payload, i in loop.index_by_payload.items():
                if payload in seen:
                    by_payload.pop(payload, None)
                    duplicated += 1
                    continue
                seen.add(payload)
                by_payload[payload] = i
        by_hash = {payload_hash(p): i for p, i in by_payload.items()}
        slots = None if any(loop.marker_slots is None for loop in loops) else tuple(sorted({s for loop in loops for s in loop.marker_slots}))
        return cls(loops[0].params, loops[0].payloads, by_hash, duplicated, by_payload, slots, None)

    @classmethod
    def from_payloads(cls, params: AudioParams, payloads: list[bytes], *, marker_slots: tuple[int, ...] | None = None,
                      language: str | None = None) -> OpusLoop:
        index: dict[bytes, int] = {}
        duplicated: set[bytes] = set()
        for i, payload in enumerate(payloads):
            key = payload_hash(payload)
            if key in index:
                duplicated.add(key)
            index[key] = i
        for key in duplicated:
            # An ambiguous payload cannot name its loop position: leave it out of the index.
            del index[key]
        by_payload = {payload: i for i, payload in enumerate(payloads) if payload_hash(payload) in index}
        return cls(params, tuple(payloads), index, len(duplicated), by_payload, marker_slots, language)


def _write_cache(path: Path, payloads: list[bytes]) -> None:
    lengths = np.array([len(p) for p in payloads], dtype=np.uint16)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, lengths=lengths, data=np.frombuffer(b"".join(payloads), dtype=np.uint8))
    os.replace(tmp, path)  # atomic: parallel engines may build the same loop at once


def _read_cache(path: Path) -> list[bytes]:
    with np.load(path) as archive:
        lengths = archive["lengths"].astype(np.int64)
        data = archive["data"].tobytes()
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    return [data[offsets[i] : offsets[i + 1]] for i in range(len(lengths))]


def load_loop(params: AudioParams | None = None, cache_dir: Path | None = None) -> OpusLoop:
    """The Opus loop for ``params``, from the disk cache or synthesized and encoded (a few seconds) once."""
    params = params or AudioParams()
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = cache_dir / f"opus-loop-{params.cache_key()}.npz"
    if path.exists():
        try:
            return OpusLoop.from_payloads(params, _read_cache(path))
        except (OSError, ValueError, KeyError) as exc:
            logger.warning("ignoring unreadable audio cache %s: %s", path, exc)
    payloads = encode_opus_loop(synthesize(params), params.bitrate_bps)
    cache_dir.mkdir(parents=True, exist_ok=True)
    _write_cache(path, payloads)
    logger.info("encoded Opus loop %s: %d packets, cached at %s", params.cache_key(), len(payloads), path)
    return OpusLoop.from_payloads(params, payloads)


def decode_opus(payloads: list[bytes] | tuple[bytes, ...]) -> np.ndarray:
    """Decode payloads back to mono int16 PCM (tests and probes' offline checks)."""
    codec = av.CodecContext.create("libopus", "r")
    codec.sample_rate = SAMPLE_RATE
    codec.layout = "mono"
    codec.format = "s16"
    out: list[np.ndarray] = []
    for i, payload in enumerate(payloads):
        packet = av.Packet(payload)
        packet.pts = i * FRAME_SAMPLES
        packet.time_base = Fraction(1, SAMPLE_RATE)
        for frame in codec.decode(packet):
            out.append(frame_to_mono_int16(frame))
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int16)


def frame_to_mono_int16(frame: av.AudioFrame) -> np.ndarray:
    """Mono int16 samples of a decoded frame (aiortc's decoder gives packed stereo s16)."""
    data = frame.to_ndarray()
    channels = len(frame.layout.channels)
    if frame.format.is_planar:
        mono = data[0]
    else:
        mono = data.reshape(-1, channels)[:, 0]
    if mono.dtype != np.int16:
        mono = (np.clip(mono, -1.0, 1.0) * 32767).astype(np.int16)
    return mono
