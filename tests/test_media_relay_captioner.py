"""The portal's stand-in transcriber against the real relay: markers in, "marker <id>" text chunks out."""

from __future__ import annotations

import asyncio
import re

import httpx
import numpy as np

from harness.rtc.audio import encode_opus_loop, load_loop
from harness.refstack.portal.captioner import UNMARKED_TEXT, chunk_text, transcribe
from harness.refstack.media.loopback_peers import LoopPublisher

ALWAYS_AVAILABLE = {"alwaysAvailable": True, "alwaysAvailableTracks": [{"codec": "Opus"}], "overridePublisher": True}




async def _collect(whep_url: str, chunks: int, **kwargs) -> list[str]:
    texts = []
    async for text in transcribe(whep_url, **kwargs):
        texts.append(text)
        if len(texts) == chunks:
            break
    return texts


def test_chunk_text_rules():
    assert chunk_text([], -90.0) == ""
    assert chunk_text([], -20.0) == UNMARKED_TEXT
    six = chunk_text([10, 11, 12, 13, 14, 15], -20.0)
    assert six == "marker 10 marker 11 marker 12 marker 13 marker 14 marker 15."
    # Contract 7.4: >= 10 words before the sentence end, so the aggregator finalises a 6-marker chunk.
    assert len(six.split()) >= 10 and six.endswith(".")


def test_markers_of_the_booth_audio_become_text_chunks(relay):
    path = "cap/1/es"
    payloads = load_loop().payloads

    async def scenario():
        async with httpx.AsyncClient() as http:
            publisher = await LoopPublisher(http, relay.media_http_url, path, payloads).start()
            try:
                # Short chunks keep the test fast; 1.5 s carries 3 markers (2 per second).
                return await asyncio.wait_for(_collect(f"{relay.media_http_url}/{path}/whep", 3, chunk_s=1.5), 20)
            finally:
                await publisher.close()

    texts = asyncio.run(scenario())
    ids = [int(i) for text in texts for i in re.findall(r"marker (\d+)", text)]
    assert all(text.endswith(".") for text in texts[1:]), texts
    # Consecutive ids: the loop carries marker m in slot m, two per second.
    assert len(ids) >= 7 and ids == list(range(ids[0], ids[0] + len(ids))), texts
    # After the first (partial) chunk each 1.5 s chunk holds 3 markers.
    assert all(len(re.findall(r"marker \d+", text)) == 3 for text in texts[1:]), texts


def test_silent_booth_yields_empty_chunks(relay):
    path = "quiet/1/es"
    silence = encode_opus_loop(np.zeros(48000 * 2, dtype=np.float64), 32000)

    async def scenario():
        async with httpx.AsyncClient() as http:
            publisher = await LoopPublisher(http, relay.media_http_url, path, silence).start()
            try:
                return await asyncio.wait_for(_collect(f"{relay.media_http_url}/{path}/whep", 2, chunk_s=1.0), 20)
            finally:
                await publisher.close()

    assert asyncio.run(scenario()) == ["", ""]


def test_returns_when_whep_fails(relay):
    # No publisher, not alwaysAvailable: WHEP answers 404 and the generator ends at once (worker restarts it).
    texts = asyncio.run(asyncio.wait_for(_collect(f"{relay.media_http_url}/none/1/es/whep", 5), 10))
    assert texts == []


def test_waiting_without_publisher_is_silence_then_ends_with_the_session(relay):
    path = "wait/1/es"
    httpx.post(f"{relay.media_api_url}/v3/config/paths/add/{path}", json=ALWAYS_AVAILABLE)

    async def scenario():
        texts = []
        async with httpx.AsyncClient() as http:
            async def consume():
                async for text in transcribe(f"{relay.media_http_url}/{path}/whep", chunk_s=0.5):
                    texts.append(text)

            task = asyncio.create_task(consume())
            for _ in range(100):
                if texts:
                    break
                await asyncio.sleep(0.05)
            # End the reader's session from the relay side: once the path is no longer alwaysAvailable, a
            # source that goes away closes its readers (MediaMTX setNotReady); transcribe must then return.
            assert (await http.delete(f"{relay.media_api_url}/v3/config/paths/delete/{path}")).status_code == 200
            publisher = await LoopPublisher(http, relay.media_http_url, path, load_loop().payloads).start()
            await asyncio.sleep(0.3)
            await publisher.close()
            await asyncio.wait_for(task, 15)
        return texts

    texts = asyncio.run(scenario())
    assert texts and set(texts) == {""}

