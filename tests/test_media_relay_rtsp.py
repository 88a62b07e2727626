"""The relay's RTSP surface (rtsp_server.py) on a real relay process, read by a real ffmpeg and a raw RTSP client.

- ffmpeg decodes 10 s of a booth's audio over RTSP/TCP with VoxBento's worker arguments (contract 7.1) while a
  real aiortc WHIP publisher publishes: right duration and format, audible, no error on stderr; the reader is
  listed in the control API as MediaMTX lists it while it reads, and unlisted after ffmpeg's TEARDOWN.
- ffmpeg with its default transport: the relay refuses UDP with 461 and ffmpeg falls back to TCP.
- A raw client walks OPTIONS/DESCRIBE/SETUP/PLAY/GET_PARAMETER/TEARDOWN and checks the wire: SDP, Transport,
  Session, RTP-Info, interleaved RTP whose payloads are the publisher's bytes, unchanged and in order.
- An alwaysAvailable path streams MediaMTX's offline track (Opus DTX) to RTSP readers while it has no publisher;
  ffmpeg decodes it as silence, and the reader's RTP stream stays continuous across publisher changes.
- Refusals: 404 (no publisher), 461 (UDP), 454 (no/unknown session), 400 (no CSeq, bad track), 501
  (publishing); a reader is closed when its path's publisher leaves; kick through the API.
"""

from __future__ import annotations

import asyncio
import math
import re
import shutil
import struct
import subprocess
import wave

import httpx
import numpy as np
import pytest

from harness.rtc.audio import load_loop, payload_hash
from harness.refstack.media.forwarding import OPUS_DTX_FRAME
from harness.refstack.media.loopback_peers import LoopPublisher, RtspClient

FFMPEG = shutil.which("ffmpeg")
needs_ffmpeg = pytest.mark.skipif(FFMPEG is None, reason="ffmpeg is not installed (Debian package ffmpeg)")

VOXBENTO_PATH_BODY = {"alwaysAvailable": True, "alwaysAvailableTracks": [{"codec": "Opus"}], "overridePublisher": True}
# Contract 7.1: how VoxBento's worker decodes a booth (local provider: 16 kHz mono s16le).
VOXBENTO_DECODE_ARGS = ["-vn", "-acodec", "pcm_s16le", "-ar", "16000", "-ac", "1"]
DECODE_S = 10.0


def _rms_dbfs(samples: np.ndarray) -> float:
    rms = math.sqrt(float(np.mean((samples.astype(np.float64) / 32768.0) ** 2)))
    return 20 * math.log10(rms) if rms > 0 else -math.inf


async def _api(http: httpx.AsyncClient, relay, route: str):
    return (await http.get(f"{relay.media_api_url}{route}")).json()


# --- a real ffmpeg ---

