"""The reference portal's captioner: booth audio over WHEP -> 3 s chunks -> text, by a real recogniser or a stand-in.

VoxBento's local provider (contract 7.3) reads a booth's audio through ffmpeg and transcribes it with
faster-whisper in 3 s chunks. This module keeps that shape and timing so captions can be measured end to end:

- it subscribes to the booth's path over WHEP with aiortc (``iceServers=[]``, loopback-only ICE) and decodes the
  Opus audio to PCM, cut into chunks of exactly 3 s of received audio;
- ``transcribe`` (the default provider) recognises speech with pocketsphinx when a model for the booth's language
  is installed (US English in the wheel), and falls back to the marker stand-in for other languages; it logs which
  one a booth got. pocketsphinx's voice-activity endpointer cuts the audio into speech segments (``_Segmenter``);
  each segment that ends is decoded whole in the recogniser process (recogniser.py) and ends with a period, as
  Whisper punctuates a sentence followed by a pause, so the caption aggregator's sentence rule finalises captions
  (contract 7.4). A chunk's text is the segments that ended in it; a chunk in which speech goes on without a
  pause yields nothing (nothing new is known yet: VoxBento's Whisper would say part of the sentence, which here
  would be said twice), and a chunk without speech yields ``""``. Cutting at pauses rather than every 3 s is a
  deliberate difference from VoxBento: a word cut in half is misheard by any recogniser, and pocketsphinx's error
  rate on the corpus doubles that way, which would make its captions too poor to measure anything with.
- ``transcribe_markers`` (``REFSTACK_CAPTION_PROVIDER=harness.refstack.portal.captioner:transcribe_markers``) is
  the deterministic stand-in for tests: it runs ``harness.rtc.markers.MarkerDetector`` on the audio and says
  ``"marker 12 marker 13 ... marker 17."`` (two words per detected marker and a final period, so a chunk with
  >= 5 markers is finalised by the caption aggregator's ">= 10 words before a sentence end" rule, contract 7.4);
  ``"unmarked speech"`` (no period: it stays partial) for audio with energy but no marker;
- either way a chunk quieter than ``SILENCE_DBFS`` is ``""``, which the aggregator treats as silence. While the
  relay sends nothing at all (an alwaysAvailable path without a publisher), each 3 s of waiting yields ``""``.
- it returns when the WHEP request fails, the peer connection fails or closes, or the track ends, so the
  portal's worker loop restarts it the way VoxBento restarts ffmpeg (contract 7.1).

Called by ``WorkerRegistry`` in ``transcription.py``: ``async for text in transcribe(url, language=code)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator
from urllib.parse import urljoin

import av
import httpx
import numpy as np
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from harness.rtc.audio import frame_to_mono_int16
from harness.rtc.markers import MarkerDetector, stand_in_words
from harness.rtc import aiortc_patches

from . import recogniser

logger = logging.getLogger(__name__)

SAMPLE_RATE_HZ = 48_000
CHUNK_S = 3.0  # Contract 7.3: the local provider transcribes 3 s chunks.
# A chunk quieter than this is silence. The synthetic speech sits near -20 dBFS and its room-tone floor at
# -55 dBFS, so -45 dBFS separates "someone is talking" from "muted" with margin on both sides.
SILENCE_DBFS = -45.0
UNMARKED_TEXT = "unmarked speech"
WHEP_TIMEOUT_S = 10.0
CONNECT_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 3.0


class CaptionerError(Exception):
    """The WHEP session could not be set up (logged by ``transcribe``, which then returns)."""


def chunk_text(marker_ids: list[int], rms_dbfs: float) -> str:
    """The text one chunk of audio stands for (see the module docstring for why this exact shape)."""
    if rms_dbfs < SILENCE_DBFS:
        return ""
    if not marker_ids:
        return UNMARKED_TEXT
    return stand_in_words(marker_ids)


def _dbfs(sum_squares: float, samples: int) -> float:
    if samples == 0 or sum_squares <= 0.0:
        return -math.inf
    return 20.0 * math.log10(math.sqrt(sum_squares / samples) / 32768.0)


class _Chunker:
    """Cuts mono PCM into chunks of exactly ``chunk_samples``: (samples, markers heard, level in dBFS) per chunk."""

    def __init__(self, chunk_samples: int, detect_markers: bool) -> None:
        self._chunk_samples = chunk_samples
        self._detector = MarkerDetector(SAMPLE_RATE_HZ) if detect_markers else None
        self._parts: list[np.ndarray] = []
        self._filled = 0
        self._sum_squares = 0.0
        self._markers: list[int] = []

    def push(self, mono: np.ndarray) -> list[tuple[np.ndarray, list[int], float]]:
        chunks = []
        while len(mono):
            take = min(len(mono), self._chunk_samples - self._filled)
            part, mono = mono[:take], mono[take:]
            if self._detector is not None:
                # A marker completes in the chunk whose samples complete it.
                self._markers.extend(marker_id for marker_id, _ in self._detector.push(part))
            self._parts.append(part)
            self._sum_squares += float(np.dot(part.astype(np.float64), part.astype(np.float64)))
            self._filled += take
            if self._filled == self._chunk_samples:
                chunks.append((np.concatenate(self._parts), self._markers, _dbfs(self._sum_squares, self._filled)))
                self._parts, self._filled, self._sum_squares, self._markers = [], 0, 0.0, []
        return chunks


async def _open_whep(http: httpx.AsyncClient, whep_url: str, pc: RTCPeerConnection):
    transceiver = pc.addTransceiver("audio", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    try:
        response = await http.post(whep_url, content=pc.localDescription.sdp, headers={"Content-Type": "application/sdp"})
    except httpx.HTTPError as exc:
        raise CaptionerError(f"WHEP {whep_url}: {exc.__class__.__name__}") from exc
    if response.status_code != 201:
        raise CaptionerError(f"WHEP {whep_url}: HTTP {response.status_code} {response.text[:200]}")
    await pc.setRemoteDescription(RTCSessionDescription(sdp=response.text, type="answer"))
    location = response.headers.get("Location")
    return transceiver.receiver.track, urljoin(whep_url, location) if location else None


async def _audio_chunks(whep_url: str, chunk_s: float, connect_timeout_s: float, detect_markers: bool):
    """Yield (pcm, markers, dBFS) per ``chunk_s`` of received audio, or None per ``chunk_s`` with nothing received."""
    aiortc_patches.install(aiortc_patches.Role.DECODE)  # loopback-only ICE host candidates
    pc = RTCPeerConnection(aiortc_patches.ice_configuration())
    session_url = None
    async with httpx.AsyncClient(timeout=WHEP_TIMEOUT_S) as http:
        try:
            try:
                track, session_url = await _open_whep(http, whep_url, pc)
            except CaptionerError as exc:
                logger.warning("captioner: %s", exc)
                return
            chunker = _Chunker(int(round(chunk_s * SAMPLE_RATE_HZ)), detect_markers)
            loop = asyncio.get_running_loop()
            connect_deadline_s = loop.time() + connect_timeout_s
            while True:
                if pc.connectionState in ("failed", "closed"):
                    logger.info("captioner: WHEP session %s", pc.connectionState)
                    return
                if pc.connectionState != "connected" and loop.time() > connect_deadline_s:
                    logger.warning("captioner: WHEP session not connected after %.0f s", connect_timeout_s)
                    return
                try:
                    # Not asyncio.wait_for: on Python 3.11 it swallows a cancel that lands just as recv() completes
                    # (gh-86296), so the worker ran on and transcription/stop, awaiting it under the registry lock,
                    # hung, and every later stop with it. asyncio.timeout keeps the cancel.
                    async with asyncio.timeout(chunk_s):
                        frame = await track.recv()
                except TimeoutError:
                    if pc.connectionState == "connected":
                        yield None  # nothing received for a whole chunk: silence
                    continue
                except MediaStreamError:
                    logger.info("captioner: track ended")
                    return
                for chunk in chunker.push(frame_to_mono_int16(frame)):
                    yield chunk
        finally:
            # Bounded like VoxBento's stop (SIGTERM to ffmpeg, SIGKILL after 3 s, contract 7.1): a busy relay must
            # not hold transcription/stop for the full WHEP timeout.
            if session_url is not None and pc.connectionState != "closed":
                with contextlib.suppress(httpx.HTTPError):
                    await http.delete(session_url, timeout=STOP_TIMEOUT_S)
            await pc.close()


async def transcribe_markers(whep_url: str, *, language: str | None = None, chunk_s: float = CHUNK_S,
                             connect_timeout_s: float = CONNECT_TIMEOUT_S) -> AsyncIterator[str]:
    """The deterministic stand-in: one text per ``chunk_s`` naming the timing markers heard, not words."""
    async for chunk in _audio_chunks(whep_url, chunk_s, connect_timeout_s, detect_markers=True):
        yield "" if chunk is None else chunk_text(chunk[1], chunk[2])


# A segment still going after this long is cut (no period): captions must not wait on a speaker who never pauses.
MAX_SEGMENT_S = 15.0


class _Segmenter:
    """Speech segments of a 16 kHz stream, by pocketsphinx's voice-activity endpointer (one per WHEP session)."""

    def __init__(self) -> None:
        from pocketsphinx import Endpointer

        self._endpointer = Endpointer(sample_rate=recogniser.RECOGNISER_SAMPLE_RATE_HZ)
        self._frame_samples = self._endpointer.frame_bytes // 2
        self._max_frames = int(MAX_SEGMENT_S / self._endpointer.frame_length)
        self._rest = np.zeros(0, dtype=np.int16)
        self._speech: list[bytes] = []
        self.in_speech = False

    def push(self, pcm16k: np.ndarray) -> tuple[list[tuple[bytes, bool]], bool]:
        """(segments finished by this audio as (pcm, ended at a pause), whether any of it was speech)."""
        samples = np.concatenate([self._rest, pcm16k])
        whole = len(samples) // self._frame_samples * self._frame_samples
        self._rest = samples[whole:]
        segments: list[tuple[bytes, bool]] = []
        heard = False
        for i in range(0, whole, self._frame_samples):
            speech = self._endpointer.process(samples[i:i + self._frame_samples].tobytes())
            if speech is not None:
                self._speech.append(speech)
                heard = True
            if self.in_speech and not self._endpointer.in_speech:
                segments.append((b"".join(self._speech), True))
                self._speech = []
            elif len(self._speech) >= self._max_frames:
                segments.append((b"".join(self._speech), False))
                self._speech = []
            self.in_speech = self._endpointer.in_speech
        return segments, heard


