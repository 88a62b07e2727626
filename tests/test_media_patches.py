"""The aiortc/aioice patches against the pinned internals, with a real in-process aiortc peer pair."""

from __future__ import annotations

import asyncio
import threading

import pytest
from aiortc import RTCPeerConnection

from harness.rtc import aiortc_patches
from harness.rtc import audio
from harness.media.publisher import LoopTrack
from harness.media.rtpstats import parse_rtp


@pytest.fixture(scope="module")
def loop_audio(tmp_path_factory) -> audio.OpusLoop:
    return audio.load_loop(audio.AudioParams(loop_markers=8), cache_dir=tmp_path_factory.mktemp("audio"))


def test_pinned_internals_match():
    aiortc_patches.check_pinned_internals()


def test_check_reads_the_originals_after_installation():
    import aiortc.rtcdtlstransport

    aiortc_patches.install(aiortc_patches.Role.TAP)
    aiortc_patches.install(aiortc_patches.Role.TAP)  # idempotent
    # The class attribute is now the patch; the fingerprint check still sees the pinned original.
    assert aiortc.rtcdtlstransport.RTCDtlsTransport._handle_rtp_data is aiortc_patches._handle_rtp_data
    aiortc_patches.check_pinned_internals()
    assert aiortc_patches._ORIGINALS["aiortc.rtcdtlstransport.RTCDtlsTransport._handle_rtp_data"] is not aiortc_patches._handle_rtp_data


def test_a_changed_internal_is_detected(monkeypatch):
    name = "aiortc.rtcrtpreceiver.RTCRtpReceiver._handle_rtp_packet"
    monkeypatch.setitem(aiortc_patches.PINNED_SOURCE_SHA256, name, "0" * 16)
    with pytest.raises(aiortc_patches.PinnedInternalsError, match="_handle_rtp_packet changed"):
        aiortc_patches.check_pinned_internals()


def test_private_receiver_attributes_exist():
    # The decoder-less start-up writes these; a rename in aiortc must fail here, not at run time.
    import aiortc.rtcrtpreceiver as module
    source = open(module.__file__).read()
    for attr in aiortc_patches._RECEIVER_PRIVATE_ATTRS:
        assert "self." + attr.replace("_RTCRtpReceiver", "") in source, attr


async def _pair(loop_audio: audio.OpusLoop, passthrough: bool):
    aiortc_patches.install(aiortc_patches.Role.TAP)
    sender = RTCPeerConnection(aiortc_patches.ice_configuration())
    receiver = RTCPeerConnection(aiortc_patches.ice_configuration())
    sender.addTransceiver(LoopTrack(loop_audio, lambda: None), direction="sendonly")
    transceiver = receiver.addTransceiver("audio", direction="recvonly")
    packets = []
    if passthrough:
        aiortc_patches.attach_tap(transceiver.receiver, packets.append, passthrough=True)
    else:
        aiortc_patches.attach_raw_tap(transceiver.receiver, lambda data: packets.append(parse_rtp(data)))
    await receiver.setLocalDescription(await receiver.createOffer())
    offer_sdp = receiver.localDescription.sdp
    await sender.setRemoteDescription(receiver.localDescription)
    await sender.setLocalDescription(await sender.createAnswer())
    await receiver.setRemoteDescription(sender.localDescription)
    return sender, receiver, transceiver, packets, offer_sdp


def test_tap_only_receiver_gets_packets_without_decoder_thread(loop_audio):
    asyncio.run(_tap_only(loop_audio))


async def _tap_only(loop_audio):
    threads_before = threading.active_count()
    sender, receiver, transceiver, packets, offer_sdp = await _pair(loop_audio, passthrough=False)
    try:
        for _ in range(100):
            if len(packets) >= 20:
                break
            await asyncio.sleep(0.02)
        assert len(packets) >= 20
        # After the first packet (stock path) RTP bypasses aioice's queue and DTLS task: the raw fast path.
        assert aiortc_patches.raw_fast_path_active(transceiver.receiver)
        connection = transceiver.receiver.transport.transport._connection
        assert all("datagram_received" in vars(protocol) for protocol in connection._protocols)
        # Payloads arrive exactly as pre-encoded: the hash names their loop position, in order.
        indexes = [loop_audio.index_by_hash[audio.payload_hash(payload)] for _, _, _, payload in packets[:20]]
        seqs = [seq for _, seq, _, _ in packets[:20]]
        assert seqs == [(seqs[0] + i) % 65536 for i in range(20)]
        assert indexes == list(range(indexes[0], indexes[0] + 20))
        assert not aiortc_patches.receiver_has_decoder_thread(transceiver.receiver)
        assert transceiver.receiver._RTCRtpReceiver__rtcp_task.done()  # no RTCP task either
        assert not any(t.name == "audio-decoder" for t in threading.enumerate())
        assert threading.active_count() <= threads_before + 1  # aiortc may keep one executor thread
        # ICE host candidates restricted to loopback (media-design 6.2): no other address is offered.
        candidates = [line for line in offer_sdp.splitlines() if line.startswith("a=candidate")]
        assert candidates and all(" 127.0.0.1 " in c for c in candidates)
    finally:
        await sender.close()
        await receiver.close()