@needs_ffmpeg
def test_ffmpeg_decodes_10_s_of_a_booth_over_rtsp(relay, tmp_path):
    path = "ff/1/en"
    httpx.post(f"{relay.media_api_url}/v3/config/paths/add/{path}", json=VOXBENTO_PATH_BODY)

    async def scenario():
        async with httpx.AsyncClient() as http:
            publisher = await LoopPublisher(http, relay.media_http_url, path, load_loop().payloads).start()
            try:
                proc = await asyncio.create_subprocess_exec(
                    FFMPEG, "-nostdin", "-hide_banner", "-loglevel", "error",
                    "-rtsp_transport", "tcp", "-i", f"{relay.media_rtsp_url}/{path}",
                    *VOXBENTO_DECODE_ARGS, "-t", str(DECODE_S), "-f", "wav", "booth.wav",
                    cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                )
                # While ffmpeg reads: the session as MediaMTX lists it, and as a reader of the path.
                reading, listing = None, None
                for _ in range(100):
                    await asyncio.sleep(0.1)
                    items = (await _api(http, relay, "/v3/rtspsessions/list"))["items"]
                    if items and items[0]["state"] == "read" and items[0]["outboundRTPPackets"] > 50:
                        reading = items[0]
                        listing = await _api(http, relay, f"/v3/paths/get/{path}")
                        break
                _, stderr = await asyncio.wait_for(proc.communicate(), 60)
                await asyncio.sleep(0.2)
                after = await _api(http, relay, "/v3/rtspsessions/list")
                after_path = await _api(http, relay, f"/v3/paths/get/{path}")
                sent = publisher.track.sent_count
            finally:
                await publisher.close()
            return proc.returncode, stderr.decode(errors="replace"), reading, listing, after, after_path, sent

    returncode, stderr, reading, listing, after, after_path, sent = asyncio.run(scenario())
    assert returncode == 0 and stderr.strip() == "", stderr
    with wave.open(str(tmp_path / "booth.wav")) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (16000, 1, 2)
        duration_s = wav.getnframes() / wav.getframerate()
        samples = np.frombuffer(wav.readframes(wav.getnframes()), np.int16)
    # One 20 ms Opus frame of tolerance: -t cuts at a packet boundary.
    assert abs(duration_s - DECODE_S) <= 0.02, duration_s
    # The loop is speech-like audio at -20 dBFS with pauses: decoded, it is neither silence nor clipping.
    assert -35.0 < _rms_dbfs(samples) < -10.0
    assert sent >= DECODE_S / 0.02  # the publisher really sent (at least) the 10 s that were decoded

    assert reading is not None, "the reader never appeared in /v3/rtspsessions/list reading"
    assert reading["path"] == path and reading["transport"] == "TCP" and reading["profile"] == "AVP"
    assert reading["userAgent"].startswith("Lavf") and reading["remoteAddr"].startswith("127.0.0.1:")
    assert reading["bytesSent"] == reading["outboundBytes"] > 0 and len(reading["conns"]) == 1
    assert {"type": "rtspSession", "id": reading["id"]} in listing["readers"]
    assert listing["source"]["type"] == "webRTCSession" and listing["bytesSent"] > 0
    # ffmpeg sends TEARDOWN when -t is reached: the session and the reader entry are gone.
    assert after["items"] == [] and after_path["readers"] == []


@needs_ffmpeg
def test_ffmpeg_default_transport_falls_back_from_udp_to_tcp(relay, tmp_path):
    path = "ffudp/1/en"

    async def scenario():
        async with httpx.AsyncClient() as http:
            publisher = await LoopPublisher(http, relay.media_http_url, path, load_loop().payloads).start()
            try:
                return await asyncio.to_thread(
                    subprocess.run,
                    [FFMPEG, "-nostdin", "-hide_banner", "-loglevel", "error", "-i", f"{relay.media_rtsp_url}/{path}",
                     "-t", "2", "-f", "wav", "out.wav"],
                    cwd=tmp_path, capture_output=True, text=True, timeout=60,
                )
            finally:
                await publisher.close()

    result = asyncio.run(scenario())
    assert result.returncode == 0, result.stderr
    with wave.open(str(tmp_path / "out.wav")) as wav:
        # The SDP says opus/48000/2 (RFC 7587): decoded at 48 kHz, two channels.
        assert (wav.getframerate(), wav.getnchannels()) == (48000, 2)
        assert abs(wav.getnframes() / 48000 - 2.0) <= 0.02


# --- the wire, with a raw client ---

