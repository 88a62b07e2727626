"""The reference portal's captioner with a real recogniser, end to end: speech corpus -> relay -> WHEP ->
pocketsphinx (its own process) -> the caption aggregator (contract 7.4) -> caption matching against the transcript.

Real parts only: the relay subprocess, an aiortc WHIP publisher playing the committed English loop, the
captioner's WHEP reader, pocketsphinx with the model its wheel ships, jiwer.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from harness.media.captions_match import FINAL, PARTIAL, Recogniser, ReceivedCaption, match_booth
from harness.media.schedule import PublisherSchedule
from harness.media.speech import load_corpus
from harness.refstack.media.loopback_peers import LoopPublisher
from harness.refstack.portal import captioner, recogniser
from harness.refstack.portal.captions import CaptionAggregator

pytestmark = pytest.mark.skipif(not recogniser.available_for("en"), reason="pocketsphinx with its English model is not installed")

CHUNKS = 16  # 48 s of audio: more than one 40.5 s loop, so matching crosses a loop boundary


async def _caption_run(media_url: str, path: str, language: str, chunks: int, provider=captioner.transcribe):
    corpus = load_corpus()
    loop = corpus.loop(corpus.language_for(language))
    received: list[ReceivedCaption] = []

    async def send(message: dict) -> None:
        if message["status"] in (PARTIAL, FINAL) and message["text"]:
            received.append(ReceivedCaption(message["status"], message["text"], time.time()))

    aggregator = CaptionAggregator(send)
    texts: list[str] = []
    if provider is captioner.transcribe and recogniser.available_for(language):
        await recogniser.warm_up()  # model loading is not part of what this test measures
    async with httpx.AsyncClient() as http:
        publisher = await LoopPublisher(http, media_url, path, loop.payloads).start()
        listen_start_s = time.time()
        try:
            async for text in provider(f"{media_url}/{path}/whep", language=language):
                texts.append(text)
                await aggregator.add_chunk(text)
                if len(texts) == chunks:
                    break
            await aggregator.add_silence()  # what the next (silent) chunk would do: finalise what is pending
        finally:
            # The track's own clock is monotonic: its start on the wall clock is the schedule's epoch.
            epoch_s = time.time() - (time.monotonic() - publisher.track._start_s)
            await publisher.close()
    schedule = PublisherSchedule("p", int(epoch_s * 1e9), loop.length, language=loop.language)
    # The captioner heard len(texts) chunks of audio from about listen_start_s on, whenever it got round to
    # recognising them (a loaded machine lags): utterances due are those inside that stretch of audio.
    heard_until_s = listen_start_s + len(texts) * captioner.CHUNK_S
    return texts, received, schedule, listen_start_s, heard_until_s, corpus.transcript(language)


@pytest.fixture(scope="module", autouse=True)
def _recogniser_process():
    yield
    recogniser.shutdown()  # the pool's process would otherwise outlive the module's event loops


def test_pocketsphinx_captions_match_the_transcript(relay):
    texts, received, schedule, since_s, until_s, transcript = asyncio.run(asyncio.wait_for(
        _caption_run(relay.media_http_url, "speech/1/en", "en", CHUNKS), 240))
    result = match_booth(transcript, [schedule], received, language="en", listen_start_s=since_s, listen_end_s=until_s)
    detail = f"chunks={texts!r}\nresult={result!r}"
    assert result.recogniser == Recogniser.SPEECH, detail
    # A real recogniser: words, not markers, and most utterances recognised well enough to be matched.
    assert not any("marker" in t for t in texts), detail
    assert len(result.utterances) >= 8, detail
    assert result.carried >= len(result.utterances) // 2, detail
    assert result.word_error_rate is not None and result.word_error_rate < 0.9, detail
    for row in result.utterances:
        if row.final_delay_ms is not None:
            assert row.first_partial_delay_ms is not None and row.first_partial_delay_ms <= row.final_delay_ms, detail
    # Finals come from the recogniser's sentence ends (a pause before the chunk's end), as behind Whisper.
    assert any(c.status == FINAL for c in received), detail


def test_languages_without_a_model_get_the_marker_stand_in(relay):
    texts, received, schedule, since_s, until_s, transcript = asyncio.run(asyncio.wait_for(
        _caption_run(relay.media_http_url, "speech/1/es", "es", 4), 120))
    assert "es" not in recogniser.languages()
    # Markers sit between utterances only: some chunks name them, and the matcher tells the stand-in apart.
    assert any("marker" in t for t in texts), texts
    result = match_booth(transcript, [schedule], received, language="es", listen_start_s=since_s, listen_end_s=until_s)
    assert result.recogniser == Recogniser.STAND_IN and result.word_error_rate is None
