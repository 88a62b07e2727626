"""The reference portal's stand-in for speech recognition: booth audio over WHEP -> timing markers -> text chunks.

VoxBento's local provider (contract 7.3) reads a booth's audio through ffmpeg and transcribes it with
faster-whisper in 3 s chunks. The reference stack has no speech model; this module is a *stand-in for speech
recognition* that keeps the same shape and timing so captions can be measured end to end:

- it subscribes to the booth's path over WHEP with aiortc (``iceServers=[]``, loopback-only ICE), decodes the
  Opus audio to PCM and runs ``harness.media.markers.MarkerDetector`` on it;
- every 3 s of received audio it yields one text chunk: ``"marker 12 marker 13 ... marker 17."`` (two words
  per detected marker and a final period, so a chunk with >= 5 markers - 6 at 2 markers/s - is finalised by
  the caption aggregator's ">= 10 words before a sentence end" rule, contract 7.4); ``"unmarked speech"``
  (no period: it stays partial) for audio with energy but no marker; and ``""`` for a silent chunk, which the
  aggregator treats as silence. While the relay sends nothing at all (an alwaysAvailable path without a
  publisher), each 3 s of waiting yields ``""`` too, as silence would.
- it returns when the WHEP request fails, the peer connection fails or closes, or the track ends, so the
  portal's worker loop restarts it the way VoxBento restarts ffmpeg (contract 7.1).

Called by ``WorkerRegistry`` in ``transcription.py`` (portal-live engineer): ``async for text in transcribe(url)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator
from urllib.parse import urljoin

import httpx
import numpy as np
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from harness.media.audio import frame_to_mono_int16
from harness.media.markers import MarkerDetector
from harness.media import aiortc_patches

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
    return " ".join(f"marker {marker_id}" for marker_id in marker_ids) + "."


def _dbfs(sum_squares: float, samples: int) -> float:
    if samples == 0 or sum_squares <= 0.0:
        return -math.inf
    return 20.0 * math.log10(math.sqrt(sum_squares / samples) / 32768.0)


class _Chunker:
    """Cuts mono PCM into chunks of exactly ``chunk_samples`` and collects markers and energy per chunk."""

    def __init__(self, chunk_samples: int) -> None:
        self._chunk_samples = chunk_samples
        self._detector = MarkerDetector(SAMPLE_RATE_HZ)
        self._filled = 0
        self._sum_squares = 0.0
        self._markers: list[int] = []

    def push(self, mono: np.ndarray) -> list[str]:
        texts = []
        while len(mono):
            take = min(len(mono), self._chunk_samples - self._filled)
            part, mono = mono[:take], mono[take:]
            # A marker completes in the chunk whose samples complete it.
            self._markers.extend(marker_id for marker_id, _ in self._detector.push(part))
            self._sum_squares += float(np.dot(part.astype(np.float64), part.astype(np.float64)))
            self._filled += take
            if self._filled == self._chunk_samples:
                texts.append(chunk_text(self._markers, _dbfs(self._sum_squares, self._filled)))
                self._filled, self._sum_squares, self._markers = 0, 0.0, []
        return texts


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


async def transcribe(whep_url: str, *, chunk_s: float = CHUNK_S, connect_timeout_s: float = CONNECT_TIMEOUT_S) -> AsyncIterator[str]:
    """Yield one text per ``chunk_s`` of booth audio read over WHEP; return when the session ends.

    A stand-in for speech recognition: the text names the timing markers heard, not words.
    """
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
            chunker = _Chunker(int(round(chunk_s * SAMPLE_RATE_HZ)))
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
                        yield ""  # nothing received for a whole chunk: silence
                    continue
                except MediaStreamError:
                    logger.info("captioner: track ended")
                    return
                for text in chunker.push(frame_to_mono_int16(frame)):
                    yield text
        finally:
            # Bounded like VoxBento's stop (SIGTERM to ffmpeg, SIGKILL after 3 s, contract 7.1): a busy relay must
            # not hold transcription/stop for the full WHEP timeout.
            if session_url is not None and pc.connectionState != "closed":
                with contextlib.suppress(httpx.HTTPError):
                    await http.delete(session_url, timeout=STOP_TIMEOUT_S)
            await pc.close()