def test_rtsp_exchange_and_unchanged_payloads(relay):
    path = "raw/1/en"
    base = f"{relay.media_rtsp_url}/{path}"

    async def scenario():
        async with httpx.AsyncClient() as http:
            publisher = await LoopPublisher(http, relay.media_http_url, path, load_loop().payloads).start()
            client = await RtspClient.connect(relay.media_rtsp_url)
            try:
                options = await client.request("OPTIONS", base)
                describe = await client.request("DESCRIBE", base, {"Accept": "application/sdp"})
                setup = await client.request("SETUP", f"{base}/trackID=0",
                                             {"Transport": "RTP/AVP/TCP;unicast;interleaved=4-5"})
                session = setup[1]["session"].split(";")[0]
                ready = await _api(http, relay, "/v3/rtspsessions/list")
                play = await client.request("PLAY", base, {"Session": session})
                await client.read_frames(100)
                keepalive = await client.request("GET_PARAMETER", base, {"Session": session})
                teardown = await client.request("TEARDOWN", base, {"Session": session})
                await asyncio.sleep(0.2)
                gone = await _api(http, relay, "/v3/rtspsessions/list")
                # The connection outlives its session (RFC 2326: TEARDOWN ends the session, not the connection).
                options_after = await client.request("OPTIONS", base)
                sent_hashes = set(publisher.track.sent_at_s)
            finally:
                await client.close()
                await publisher.close()
            return options, describe, setup, ready, play, keepalive, teardown, gone, options_after, client.frames, sent_hashes

    options, describe, setup, ready, play, keepalive, teardown, gone, options_after, frames, sent_hashes = asyncio.run(scenario())
    status, headers, _ = options
    assert status == 200 and headers["cseq"] == "1"
    assert set(headers["public"].split(", ")) >= {"DESCRIBE", "SETUP", "PLAY", "GET_PARAMETER", "TEARDOWN"}

    status, headers, sdp = describe
    assert status == 200 and headers["content-type"] == "application/sdp" and headers["content-base"] == base + "/"
    media = sdp.split("m=")[1]
    assert media.startswith("audio 0 RTP/AVP 96")
    assert "a=rtpmap:96 opus/48000/2" in media and "a=control:trackID=0" in media

    status, headers, _ = setup
    assert status == 200
    transport = headers["transport"]
    assert transport.startswith("RTP/AVP/TCP;unicast;interleaved=4-5;ssrc=")
    ssrc = int(transport.rsplit("ssrc=", 1)[1], 16)
    assert re.fullmatch(r"[0-9a-f]{16};timeout=60", headers["session"])
    session = headers["session"].split(";")[0]
    (item,) = ready["items"]
    assert item["state"] == "idle" and item["path"] == path and item["outboundRTPPackets"] == 0

    status, headers, _ = play
    assert status == 200 and headers["session"].startswith(session)
    info = dict(p.split("=", 1) for p in headers["rtp-info"].split(";"))
    assert info["url"] == f"{base}/trackID=0"

    # Interleaved RTP on the negotiated channel; RFC 3550 headers; payloads byte-identical to the publisher's.
    rtp = [data for channel, data in frames if channel == 4]
    assert len(rtp) >= 100 and all(channel in (4, 5) for channel, _ in frames)
    first_seq, first_ts = int(info["seq"]), int(info["rtptime"])
    for i, data in enumerate(rtp[:100]):
        v_p_x_cc, m_pt, seq, ts, packet_ssrc = struct.unpack("!BBHII", data[:12])
        assert v_p_x_cc == 0x80 and m_pt & 0x7F == 96 and packet_ssrc == ssrc
        assert seq == (first_seq + i) % 65536 and ts == (first_ts + 960 * i) % 2**32
        assert payload_hash(data[12:]) in sent_hashes

    assert keepalive[0] == 200 and keepalive[1]["session"].startswith(session)
    assert teardown[0] == 200 and "session" not in teardown[1]
    assert gone["items"] == []
    assert options_after[0] == 200


def test_describe_and_setup_of_a_path_without_publisher_are_404(relay):
    async def scenario():
        client = await RtspClient.connect(relay.media_rtsp_url)
        try:
            describe = await client.request("DESCRIBE", f"{relay.media_rtsp_url}/nobody/1/en")
            setup = await client.request("SETUP", f"{relay.media_rtsp_url}/nobody/1/en/trackID=0",
                                         {"Transport": "RTP/AVP/TCP;unicast;interleaved=0-1"})
            return describe, setup
        finally:
            await client.close()

    describe, setup = asyncio.run(scenario())
    assert describe[0] == 404 and setup[0] == 404
    assert "session" not in setup[1]
    assert httpx.get(f"{relay.media_api_url}/v3/rtspsessions/list").json()["items"] == []