def test_passthrough_receiver_still_decodes(loop_audio):
    asyncio.run(_passthrough(loop_audio))


async def _passthrough(loop_audio):
    sender, receiver, transceiver, packets, _ = await _pair(loop_audio, passthrough=True)
    try:
        frame = await asyncio.wait_for(transceiver.receiver.track.recv(), timeout=5)
        assert frame.sample_rate == 48000
        assert packets, "the tap saw the packets the decoder got"
        assert aiortc_patches.receiver_has_decoder_thread(transceiver.receiver)
    finally:
        await sender.close()
        await receiver.close()


def test_rtp_datagrams_skip_the_stun_parse_and_stun_still_works():
    asyncio.run(_demux())


async def _demux():
    import aioice.ice

    aiortc_patches.install(aiortc_patches.Role.TAP)
    received = []

    class Receiver:
        def data_received(self, data, component):
            received.append((data, component))

    protocol = aioice.ice.StunProtocol(Receiver())
    protocol.local_candidate = type("Candidate", (), {"component": 1})()
    rtp_like = bytes([0x80, 111]) + bytes(30)
    protocol.datagram_received(rtp_like, ("127.0.0.1", 9))
    # Not STUN and not RTP: the stock path (failed STUN parse) delivers it the same way.
    protocol.datagram_received(b"\x17" + bytes(20), ("127.0.0.1", 9))
    assert received == [(rtp_like, 1), (b"\x17" + bytes(20), 1)]


def test_fast_path_takes_rtp_and_drops_rtcp_stock_path_queues_both():
    asyncio.run(_rtcp_demux())


async def _rtcp_demux():
    import aioice.ice

    aiortc_patches.install(aiortc_patches.Role.TAP)
    queued, fast = [], []

    class Connection:
        def data_received(self, data, component):
            queued.append(data)

    connection = Connection()
    protocol = aioice.ice.StunProtocol(connection)
    protocol.local_candidate = type("Candidate", (), {"component": 1})()
    rtp = bytes([0x80, 111]) + bytes(30)
    rtcp_sr = bytes([0x80, 200]) + bytes(26)  # RFC 5761 4: PT 200 (sender report) is RTCP
    protocol.datagram_received(rtp, ("127.0.0.1", 9))
    protocol.datagram_received(rtcp_sr, ("127.0.0.1", 9))
    assert queued == [rtp, rtcp_sr] and fast == []  # no sink yet: aioice's queue, as stock
    queued.clear()
    setattr(connection, aiortc_patches._RTP_SINK_ATTR, fast.append)
    protocol.datagram_received(rtp, ("127.0.0.1", 9))
    protocol.datagram_received(rtcp_sr, ("127.0.0.1", 9))
    assert fast == [rtp] and queued == []  # the tap-only fast path: RTP to the sink, RTCP dropped


def test_fast_path_unprotect_delivers_authentic_packets_once():
    # Real libsrtp sessions: the fast path's direct srtp_unprotect call behaves as Session.unprotect does.
    import os
    import struct

    from pylibsrtp import Policy, Session

    key = os.urandom(30)
    tx = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND, srtp_profile=Policy.SRTP_PROFILE_AES128_CM_SHA1_80))
    rx = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_INBOUND, srtp_profile=Policy.SRTP_PROFILE_AES128_CM_SHA1_80))
    plain = [struct.pack("!BBHII", 0x80, 111, seq, 960 * seq, 4242) + bytes([seq]) * 60 for seq in range(1, 4)]
    protected = [tx.protect(p) for p in plain]
    delivered = []
    sink = aiortc_patches._rtp_sink(rx, delivered.append)
    sink(protected[0])
    sink(protected[0])  # replayed: dropped
    tampered = bytearray(protected[1])
    tampered[20] ^= 0xFF
    sink(bytes(tampered))  # fails authentication: dropped
    sink(protected[1])
    sink(protected[2])
    assert delivered == plain


def test_fast_protocol_receiver_unprotects_taps_rtp_drops_rtcp_and_hands_on_the_rest():
    asyncio.run(_fast_protocol_receiver())


