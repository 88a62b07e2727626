"""The relay's side of the shared aiortc/aioice patch module (role FORWARD): loopback ICE, the publisher tap and
the reader send path between two real peers, plus the relay's RTP rewriter and fault-config validation."""

from __future__ import annotations

import asyncio

import aioice.ice
import pytest
from aiortc import RTCPeerConnection

from harness.rtc import aiortc_patches
from harness.refstack.media.forwarding import RtpRewriter, SourcePacket
from harness.refstack.media.loopback_peers import wait_connected


def test_relay_role_installs_after_the_engine_role_and_the_check_still_passes():
    # One process, both roles (as this pytest process): the check reads the originals, not the patched class
    # attributes, so installing the engine's patches first does not make the relay's check fail.
    aiortc_patches.install(aiortc_patches.Role.TAP)
    aiortc_patches.install(aiortc_patches.Role.FORWARD)
    aiortc_patches.check_pinned_internals()
    assert {aiortc_patches.Role.TAP, aiortc_patches.Role.FORWARD} <= aiortc_patches.installed_roles()


def test_fingerprint_detects_a_changed_function():
    def original():
        return 1

    def changed():
        return 2

    assert aiortc_patches.source_fingerprint(original) != aiortc_patches.source_fingerprint(changed)


def test_loopback_restriction_offers_only_127_0_0_1():
    aiortc_patches.install(aiortc_patches.Role.FORWARD)
    assert aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=True) == ["127.0.0.1"]

    async def gather() -> str:
        pc = RTCPeerConnection(aiortc_patches.ice_configuration())
        pc.addTransceiver("audio", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        sdp = pc.localDescription.sdp
        await pc.close()
        return sdp

    candidates = [line for line in asyncio.run(gather()).splitlines() if line.startswith("a=candidate:")]
    assert candidates and all(" 127.0.0.1 " in c for c in candidates)
    # media-design 6.1: no STUN server, so no server-reflexive candidates either.
    assert not any("typ srflx" in c for c in candidates)


def test_tap_sender_path_and_sr_counters_between_two_real_peers():
    """A sender fed through send_rtp_now reaches a tapped receiver; getStats reflects record_sent_rtp."""

    async def scenario():
        aiortc_patches.install(aiortc_patches.Role.FORWARD)
        from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

        class NeverTrack(MediaStreamTrack):
            kind = "audio"

            async def recv(self):
                await asyncio.Event().wait()
                raise MediaStreamError

        sender_pc = RTCPeerConnection(aiortc_patches.ice_configuration())
        receiver_pc = RTCPeerConnection(aiortc_patches.ice_configuration())
        sender = sender_pc.addTrack(NeverTrack())
        params = []
        aiortc_patches.capture_send_parameters(sender, params.append)
        received = []
        transceiver = receiver_pc.addTransceiver("audio", direction="recvonly")

        aiortc_patches.attach_tap(transceiver.receiver, received.append, passthrough=False)
        await receiver_pc.setLocalDescription(await receiver_pc.createOffer())
        await sender_pc.setRemoteDescription(receiver_pc.localDescription)
        await sender_pc.setLocalDescription(await sender_pc.createAnswer())
        await receiver_pc.setRemoteDescription(sender_pc.localDescription)
        await wait_connected(sender_pc)
        await wait_connected(receiver_pc)
        for _ in range(50):
            if params and aiortc_patches.sender_transport_connected(sender):
                break
            await asyncio.sleep(0.02)
        (parameters,) = params
        codec = parameters.codecs[0]
        build = aiortc_patches.rtp_packet_builder(
            payload_type=codec.payloadType, ssrc=aiortc_patches.sender_ssrc(sender), mid=parameters.muxId,
            ext_map=aiortc_patches.header_extensions_map(parameters),
        )
        payloads = [bytes([i]) * 40 for i in range(5)]
        for i, payload in enumerate(payloads):
            aiortc_patches.send_rtp_now(sender, build(100 + i, 960 * i, 0, payload))
            aiortc_patches.record_sent_rtp(sender, 960 * i, len(payload))
        for _ in range(50):
            if len(received) == len(payloads):
                break
            await asyncio.sleep(0.02)
        stats = await sender.getStats()
        outbound = [s for s in stats.values() if s.type == "outbound-rtp"]
        decoder_thread = aiortc_patches.receiver_has_decoder_thread(transceiver.receiver)
        await sender_pc.close()
        await receiver_pc.close()
        return codec, payloads, received, outbound, decoder_thread

    codec, payloads, received, outbound, decoder_thread = asyncio.run(scenario())
    assert not decoder_thread  # the relay's publisher receivers never decode
    assert codec.mimeType.lower() == "audio/opus"
    assert [p.payload for p in received] == payloads
    assert [p.sequence_number for p in received] == [100, 101, 102, 103, 104]
    assert outbound[0].packetsSent == 5 and outbound[0].bytesSent == 200


def test_packet_builder_matches_aiortc_serialize():
    from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpHeaderExtensionParameters, RTCRtpSendParameters
    from aiortc.rtp import RtpPacket

    parameters = RTCRtpSendParameters(
        codecs=[RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2, payloadType=111)],
        headerExtensions=[RTCRtpHeaderExtensionParameters(id=4, uri="urn:ietf:params:rtp-hdrext:sdes:mid")],
        muxId="0",
    )
    ext_map = aiortc_patches.header_extensions_map(parameters)
    build = aiortc_patches.rtp_packet_builder(payload_type=111, ssrc=0xDEADBEEF, mid="0", ext_map=ext_map)
    for seq, ts, marker, payload in [(0, 0, 0, b"\x01" * 3), (65535, (1 << 32) - 1, 1, bytes(range(200)))]:
        reference = RtpPacket(payload_type=111, marker=marker, sequence_number=seq, timestamp=ts, ssrc=0xDEADBEEF, payload=payload)
        reference.extensions.mid = "0"
        assert build(seq, ts, marker, payload) == reference.serialize(ext_map)