def test_always_available_path_streams_silence_while_offline_and_stays_continuous(relay):
    # VoxBento configures every booth path alwaysAvailable (contract 12.2): its worker may connect before the
    # interpreter publishes, or stay across a handoff. MediaMTX then streams its offline track (Opus DTX).
    path = "early/1/en"
    httpx.post(f"{relay.media_api_url}/v3/config/paths/add/{path}", json=VOXBENTO_PATH_BODY)
    base = f"{relay.media_rtsp_url}/{path}"

    async def scenario():
        async with httpx.AsyncClient() as http:
            client = await RtspClient.connect(relay.media_rtsp_url)
            try:
                describe = await client.request("DESCRIBE", base)
                setup = await client.request("SETUP", f"{base}/trackID=0", {"Transport": "RTP/AVP/TCP;unicast;interleaved=0-1"})
                play = await client.request("PLAY", base, {"Session": setup[1]["session"].split(";")[0]})
                await client.read_frames(25)
                offline_count = len(client.frames)
                publisher = await LoopPublisher(http, relay.media_http_url, path, load_loop().payloads).start()
                try:
                    await client.read_frames(offline_count + 75)
                finally:
                    await publisher.close()
                online_count = len(client.frames)
                await client.read_frames(online_count + 25)
                return describe, setup, play, client.frames, offline_count, online_count, set(publisher.track.sent_at_s)
            finally:
                await client.close()

    describe, setup, play, frames, offline_count, online_count, sent = asyncio.run(scenario())
    assert describe[0] == setup[0] == play[0] == 200
    info = dict(p.split("=", 1) for p in play[1]["rtp-info"].split(";"))
    rtp = [data for channel, data in frames if channel == 0]
    headers = [struct.unpack("!BBHII", data[:12]) for data in rtp]
    payloads = [data[12:] for data in rtp]
    # Before the publisher: DTX silence every 20 ms of RTP time, starting where RTP-Info said.
    assert all(p == OPUS_DTX_FRAME for p in payloads[:offline_count])
    assert (headers[0][2], headers[0][3]) == (int(info["seq"]), int(info["rtptime"]))
    assert all((b[3] - a[3]) % 2**32 == 960 for a, b in zip(headers[: offline_count - 1], headers[1:offline_count]))
    # Then the publisher's packets, then silence again once it has left: one continuous stream for the reader.
    assert sum(payload_hash(p) in sent for p in payloads[offline_count:online_count]) >= 50
    assert all(p == OPUS_DTX_FRAME for p in payloads[-10:])
    assert len({h[4] for h in headers}) == 1
    assert all((b[2] - a[2]) % 65536 == 1 for a, b in zip(headers, headers[1:]))


