"""The real VoxBento's transcription worker reads a booth's audio from our relay over RTSP (contract 7.1, issue 12).

VoxBento (``$VOXLOAD_VOXBENTO_DIR`` or ``<repo>/../shared/voxbento``, via ``harness.target.voxbento``) runs with
``MEDIAMTX_RTSP_BASE`` pointing at the relay's RTSP listener. A booth is provisioned through the admin forms with
transcription on (local provider, model ``tiny``), a real aiortc WHIP publisher publishes English speech, and the
booth's transcription is started through VoxBento's API. Its worker then runs ``ffmpeg -rtsp_transport tcp -i
{MEDIAMTX_RTSP_BASE}/{path}`` against the relay.

- The RTSP leg: the relay lists ffmpeg's session reading the booth's path, with its counters rising; stopping
  transcription ends the session.
- End to end, the worker first: VoxBento's listener page configures the booth's path (alwaysAvailable), the worker
  starts and reads the relay's offline track (silence), then the interpreter publishes speech on that path and
  the same ffmpeg session carries it to the recogniser. VoxBento's faster-whisper cannot download a model here;
  ``harness.target.offline_models`` gives it the packaged Whisper tiny.en offline, so the booth is English.
  Captions must then carry the spoken words.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from harness.clients.admin import AdminClient
from harness.clients.booth_api import BoothApi
from harness.clients.captions_ws import CaptionSocket
from harness.clients.http import PortalHttp
from harness.clients.identifiers import BoothRef
from harness.clients.listener import ListenerClient
from harness.rtc.audio import SAMPLE_RATE, encode_opus_loop
from harness.refstack.media.loopback_peers import LoopPublisher
from harness.target import offline_models
from harness.target.voxbento import VoxBentoStack

from .conftest import offline_model_settings, running_voxbento

FFMPEG = shutil.which("ffmpeg")
ESPEAK = shutil.which("espeak-ng")
# Two sentences without digits (a recogniser may write numbers either way), a pause after each.
SENTENCES = ("People arrived at the station on Monday morning.", "The library opens early and closes late in winter.")
KEYWORDS = ("people", "arrived", "station", "monday", "morning", "library", "opens", "early", "closes", "winter")
PAUSE_S = 1.5
LANG = offline_models.LANGUAGES[0]


@pytest.fixture(scope="module")
def voxbento(tmp_path_factory):
    if FFMPEG is None:
        pytest.skip("ffmpeg is not installed (Debian package ffmpeg): VoxBento's workers run it")
    tmp = tmp_path_factory.mktemp("voxbento-rtsp")
    settings, no_model = offline_model_settings(tmp / "hf-hub")
    with running_voxbento(tmp / "stack", **settings) as stack:
        yield stack, no_model


def _speech_payloads(tmp_path: Path) -> list[bytes]:
    """The sentences spoken by espeak-ng, each followed by a pause, as 20 ms Opus packets at 48 kHz."""
    pcm = []
    for i, text in enumerate(SENTENCES):
        wav = tmp_path / f"sentence{i}.wav"
        subprocess.run([ESPEAK, "-v", "en-us", "-s", "150", "-w", str(wav), text], check=True, capture_output=True)
        raw = subprocess.run([FFMPEG, "-nostdin", "-loglevel", "error", "-i", str(wav), "-ar", str(SAMPLE_RATE), "-ac", "1",
                              "-f", "f32le", "-"], check=True, capture_output=True).stdout
        pcm += [np.frombuffer(raw, np.float32), np.zeros(int(PAUSE_S * SAMPLE_RATE), np.float32)]
    return encode_opus_loop(np.concatenate(pcm), 32000)


def _provision(stack: VoxBentoStack, slug: str) -> tuple[BoothRef, str]:
    """The booth and the event's listener join code."""
    admin = AdminClient(PortalHttp.for_url(stack.portal_url))
    admin.login(stack.admin_password)
    setup = admin.setup_event(f"RTSP {slug}", slug, {"Main": [LANG]})
    (room,) = setup.rooms
    # Contract 4.3: the booth's transcription settings (local provider, VoxBento's default model).
    admin.set_transcription(setup.event_id, room.room_id, room.booth_ids[LANG], enabled=True, provider="local", model="tiny")
    return BoothRef(slug, room.room_id, LANG), setup.join_code


async def _sessions_on(http: httpx.AsyncClient, stack: VoxBentoStack, path: str) -> list[dict]:
    items = (await http.get(f"{stack.media_api_url}/v3/rtspsessions/list")).json()["items"]
    return [item for item in items if item["path"] == path]