async def transcribe(whep_url: str, *, language: str | None = None, chunk_s: float = CHUNK_S,
                     connect_timeout_s: float = CONNECT_TIMEOUT_S) -> AsyncIterator[str]:
    """Yield one text per ``chunk_s`` of booth audio read over WHEP; return when the session ends.

    Real recognition (pocketsphinx) when a model for ``language`` is installed, else the marker stand-in.
    """
    if language is None or not recogniser.available_for(language):
        logger.info("captioner %s: no recogniser for language %r, marker stand-in", whep_url, language)
        async for text in transcribe_markers(whep_url, chunk_s=chunk_s, connect_timeout_s=connect_timeout_s):
            yield text
        return
    logger.info("captioner %s: pocketsphinx (%s)", whep_url, language)
    await recogniser.warm_up()
    segmenter = _Segmenter()
    resampler = av.AudioResampler(format="s16", layout="mono", rate=recogniser.RECOGNISER_SAMPLE_RATE_HZ)
    async for chunk in _audio_chunks(whep_url, chunk_s, connect_timeout_s, detect_markers=False):
        if chunk is None:
            yield ""
            continue
        frame = av.AudioFrame.from_ndarray(chunk[0].reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE_HZ
        resampled = resampler.resample(frame)
        pcm16k = np.concatenate([f.to_ndarray().reshape(-1) for f in resampled]) if resampled else np.zeros(0, np.int16)
        segments, heard = segmenter.push(pcm16k)
        texts = []
        for pcm, ended in segments:
            text, cpu_s = await recogniser.recognise(pcm)
            logger.debug("captioner %s: %.2f CPU s for %.1f s of speech: %r", whep_url, cpu_s,
                         len(pcm) / 2 / recogniser.RECOGNISER_SAMPLE_RATE_HZ, text)
            if text:
                texts.append(text + ("." if ended else ""))
        if texts:
            yield " ".join(texts)
        elif not heard and not segmenter.in_speech:
            yield ""  # no speech in this chunk: silence
