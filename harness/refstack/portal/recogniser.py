"""Real speech recognition for the reference portal's captioner: pocketsphinx, off the event loop.

The captioner (captioner.py) cuts the booth's audio into speech segments with pocketsphinx's voice-activity
endpointer; each segment is decoded whole here, with the US English model the pocketsphinx wheel ships.

CPU: decoding costs about a fifth of a core per second of speech (benchmarks/recogniser_cost.py), so it runs in
ONE separate process shared by every worker of the portal (a ``ProcessPoolExecutor`` with one worker, started
by ``warm_up`` when the first worker begins): the portal's event loop never waits on it, and booths beyond one
core's worth queue up there, which shows as caption delay, as an overloaded VoxBento worker host would.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing
import os
import threading

RECOGNISER_SAMPLE_RATE_HZ = 16_000
# Narrower search than pocketsphinx's defaults (at most 5000 active HMMs per frame, no flat-lexicon second
# pass): 0.17 instead of 0.28 CPU seconds per second of corpus speech, word error rate 0.33 instead of 0.30
# (benchmarks/recogniser_cost.py).
_DECODER_OPTIONS = {"maxhmmpf": 5000, "fwdflat": False}
# Model directory names of the pocketsphinx wheel -> the booth languages they serve.
_MODEL_LANGUAGES = {"en-us": "en"}

_decoder = None  # one per recogniser process
_pool: concurrent.futures.ProcessPoolExecutor | None = None
_pool_lock = threading.Lock()


def languages() -> frozenset[str]:
    """Booth languages (ISO 639-1) a model is installed for; empty when pocketsphinx is missing."""
    try:
        import pocketsphinx
    except ImportError:
        return frozenset()
    installed = set(os.listdir(pocketsphinx.get_model_path()))
    return frozenset(lang for model, lang in _MODEL_LANGUAGES.items() if model in installed)


def available_for(language: str) -> bool:
    return language.lower().split("-")[0] in languages()


def _init_worker() -> None:
    global _decoder
    from pocketsphinx import Decoder

    _decoder = Decoder(samprate=RECOGNISER_SAMPLE_RATE_HZ, logfn=os.devnull, **_DECODER_OPTIONS)


def _is_word(word: str) -> bool:
    # Fillers and silences: <s>, </s>, <sil>, [NOISE], ++garbage++.
    return not (word.startswith("<") or word.startswith("[") or word.startswith("+"))


def recognise_segment(pcm16k: bytes) -> tuple[str, float]:
    """Words of one speech segment (16 kHz mono s16) and the CPU seconds they took. Runs in the recogniser process."""
    start = os.times()
    _decoder.start_utt()
    _decoder.process_raw(pcm16k, full_utt=True)
    _decoder.end_utt()
    words = [seg.word.split("(")[0] for seg in _decoder.seg() if _is_word(seg.word)]  # "read(2)": a pronunciation variant
    end = os.times()
    return " ".join(words), (end.user - start.user) + (end.system - start.system)


def _executor() -> concurrent.futures.ProcessPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            # spawn: the portal runs threads (aiosqlite) that a forked child must not inherit.
            _pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker)
        return _pool


def _ready() -> bool:
    return _decoder is not None


async def warm_up() -> None:
    """Start the recogniser process and load its model (seconds on a busy box) before the first chunk is due."""
    await asyncio.get_running_loop().run_in_executor(_executor(), _ready)


async def recognise(pcm16k: bytes) -> tuple[str, float]:
    """Recognise one speech segment (16 kHz mono s16) in the recogniser process; (text, CPU seconds)."""
    return await asyncio.get_running_loop().run_in_executor(_executor(), recognise_segment, pcm16k)


def shutdown() -> None:
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=False, cancel_futures=True)