async def _fast_protocol_receiver():
    # The per-protocol datagram_received the fast path installs: the class-level demux and the sink in one.
    import os
    import struct

    from pylibsrtp import Policy, Session

    import aioice.ice

    key = os.urandom(44)
    profile = Policy.SRTP_PROFILE_AEAD_AES_256_GCM  # what two aiortc peers negotiate first
    tx = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND, srtp_profile=profile))
    rx = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_INBOUND, srtp_profile=profile))
    plain = [struct.pack("!BBHII", 0x80, 111, seq, 960 * seq, 4242) + bytes([seq]) * 60 for seq in range(1, 4)]
    protected = [tx.protect(p) for p in plain]
    handed_on, delivered = [], []

    class Connection:
        def data_received(self, data, component):
            handed_on.append(data)

    protocol = aioice.ice.StunProtocol(Connection())
    protocol.local_candidate = type("Candidate", (), {"component": 1})()
    receive = aiortc_patches._fast_datagram_received(protocol, rx, delivered.append)
    addr = ("127.0.0.1", 9)
    receive(protected[0], addr)
    receive(protected[0], addr)  # replayed: dropped
    tampered = bytearray(protected[1])
    tampered[20] ^= 0xFF
    receive(bytes(tampered), addr)  # fails authentication: dropped
    receive(bytes([0x80, 200]) + bytes(26), addr)  # RTCP sender report: dropped
    dtls = bytes([23, 0xFE, 0xFD]) + bytes(20)  # RFC 7983: 20..63 is DTLS, not STUN: on to aioice's queue
    receive(dtls, addr)
    receive(protected[1], addr)
    receive(protected[2], addr)
    receive(bytes(2000), addr)  # larger than the work buffer: not RTP by first byte, handed on (not a crash)
    assert delivered == plain
    assert handed_on == [dtls, bytes(2000)]


def test_tap_listener_batch_gives_the_per_packet_figures(loop_audio, monkeypatch):
    import time

    import harness.media.listener as listener_module

    class Clock:  # both listeners read the same arrival time for the same packet
        ns = time.time_ns()

        @staticmethod
        def time_ns() -> int:
            return Clock.ns

    monkeypatch.setattr(listener_module, "time", Clock)
    asyncio.run(_tap_listener_batch(loop_audio, Clock))


async def _tap_listener_batch(loop_audio, clock):
    # Two real WhepListeners: one fed the raw tap's way (kept per packet, computed per interval), one through
    # the per-packet path (_record, as probe listeners still are). Loss, a malformed datagram, an unknown
    # payload and a publisher switch (new SSRC, second schedule) in the same second; the figures must agree.
    import struct

    from harness.media.listener import WhepListener
    from harness.media.rtpstats import RtpHeaderError, parse_rtp
    from harness.media.schedule import BoothSchedules, PublisherSchedule
    from harness.media.session import SessionTimeouts

    now_ns = clock.ns
    schedules = BoothSchedules()
    schedules.add(PublisherSchedule("a", now_ns - 10**12, loop_audio.length))
    schedules.add(PublisherSchedule("b", now_ns - 10**11 + 7_000_000, loop_audio.length))
    batched, per_packet = (WhepListener(f"l{n}", "http://127.0.0.1:1/whep", "booth", loop_audio, schedules, None,
                                        SessionTimeouts()) for n in range(2))
    first_packets = []
    batched._first_packet_seen = lambda: first_packets.append(clock.ns)
    per_packet._awaiting_first_packet = False
    ext = b"\xbe\xde\x00\x01\x10a\x00\x00"
    try:
        for second in range(3):
            for i in range(60):
                n = second * 60 + i
                if n % 17 == 5:
                    continue  # lost
                ssrc = 1 if n < 100 else 2  # the publisher switch
                payload = b"not in the loop" if n == 42 else loop_audio.payloads[n % loop_audio.length]
                data = struct.pack("!BBHII", 0x90, 111, (65500 + n) % 65536, n * 960, ssrc) + ext + payload
                if n == 77:
                    data = data[:14]  # malformed: truncated extension
                clock.ns += 20_000_000 + (n % 7) * 1_300_000 + (400_000_000 if n == 130 else 0)  # jitter, a silence
                batched._on_rtp_datagram(data)
                try:
                    per_packet._record(*parse_rtp(data))
                except RtpHeaderError:
                    per_packet._malformed += 1
            assert len(first_packets) == 1  # told at once, not at the interval
            now_s = clock.ns * 1e-9
            got, want = batched.take_interval(now_s), per_packet.take_interval(now_s)
            assert got == want and len(got[1]) > 40 and got[3] is None
        assert batched.rtp.restarts_total == 1 and batched.rtp.lost_total == per_packet.rtp.lost_total > 0
    finally:
        await batched.pc.close()
        await per_packet.pc.close()
