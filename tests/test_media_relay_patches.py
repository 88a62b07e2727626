"""The relay's aiortc/aioice patches: pinned internals unchanged, and each patch does what the relay relies on."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import aioice.ice
import pytest
from aiortc import RTCPeerConnection

from harness.refstack.media import aiortc_patches
from harness.refstack.media.forwarding import RtpRewriter, SourcePacket
from harness.refstack.media.loopback_peers import wait_connected


def test_pinned_internals_are_unchanged():
    # Fails (PinnedInternalsError) as soon as aiortc/aioice differ from the versions the patches were written for.
    # A fresh interpreter, as the relay process is: the media engine's own patches (harness/media), applied
    # in this pytest process by its tests, replace some of the same class attributes.
    result = subprocess.run(
        [sys.executable, "-c", "from harness.refstack.media import aiortc_patches; aiortc_patches.check_pinned_internals()"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_fingerprint_detects_a_changed_function():
    def original():
        return 1

    def changed():
        return 2

    assert aiortc_patches.source_fingerprint(original) != aiortc_patches.source_fingerprint(changed)


def test_loopback_restriction_offers_only_127_0_0_1():
    aiortc_patches.restrict_ice_to_loopback()
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
    """A sender fed through send_rtp_packet reaches a tapped receiver; getStats reflects record_sent_rtp."""

    async def scenario():
        aiortc_patches.restrict_ice_to_loopback()
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

        async def tap(packet, arrival_time_ms=0):
            received.append(packet)

        aiortc_patches.install_rtp_tap(transceiver.receiver, tap)
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
        ext_map = aiortc_patches.header_extensions_map(parameters)
        payloads = [bytes([i]) * 40 for i in range(5)]
        for i, payload in enumerate(payloads):
            data = aiortc_patches.build_rtp_packet(
                payload_type=codec.payloadType, sequence_number=100 + i, timestamp=960 * i,
                ssrc=aiortc_patches.sender_ssrc(sender), payload=payload, marker=0, mid=parameters.muxId, ext_map=ext_map,
            )
            await aiortc_patches.send_rtp_packet(sender, data)
            aiortc_patches.record_sent_rtp(sender, 960 * i, len(payload))
        for _ in range(50):
            if len(received) == len(payloads):
                break
            await asyncio.sleep(0.02)
        stats = await sender.getStats()
        outbound = [s for s in stats.values() if s.type == "outbound-rtp"]
        await sender_pc.close()
        await receiver_pc.close()
        return codec, payloads, received, outbound

    codec, payloads, received, outbound = asyncio.run(scenario())
    assert codec.mimeType.lower() == "audio/opus"
    assert [p.payload for p in received] == payloads
    assert [p.sequence_number for p in received] == [100, 101, 102, 103, 104]
    assert outbound[0].packetsSent == 5 and outbound[0].bytesSent == 200


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