def test_ntp_time_matches_aiortc_clock():
    from aiortc import clock

    before = clock.current_ntp_time()
    ours = aiortc_patches.ntp_time_now()
    after = clock.current_ntp_time()
    assert before - (1 << 22) <= ours <= after + (1 << 22)  # within 1 ms (2**32 units per second)


def test_rewriter_keeps_gaps_within_a_publisher_and_is_continuous_across_publishers():
    import random

    rewriter = RtpRewriter(random.Random(1))
    seqs = []
    for i, in_seq in enumerate([10, 11, 13]):  # 12 lost before the relay
        seq, ts = rewriter.map(SourcePacket(b"x", in_seq, 1000 + 960 * (in_seq - 10), 0, generation=1), now_s=i * 0.02)
        rewriter.sent(seq, ts, now_s=i * 0.02)
        seqs.append((seq, ts))
    assert (seqs[1][0] - seqs[0][0]) % 65536 == 1 and (seqs[2][0] - seqs[1][0]) % 65536 == 2
    # A new publisher (generation 2) with unrelated numbering, 0.5 s after the last packet.
    seq, ts = rewriter.map(SourcePacket(b"y", 50_000, 7, 0, generation=2), now_s=0.04 + 0.5)
    assert (seq - seqs[2][0]) % 65536 == 1
    assert (ts - seqs[2][1]) % (1 << 32) == 24_000  # 0.5 s at 48 kHz


@pytest.mark.parametrize("bad", [{"delay_ms": -1}, {"loss_pct": 101}])
def test_fault_config_rejects_out_of_range(bad):
    from harness.refstack.media.faults import FaultConfig, FaultConfigError

    with pytest.raises(FaultConfigError):
        FaultConfig().updated(bad)