@needs_ffmpeg
def test_ffmpeg_decodes_silence_from_an_offline_always_available_path(relay, tmp_path):
    # What VoxBento's worker gets from MediaMTX before the interpreter publishes: audio (silence), not a stall.
    path = "silent/1/en"
    httpx.post(f"{relay.media_api_url}/v3/config/paths/add/{path}", json=VOXBENTO_PATH_BODY)
    result = subprocess.run(
        [FFMPEG, "-nostdin", "-hide_banner", "-loglevel", "error", "-rtsp_transport", "tcp", "-i", f"{relay.media_rtsp_url}/{path}",
         *VOXBENTO_DECODE_ARGS, "-t", "2", "-f", "wav", "silence.wav"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr
    with wave.open(str(tmp_path / "silence.wav")) as wav:
        assert abs(wav.getnframes() / wav.getframerate() - 2.0) <= 0.02
        samples = np.frombuffer(wav.readframes(wav.getnframes()), np.int16)
    assert _rms_dbfs(samples) < -60.0


def test_udp_and_srtp_transports_are_461_and_bad_interleaving_400(relay):
    path = "udp/1/en"

    async def scenario():
        async with httpx.AsyncClient() as http:
            publisher = await LoopPublisher(http, relay.media_http_url, path, load_loop().payloads).start()
            client = await RtspClient.connect(relay.media_rtsp_url)
            url = f"{relay.media_rtsp_url}/{path}/trackID=0"
            try:
                return [
                    await client.request("SETUP", url, {"Transport": "RTP/AVP;unicast;client_port=5000-5001"}),
                    await client.request("SETUP", url, {"Transport": "RTP/AVP;multicast"}),
                    await client.request("SETUP", url, {"Transport": "RTP/SAVP/TCP;unicast;interleaved=0-1"}),
                    await client.request("SETUP", url, {"Transport": "RTP/AVP/TCP;unicast;interleaved=0-2"}),
                    await client.request("SETUP", url, {"Transport": "RTP/AVP/TCP;unicast;mode=record"}),
                    await client.request("SETUP", f"{relay.media_rtsp_url}/{path}/trackID=1",
                                         {"Transport": "RTP/AVP/TCP;unicast;interleaved=0-1"}),
                    await client.request("SETUP", url),
                    # First acceptable entry of a preference list wins (RFC 2326 12.39).
                    await client.request("SETUP", url, {"Transport": "RTP/AVP;unicast;client_port=5000-5001,RTP/AVP/TCP;unicast"}),
                ]
            finally:
                await client.close()
                await publisher.close()

    results = asyncio.run(scenario())
    assert [r[0] for r in results] == [461, 461, 461, 400, 400, 400, 400, 200]
    assert results[-1][1]["transport"].startswith("RTP/AVP/TCP;unicast;interleaved=0-1;")


def test_session_rules_cseq_and_unimplemented_methods(relay):
    path = "rules/1/en"
    base = f"{relay.media_rtsp_url}/{path}"

    async def scenario():
        async with httpx.AsyncClient() as http:
            publisher = await LoopPublisher(http, relay.media_http_url, path, load_loop().payloads).start()
            client = await RtspClient.connect(relay.media_rtsp_url)
            try:
                out = {
                    "play_no_session": await client.request("PLAY", base),
                    "teardown_unknown": await client.request("TEARDOWN", base, {"Session": "0123456789abcdef"}),
                    "no_cseq": await client.request("OPTIONS", base, cseq=False),
                    "announce": await client.request("ANNOUNCE", base, {"Content-Type": "application/sdp"}),
                    "record": await client.request("RECORD", base),
                    "bad_url": await client.request("DESCRIBE", "http://elsewhere/x"),
                }
                setup = await client.request("SETUP", f"{base}/trackID=0", {"Transport": "RTP/AVP/TCP;unicast;interleaved=0-1"})
                session = setup[1]["session"].split(";")[0]
                out["second_setup"] = await client.request("SETUP", f"{base}/trackID=0",
                                                           {"Transport": "RTP/AVP/TCP;unicast;interleaved=2-3", "Session": session})
                out["play_other_path"] = await client.request("PLAY", f"{relay.media_rtsp_url}/other/1/en", {"Session": session})
                out["play_wrong_session"] = await client.request("PLAY", base, {"Session": "ffffffffffffffff"})
                await client.send_raw(b"GARBAGE\r\n\r\n")
                out["garbage"] = await client.response()
                out["closed"] = await client.at_eof()
                await asyncio.sleep(0.2)
                out["sessions_after"] = await _api(http, relay, "/v3/rtspsessions/list")
                return out
            finally:
                await client.close()
                await publisher.close()

    out = asyncio.run(scenario())
    assert out["play_no_session"][0] == 454 and out["teardown_unknown"][0] == 454
    assert out["no_cseq"][0] == 400 and "cseq" not in out["no_cseq"][1]
    assert out["announce"][0] == 501 and out["record"][0] == 501 and out["bad_url"][0] == 400
    assert out["second_setup"][0] == 400 and out["play_other_path"][0] == 400 and out["play_wrong_session"][0] == 454
    # Unparseable input: 400, then the connection is closed and its session ends with it.
    assert out["garbage"][0] == 400 and out["closed"]
    assert out["sessions_after"]["items"] == []


def test_reader_is_closed_when_the_publisher_leaves_and_can_be_kicked(relay):
    async def scenario():
        async with httpx.AsyncClient() as http:
            # A path that is not alwaysAvailable: MediaMTX closes its readers when the stream ends.
            publisher = await LoopPublisher(http, relay.media_http_url, "leave/1/en", load_loop().payloads).start()
            ending = await RtspClient.connect(relay.media_rtsp_url)
            base = f"{relay.media_rtsp_url}/leave/1/en"
            setup = await ending.request("SETUP", f"{base}/trackID=0", {"Transport": "RTP/AVP/TCP;unicast"})
            await ending.request("PLAY", base, {"Session": setup[1]["session"].split(";")[0]})
            await ending.read_frames(5)
            await publisher.close()
            ended = await ending.at_eof()
            await ending.close()

            httpx.post(f"{relay.media_api_url}/v3/config/paths/add/kick/1/en", json=VOXBENTO_PATH_BODY)
            kicked = await RtspClient.connect(relay.media_rtsp_url)
            base = f"{relay.media_rtsp_url}/kick/1/en"
            await kicked.request("SETUP", f"{base}/trackID=0", {"Transport": "RTP/AVP/TCP;unicast"})
            (item,) = (await _api(http, relay, "/v3/rtspsessions/list"))["items"]
            conns = (await _api(http, relay, "/v3/rtspconns/list"))["items"]
            got = await http.get(f"{relay.media_api_url}/v3/rtspsessions/get/{item['id']}")
            kick = await http.post(f"{relay.media_api_url}/v3/rtspsessions/kick/{item['id']}")
            kicked_closed = await kicked.at_eof()
            await kicked.close()
            missing = await http.get(f"{relay.media_api_url}/v3/rtspsessions/get/{item['id']}")
            invalid = await http.get(f"{relay.media_api_url}/v3/rtspsessions/get/not-a-uuid")
            path_after = await _api(http, relay, "/v3/paths/get/kick/1/en")
            return ended, item, conns, got, kick, kicked_closed, missing, invalid, path_after

    ended, item, conns, got, kick, kicked_closed, missing, invalid, path_after = asyncio.run(scenario())
    assert ended
    assert [c["session"] for c in conns] == [item["id"]]
    assert got.status_code == 200 and got.json()["id"] == item["id"]
    assert kick.status_code == 200 and kicked_closed
    assert missing.status_code == 404 and invalid.status_code == 400
    assert path_after["readers"] == []


def test_hostile_input_is_refused_without_harming_the_relay(relay):
    url = f"{relay.media_rtsp_url}/x"

    async def one(data: bytes, pace_s: float = 0.0):
        client = await RtspClient.connect(relay.media_rtsp_url)
        try:
            if pace_s:
                for i in range(len(data)):  # a request trickling in byte by byte
                    await client.send_raw(data[i:i + 1])
                    await asyncio.sleep(pace_s)
            else:
                await client.send_raw(data)
            response = await client.response()
            return response, await client.at_eof(timeout_s=2.0)
        finally:
            await client.close()

    async def scenario():
        return {
            "huge_head": await one(f"OPTIONS {url} RTSP/1.0\r\nCSeq: 1\r\nX-Pad: {'a' * 20000}\r\n\r\n".encode()),
            "huge_body": await one(f"OPTIONS {url} RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 99999999\r\n\r\n".encode()),
            "not_utf8": await one(b"OPTIONS \xff\xfe RTSP/1.0\r\nCSeq: 1\r\n\r\n"),
            "version": await one(f"OPTIONS {url} RTSP/2.0\r\nCSeq: 1\r\n\r\n".encode()),
            # An interleaved frame before any session is read and ignored; the request after it is answered.
            "stray_frame": await one(b"$\x01\x00\x04abcd" + f"OPTIONS {url} RTSP/1.0\r\nCSeq: 1\r\n\r\n".encode()),
            "trickled": await one(f"OPTIONS {url} RTSP/1.0\r\nCSeq: 7\r\n\r\n".encode(), pace_s=0.002),
        }

    out = asyncio.run(scenario())
    for case in ("huge_head", "huge_body", "not_utf8"):
        (status, _, _), closed = out[case]
        assert status == 400 and closed, case  # unparseable: refused, and the connection closed
    (status, headers, _), closed = out["version"]
    assert status == 505 and headers["cseq"] == "1" and not closed
    assert out["stray_frame"][0][0] == 200 and not out["stray_frame"][1]
    assert out["trickled"][0][0] == 200 and out["trickled"][0][1]["cseq"] == "7"
    assert httpx.get(f"{relay.media_api_url}/v3/rtspconns/list").json()["items"] == []


def test_idle_connections_time_out_but_a_playing_reader_owes_no_requests(tmp_path):
    # MediaMTX readTimeout, shortened: a connection that sends nothing is closed; one that plays over TCP is not.
    from harness.refstack.stack import Stack, StackConfig

    stack = Stack(StackConfig.ephemeral(with_media=True, data_dir=tmp_path / "stack", media_args=["--rtsp-read-timeout-s", "1"]))
    stack.start_media()

    async def scenario():
        async with httpx.AsyncClient() as http:
            publisher = await LoopPublisher(http, stack.media_http_url, "idle/1/en", load_loop().payloads).start()
            idle = await RtspClient.connect(stack.media_rtsp_url)
            playing = await RtspClient.connect(stack.media_rtsp_url)
            try:
                base = f"{stack.media_rtsp_url}/idle/1/en"
                setup = await playing.request("SETUP", f"{base}/trackID=0", {"Transport": "RTP/AVP/TCP;unicast"})
                await playing.request("PLAY", base, {"Session": setup[1]["session"].split(";")[0]})
                idle_closed = await idle.at_eof(timeout_s=10.0)
                await asyncio.sleep(2.0)  # twice the read timeout without a request from the reader
                before = len(playing.frames)
                await playing.read_frames(before + 25)
                still_listed = (await _api(http, stack, "/v3/rtspsessions/list"))["items"]
                return idle_closed, still_listed
            finally:
                await idle.close()
                await playing.close()
                await publisher.close()

    try:
        idle_closed, still_listed = asyncio.run(scenario())
    finally:
        stack.stop()
    assert idle_closed
    assert [item["state"] for item in still_listed] == ["read"]


def test_an_always_available_reader_survives_a_publisher_override_with_a_continuous_stream(relay):
    path = "swap/1/en"
    httpx.post(f"{relay.media_api_url}/v3/config/paths/add/{path}", json=VOXBENTO_PATH_BODY)
    loop = load_loop().payloads
    second_payloads = tuple(reversed(loop))  # the same packets in another order: who sent what stays checkable

    async def scenario():
        async with httpx.AsyncClient() as http:
            first = await LoopPublisher(http, relay.media_http_url, path, loop).start()
            client = await RtspClient.connect(relay.media_rtsp_url)
            base = f"{relay.media_rtsp_url}/{path}"
            try:
                setup = await client.request("SETUP", f"{base}/trackID=0", {"Transport": "RTP/AVP/TCP;unicast"})
                await client.request("PLAY", base, {"Session": setup[1]["session"].split(";")[0]})
                await client.read_frames(25)
                # overridePublisher (contract 12.1): a new publisher evicts the first one.
                second = await LoopPublisher(http, relay.media_http_url, path, second_payloads).start()
                await client.read_frames(len(client.frames) + 50)
                stats = await _api(http, relay, "/v3/refstack/stats")
                await second.close()
            finally:
                await client.close()
                await first.close(delete=False)
            return client.frames, set(second.track.sent_at_s), stats

    frames, second_hashes, stats = asyncio.run(scenario())
    rtp = [data for channel, data in frames if channel == 0]
    seqs = [struct.unpack("!H", data[2:4])[0] for data in rtp]
    ssrcs = {struct.unpack("!I", data[8:12])[0] for data in rtp}
    # One stream for the reader: same SSRC, no sequence gap across the change of source (forwarding.py).
    assert len(ssrcs) == 1
    assert all((b - a) % 65536 == 1 for a, b in zip(seqs, seqs[1:]))
    assert payload_hash(rtp[-1][12:]) in second_hashes  # the tail came from the second publisher
    readers = stats["paths"][path]["readers"]
    assert len(readers) == 1 and readers[0]["state"] == "playing" and readers[0]["packetsSent"] >= len(rtp)
