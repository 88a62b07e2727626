"""The reference relay's HTTP surfaces as VoxBento and browsers use them (contract 12.2, 12.3), on a real process.

Control API: add / already exists / patch / 404, list shape, faults endpoint. WHIP/WHEP: CORS preflight and
exposed headers, %2F decoding, Content-Type 400, 201 + Location/ETag, DELETE 200/404, PATCH as MediaMTX,
405 on GET. Restart loses path configuration.
"""

from __future__ import annotations

import asyncio
import re

import httpx
from aiortc import RTCPeerConnection

from harness.rtc import aiortc_patches
from harness.refstack.stack import Stack, StackConfig
from harness.refstack.media.loopback_peers import LoopPublisher, RecordingSubscriber

VOXBENTO_PATH_BODY = {"alwaysAvailable": True, "alwaysAvailableTracks": [{"codec": "Opus"}], "overridePublisher": True}


# Flags for the shared `relay` fixture (tests/conftest.py).
RELAY_ARGS = ['--handshake-timeout-s', '3']


async def _recvonly_offer() -> tuple[RTCPeerConnection, str]:
    pc = RTCPeerConnection(aiortc_patches.ice_configuration())
    pc.addTransceiver("audio", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    return pc, pc.localDescription.sdp


def _offer() -> str:
    async def make():
        pc, sdp = await _recvonly_offer()
        await pc.close()
        return sdp

    return asyncio.run(make())


# --- control API (contract 12.2) ---

def test_add_then_already_exists_then_patch(relay):
    api = relay.media_api_url
    add = httpx.post(f"{api}/v3/config/paths/add/ev/1/es", json=VOXBENTO_PATH_BODY)
    assert add.status_code == 200
    again = httpx.post(f"{api}/v3/config/paths/add/ev/1/es", json=VOXBENTO_PATH_BODY)
    assert again.status_code == 400 and "already exists" in again.text
    patch = httpx.patch(f"{api}/v3/config/paths/patch/ev/1/es", json={"overridePublisher": False})
    assert patch.status_code == 200
    conf = httpx.get(f"{api}/v3/config/paths/get/ev/1/es").json()
    assert conf["alwaysAvailable"] is True and conf["overridePublisher"] is False
    assert conf["alwaysAvailableTracks"] == [{"codec": "Opus"}]
    assert httpx.patch(f"{api}/v3/config/paths/patch/ev/9/xx", json={}).status_code == 404


def test_percent_encoded_path_names_the_same_path(relay):
    api = relay.media_api_url
    assert httpx.post(f"{api}/v3/config/paths/add/enc%2F1%2Fes", json={}).status_code == 200
    assert "already exists" in httpx.post(f"{api}/v3/config/paths/add/enc/1/es", json={}).text


def test_bad_path_config_is_400_and_changes_nothing(relay):
    api = relay.media_api_url
    assert httpx.post(f"{api}/v3/config/paths/add/bad/1/es", content=b"{nope").status_code == 400
    assert httpx.post(f"{api}/v3/config/paths/add/bad/1/es", json={"alwaysAvailable": "yes"}).status_code == 400
    assert httpx.get(f"{api}/v3/config/paths/get/bad/1/es").status_code == 404


def test_paths_list_shape(relay):
    api = relay.media_api_url
    httpx.post(f"{api}/v3/config/paths/add/list/1/es", json=VOXBENTO_PATH_BODY)
    body = httpx.get(f"{api}/v3/paths/list").json()
    assert body["itemCount"] == len(body["items"]) >= 1 and body["pageCount"] >= 1
    (item,) = [i for i in body["items"] if i["name"] == "list/1/es"]
    assert item["confName"] == "list/1/es"
    assert item["ready"] is False and item["source"] is None and item["readers"] == []
    assert item["available"] is True and item["tracks"] == ["Opus"]  # alwaysAvailable offline stream
    paged = httpx.get(f"{api}/v3/paths/list", params={"itemsPerPage": 1, "page": 0}).json()
    assert len(paged["items"]) == 1 and paged["pageCount"] == body["itemCount"]


def test_faults_endpoint_validates_and_applies(relay):
    api = relay.media_api_url
    assert httpx.get(f"{api}/v3/refstack/faults").json() == {"delay_ms": 0.0, "loss_pct": 0.0, "stall": False, "seed": None}
    new = httpx.post(f"{api}/v3/refstack/faults", json={"delay_ms": 200, "seed": 1}).json()
    assert new["delay_ms"] == 200.0 and new["seed"] == 1 and new["loss_pct"] == 0.0
    assert httpx.post(f"{api}/v3/refstack/faults", json={"loss_pct": 150}).status_code == 400
    assert httpx.post(f"{api}/v3/refstack/faults", json={"jitter_ms": 5}).status_code == 400
    assert httpx.post(f"{api}/v3/refstack/faults", json={"stall": "yes"}).status_code == 400
    reset = httpx.post(f"{api}/v3/refstack/faults", json={"delay_ms": 0, "seed": None}).json()
    assert reset == {"delay_ms": 0.0, "loss_pct": 0.0, "stall": False, "seed": None}


# --- WHIP/WHEP HTTP (contract 12.3) ---

def test_cors_preflight(relay):
    response = httpx.options(
        f"{relay.media_http_url}/ev%2F1%2Fes/whip",
        headers={"Origin": "http://portal.example", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"},
    )
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["Access-Control-Allow-Methods"] == "OPTIONS, GET, POST, PATCH, DELETE"
    assert response.headers["Access-Control-Allow-Headers"] == "Authorization, Content-Type, If-Match"


def test_wrong_content_type_is_400(relay):
    response = httpx.post(f"{relay.media_http_url}/ev/1/es/whip", content=_offer(), headers={"Content-Type": "text/plain"})
    assert response.status_code == 400 and response.json() == {"error": "invalid Content-Type"}
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_get_on_endpoint_is_405(relay):
    assert httpx.get(f"{relay.media_http_url}/ev/1/es/whip").status_code == 405


def test_whep_unconfigured_path_without_publisher_is_404(relay):
    response = httpx.post(f"{relay.media_http_url}/ghost/1/es/whep", content=_offer(), headers={"Content-Type": "application/sdp"})
    assert response.status_code == 404 and "no stream is available" in response.json()["error"]


def test_offer_without_opus_audio_is_rejected(relay):
    async def scenario():
        pc = RTCPeerConnection(aiortc_patches.ice_configuration())
        pc.addTransceiver("video", direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        sdp = pc.localDescription.sdp
        await pc.close()
        return sdp

    response = httpx.post(f"{relay.media_http_url}/vid/1/es/whip", content=asyncio.run(scenario()), headers={"Content-Type": "application/sdp"})
    assert response.status_code == 406


def test_whep_201_headers_percent_path_patch_and_delete(relay):
    httpx.post(f"{relay.media_api_url}/v3/config/paths/add/hdr/1/es", json=VOXBENTO_PATH_BODY)

    async def scenario():
        pc, sdp = await _recvonly_offer()
        async with httpx.AsyncClient() as http:
            # The interpreter JS encodes the path as one segment (contract 12.3).
            created = await http.post(f"{relay.media_http_url}/hdr%2F1%2Fes/whep", content=sdp, headers={"Content-Type": "application/sdp"})
            listing = (await http.get(f"{relay.media_api_url}/v3/paths/get/hdr/1/es")).json()
            location = created.headers.get("Location", "")
            session_url = f"{relay.media_http_url}{location}"
            bad_patch = await http.patch(session_url, content=b"a=end-of-candidates", headers={"Content-Type": "application/sdp"})
            trickle = await http.patch(session_url, content=b"a=ice-ufrag:x\r\na=end-of-candidates\r\n",
                                       headers={"Content-Type": "application/trickle-ice-sdpfrag"})
            unknown_patch = await http.patch(re.sub(r"[0-9a-f-]{36}$", "00000000-0000-0000-0000-000000000000", session_url),
                                             content=b"", headers={"Content-Type": "application/trickle-ice-sdpfrag"})
            deleted = await http.delete(session_url)
            deleted_again = await http.delete(session_url)
            malformed = await http.delete(f"{relay.media_http_url}/hdr/1/es/whep/not-a-uuid")
            after = (await http.get(f"{relay.media_api_url}/v3/paths/get/hdr/1/es")).json()
        await pc.close()
        return created, listing, location, bad_patch, trickle, unknown_patch, deleted, deleted_again, malformed, after

    created, listing, location, bad_patch, trickle, unknown_patch, deleted, deleted_again, malformed, after = asyncio.run(scenario())
    assert created.status_code == 201, created.text
    assert created.headers["Content-Type"] == "application/sdp" and created.text.startswith("v=0")
    assert re.fullmatch(r"/hdr/1/es/whep/[0-9a-f-]{36}", location)  # relative, decoded path
    assert created.headers["ETag"] and created.headers["ID"]
    assert created.headers["Access-Control-Expose-Headers"] == "ETag, ID, Accept-Patch, Link, Location"
    assert created.headers["Access-Control-Allow-Origin"] == "*"
    # ICE candidates in the answer are loopback only (no traffic may leave the machine).
    candidates = [line for line in created.text.splitlines() if line.startswith("a=candidate:")]
    assert candidates and all(" 127.0.0.1 " in c for c in candidates)
    assert len(listing["readers"]) == 1 and listing["readers"][0]["id"] == created.headers["ID"]
    assert bad_patch.status_code == 400 and trickle.status_code == 204 and unknown_patch.status_code == 404
    assert deleted.status_code == 200 and deleted_again.status_code == 404 and malformed.status_code == 400
    assert after["readers"] == []


def test_override_disabled_refuses_second_publisher(relay):
    from harness.rtc.audio import load_loop

    payloads = load_loop().payloads
    httpx.post(f"{relay.media_api_url}/v3/config/paths/add/solo/1/es", json={"overridePublisher": False})
    offer = _offer()  # the refusal happens before the offer is looked at

    async def scenario():
        async with httpx.AsyncClient() as http:
            first = await LoopPublisher(http, relay.media_http_url, "solo/1/es", payloads).start()
            await asyncio.sleep(0.2)
            response = await http.post(f"{relay.media_http_url}/solo/1/es/whip", content=offer, headers={"Content-Type": "application/sdp"})
            state = first.pc.connectionState
            await first.close()
            return response, state

    response, state = asyncio.run(scenario())
    assert response.status_code == 400 and "already publishing" in response.json()["error"]
    assert state == "connected"


def test_restart_loses_path_configuration(tmp_path):
    stack = Stack(StackConfig.ephemeral(with_media=True, data_dir=tmp_path / "stack"))
    stack.start_media()
    try:
        api = stack.media_api_url
        assert httpx.post(f"{api}/v3/config/paths/add/rs/1/es", json=VOXBENTO_PATH_BODY).status_code == 200
        assert httpx.post(f"{api}/v3/refstack/faults", json={"delay_ms": 50}).status_code == 200
        stack.restart_media()
        assert httpx.get(f"{api}/v3/config/paths/get/rs/1/es").status_code == 404
        assert httpx.get(f"{api}/v3/paths/list").json()["itemCount"] == 0
        # Faults set at run time are lost too; the start flags would be re-applied.
        assert httpx.get(f"{api}/v3/refstack/faults").json()["delay_ms"] == 0.0
        # VoxBento's add -> 200 works again after the restart (contract 12.2 / 14.20).
        assert httpx.post(f"{api}/v3/config/paths/add/rs/1/es", json=VOXBENTO_PATH_BODY).status_code == 200
    finally:
        stack.stop()



def _mapped_files(pid: int) -> set[str]:
    import psutil

    return {m.path for m in psutil.Process(pid).memory_maps()}


def test_idle_relay_loads_no_aiortc_until_its_first_session(tmp_path):
    # An idle relay serves its control API without aiortc/PyAV/libsrtp mapped (idle RSS); the first WHEP
    # session imports them and still gets its 201.
    stack = Stack(StackConfig.ephemeral(with_media=True, data_dir=tmp_path / "stack"))
    stack.start_media()
    try:
        api, pid = stack.media_api_url, stack.media_proc.pid
        assert httpx.post(f"{api}/v3/config/paths/add/lazy/1/es", json=VOXBENTO_PATH_BODY).status_code == 200
        assert httpx.get(f"{api}/v3/paths/list").status_code == 200
        assert not any("pylibsrtp" in path or "libavcodec" in path for path in _mapped_files(pid))
        response = httpx.post(f"{stack.media_http_url}/lazy/1/es/whep", content=_offer(),
                              headers={"Content-Type": "application/sdp"}, timeout=30)
        assert response.status_code == 201, response.text
        assert any("pylibsrtp" in path for path in _mapped_files(pid))
    finally:
        stack.stop()

def test_abandoned_reader_is_closed_and_unlisted(relay):
    httpx.post(f"{relay.media_api_url}/v3/config/paths/add/abandon/1/es", json=VOXBENTO_PATH_BODY)
    offer = _offer()  # its peer is closed right away, so it never connects

    async def scenario():
        async with httpx.AsyncClient() as http:
            # The relay must not keep a reader whose peer never connects.
            response = await http.post(f"{relay.media_http_url}/abandon/1/es/whep", content=offer, headers={"Content-Type": "application/sdp"})
            before = (await http.get(f"{relay.media_api_url}/v3/paths/get/abandon/1/es")).json()
            for _ in range(80):
                after = (await http.get(f"{relay.media_api_url}/v3/paths/get/abandon/1/es")).json()
                if not after["readers"]:
                    break
                await asyncio.sleep(0.1)
            return response, before, after

    response, before, after = asyncio.run(scenario())
    assert response.status_code == 201
    assert len(before["readers"]) == 1 and after["readers"] == []


def test_recording_subscriber_sees_publisher_listed(relay):
    from harness.rtc.audio import load_loop

    async def scenario():
        async with httpx.AsyncClient() as http:
            publisher = await LoopPublisher(http, relay.media_http_url, "seen/1/es", load_loop().payloads).start()
            subscriber = await RecordingSubscriber(http, relay.media_http_url, "seen/1/es").start()
            await subscriber.wait_packets(10)
            item = (await http.get(f"{relay.media_api_url}/v3/paths/get/seen/1/es")).json()
            await subscriber.close()
            await publisher.close()
            await asyncio.sleep(0.3)
            gone = await http.get(f"{relay.media_api_url}/v3/paths/get/seen/1/es")
            return item, gone

    item, gone = asyncio.run(scenario())
    assert item["confName"] == "all_others" and item["ready"] and item["online"]
    assert item["source"]["type"] == "webRTCSession" and item["tracks"] == ["Opus"]
    assert item["bytesReceived"] > 0 and item["bytesSent"] > 0 and len(item["readers"]) == 1
    assert gone.status_code == 404  # an auto-created path disappears when idle, as in MediaMTX