def test_worker_reads_the_booth_over_rtsp_from_the_relay(voxbento, tmp_path):
    stack, _ = voxbento
    booth, _ = _provision(stack, "rtspleg")
    api = BoothApi(PortalHttp.for_url(stack.portal_url))

    async def scenario():
        async with httpx.AsyncClient() as http:
            payloads = await asyncio.to_thread(_speech_payloads, tmp_path) if ESPEAK else None
            if payloads is None:
                from harness.rtc.audio import load_loop

                payloads = load_loop().payloads
            publisher = await LoopPublisher(http, stack.media_url, booth.mediamtx_path, payloads).start()
            try:
                started = await asyncio.to_thread(api.transcription_start, booth.event_slug, booth.room_id, LANG)
                # Two looks at the same session: VoxBento's ffmpeg is connected and audio flows to it.
                first = second = None
                deadline = time.monotonic() + 60
                while second is None and time.monotonic() < deadline:
                    await asyncio.sleep(0.5)
                    reading = [s for s in await _sessions_on(http, stack, booth.mediamtx_path) if s["state"] == "read"]
                    if not reading:
                        continue
                    if first is None or first["id"] != reading[0]["id"]:
                        first = reading[0]
                    elif reading[0]["outboundRTPPackets"] > first["outboundRTPPackets"]:
                        second = reading[0]
                path_item = (await http.get(f"{stack.media_api_url}/v3/paths/get/{booth.mediamtx_path}")).json()
                stopped = await asyncio.to_thread(api.transcription_stop, booth.event_slug, booth.room_id, LANG)
                # VoxBento terminates its ffmpeg (SIGTERM, SIGKILL after 3 s): the RTSP session ends with it.
                remaining = None
                deadline = time.monotonic() + 15
                while time.monotonic() < deadline:
                    remaining = await _sessions_on(http, stack, booth.mediamtx_path)
                    if not remaining:
                        break
                    await asyncio.sleep(0.2)
            finally:
                await publisher.close()
            return started, first, second, path_item, stopped, remaining

    started, first, second, path_item, stopped, remaining = asyncio.run(scenario())
    assert started["status"] == "started" and started["provider"] == "local"
    assert second is not None, f"no RTSP reader with rising counters on {booth.mediamtx_path} (first look: {first})"
    assert second["userAgent"].startswith("Lavf")  # ffmpeg's libavformat
    assert second["transport"] == "TCP"  # contract 7.1: -rtsp_transport tcp
    assert second["bytesSent"] > first["bytesSent"] > 0
    assert {"type": "rtspSession", "id": second["id"]} in path_item["readers"]
    assert stopped == {"status": "stopped"}
    assert remaining == [], f"the worker's RTSP session outlived transcription/stop: {remaining}"


def test_worker_started_before_the_interpreter_captions_the_speech_it_reads_over_rtsp(voxbento, tmp_path):
    """The worker connects first (the path is configured by VoxBento's listener page, contract 12.2) and reads the
    relay's offline track (silence); the interpreter then publishes speech on the same path, and the same ffmpeg
    session carries it to the recogniser: captions hold the spoken words."""
    stack, no_model = voxbento
    if no_model:
        pytest.skip(f"{no_model}; the RTSP leg is covered by test_worker_reads_the_booth_over_rtsp_from_the_relay")
    if ESPEAK is None:
        pytest.skip("espeak-ng is not installed (Debian package espeak-ng): no speech to publish")
    booth, join_code = _provision(stack, "rtspcap")
    listener = PortalHttp.for_url(stack.portal_url)
    ListenerClient(listener).open_page(booth.event_slug, join_code)
    api = BoothApi(PortalHttp.for_url(stack.portal_url))
    captions = CaptionSocket.for_portal(listener, booth.booth_id)
    captions.connect()

    def heard() -> set[str]:
        text = " ".join(c.text for c in captions.captions()).lower()
        return {word for word in KEYWORDS if word in text}

    async def scenario():
        async with httpx.AsyncClient() as http:
            conf = (await http.get(f"{stack.media_api_url}/v3/config/paths/get/{booth.mediamtx_path}")).json()
            payloads = await asyncio.to_thread(_speech_payloads, tmp_path)
            started = await asyncio.to_thread(api.transcription_start, booth.event_slug, booth.room_id, LANG)
            before = None
            deadline = time.monotonic() + 60
            while before is None and time.monotonic() < deadline:
                await asyncio.sleep(0.5)
                reading = [s for s in await _sessions_on(http, stack, booth.mediamtx_path)
                           if s["state"] == "read" and s["outboundRTPPackets"] > 50]
                before = reading[0] if reading else None
            if before is None:
                return conf, started, None, None, None
            publisher = await LoopPublisher(http, stack.media_url, booth.mediamtx_path, payloads).start()
            try:
                published_s = time.monotonic()
                first_caption_s = None
                deadline = published_s + 120
                while time.monotonic() < deadline and len(heard()) < len(KEYWORDS) // 2:
                    if first_caption_s is None and any(c.text.strip() for c in captions.captions()):
                        first_caption_s = time.monotonic() - published_s
                    await asyncio.sleep(0.5)
                after = await _sessions_on(http, stack, booth.mediamtx_path)
                await asyncio.to_thread(api.transcription_stop, booth.event_slug, booth.room_id, LANG)
            finally:
                await publisher.close()
            return conf, started, before, after, first_caption_s

    try:
        conf, started, before, after, first_caption_s = asyncio.run(scenario())
    finally:
        captions.close()
    texts = [c.text for c in captions.captions() if c.text.strip()]
    assert conf["alwaysAvailable"] is True  # VoxBento's listener page configured the booth's path
    assert started["status"] == "started" and started["model"] == "tiny"
    assert before is not None, "VoxBento's worker never read the booth's offline track over RTSP"
    assert before["userAgent"].startswith("Lavf") and before["transport"] == "TCP"
    # Half the keywords, over repeated sentences: recognition of audio read over RTSP, not chance.
    assert len(heard()) >= len(KEYWORDS) // 2, f"captions {texts!r} carry only {sorted(heard())}"
    # The ffmpeg that connected before the interpreter is the one that carried the speech (no reconnect needed).
    assert [s["id"] for s in after] == [before["id"]], after
    print(f"first caption {first_caption_s:.1f} s after the interpreter published; heard {sorted(heard())}")
