"""RTP receive statistics (RFC 3550) and schedule resolution, driven with fixed packet patterns and clocks."""

from __future__ import annotations

import dataclasses
import random
import struct

import pytest

from harness.media.rtpstats import RtpHeaderError, RtpStreamStats, parse_rtp
from harness.media.schedule import PACKET_PERIOD_NS, BoothSchedules, PublisherSchedule

TS_STEP = 960  # 20 ms at 48 kHz
PERIOD_S = 0.02


def feed(stats: RtpStreamStats, seqs, start_seq=100, ssrc=1, t0=1000.0, arrival_jitter=None):
    for n, i in enumerate(seqs):
        seq = (start_seq + i) % 65536
        extra = arrival_jitter(n) if arrival_jitter else 0.0
        stats.on_packet(ssrc, seq, 5000 + i * TS_STEP, t0 + i * PERIOD_S + extra)


def test_fixed_loss_pattern_counts_expected_lost_and_gaps():
    stats = RtpStreamStats()
    received = [i for i in range(100) if i % 20 not in (3, 4)]  # 2 of every 20 lost, in bursts of 2
    feed(stats, received)
    interval = stats.take_interval(now_s=1000.0 + 100 * PERIOD_S)
    assert interval.packets == 90
    assert interval.expected == 100
    assert interval.lost == 10
    assert interval.gaps == 5
    assert interval.gap_packets_max == 2
    assert interval.restarts == 0


def test_sequence_wraparound_is_not_loss():
    stats = RtpStreamStats()
    feed(stats, range(50), start_seq=65520)
    interval = stats.take_interval(now_s=1001.0)
    assert (interval.packets, interval.expected, interval.lost, interval.gaps) == (50, 50, 0, 0)


def test_intervals_split_counts():
    stats = RtpStreamStats()
    feed(stats, range(0, 50))
    first = stats.take_interval(now_s=1001.0)
    feed(stats, [i for i in range(50, 100) if i != 70])
    second = stats.take_interval(now_s=1002.0)
    assert (first.expected, first.lost) == (50, 0)
    assert (second.expected, second.lost, second.packets) == (50, 1, 49)
    assert stats.lost_total == 1


def test_jitter_follows_rfc3550_estimator():
    # Alternate +-2 ms arrival offsets: |D| = 4 ms for every pair, so J converges to 4 ms.
    stats = RtpStreamStats()
    feed(stats, range(400), arrival_jitter=lambda n: 0.002 if n % 2 else -0.002)
    assert stats.jitter_ms == pytest.approx(4.0, rel=0.01)
    # Perfectly periodic arrivals decay J towards 0 by 1/16 per packet.
    steady = RtpStreamStats()
    feed(steady, range(100))
    assert steady.jitter_ms == pytest.approx(0.0, abs=1e-6)


def test_silence_and_ongoing_silence():
    stats = RtpStreamStats(silence_threshold_ms=200)
    feed(stats, range(10))
    # 500 ms without packets, then packets again.
    feed(stats, range(35, 40))
    interval = stats.take_interval(now_s=1000.0 + 40 * PERIOD_S)
    assert len(interval.silences_ms) == 1
    assert interval.silences_ms[0] == pytest.approx(520.0, abs=0.5)
    assert interval.max_interarrival_ms == pytest.approx(520.0, abs=0.5)
    later = stats.take_interval(now_s=1000.0 + 39 * PERIOD_S + 1.0)
    assert later.ongoing_silence_ms == pytest.approx(1000.0, abs=0.5)
    assert later.packets == 0


def test_new_ssrc_or_big_jump_is_a_restart_not_loss():
    stats = RtpStreamStats()
    feed(stats, range(50))
    feed(stats, range(50, 100), start_seq=40000)  # sequence jumped by ~40000: a restarted source
    feed(stats, range(100, 150), start_seq=7, ssrc=2)  # another SSRC
    interval = stats.take_interval(now_s=1003.0)
    assert interval.restarts == 2
    assert interval.packets == 150
    assert interval.lost == 0


def test_reordered_and_duplicate_packets_are_late_not_lost():
    stats = RtpStreamStats()
    feed(stats, [0, 1, 3, 2, 4, 4, 5])
    interval = stats.take_interval(now_s=1001.0)
    assert interval.late_packets == 2
    assert interval.lost == 0


def test_schedule_resolves_loop_index_to_latest_send_time():
    epoch = 1_000_000_000_000
    schedule = PublisherSchedule("p1", epoch, loop_length=100)
    # Packet k=250 is loop index 50, sent at epoch + 250 * 20 ms; it arrives 7 ms later.
    arrival = epoch + 250 * PACKET_PERIOD_NS + 7_000_000
    assert arrival - schedule.send_time_ns(50, arrival) == 7_000_000
    # A loop index not yet sent in this lap resolves to the previous lap.
    assert schedule.send_time_ns(60, arrival) == epoch + 160 * PACKET_PERIOD_NS
    assert schedule.send_time_ns(5, epoch - 100 * PACKET_PERIOD_NS) is None


def test_booth_schedules_pick_the_publisher_that_explains_the_packet():
    epoch1 = 1_000_000_000_000
    epoch2 = epoch1 + 37 * PACKET_PERIOD_NS + 3_000_000  # an override 743 ms later
    booth = BoothSchedules()
    booth.add(PublisherSchedule("old", epoch1, loop_length=6000))
    booth.add(PublisherSchedule("new", epoch2, loop_length=6000))
    # The new publisher's packet k=10 arrives 4 ms after it was sent.
    arrival = epoch2 + 10 * PACKET_PERIOD_NS + 4_000_000
    assert booth.latency_ns(10, arrival) == 4_000_000


def test_parse_rtp_header_with_csrc_extension_and_padding():
    from aiortc.rtp import RtpPacket

    from harness.media.rtpstats import RtpHeaderError, parse_rtp

    packet = RtpPacket(payload_type=111, sequence_number=65535, timestamp=4_000_000_000, ssrc=0xDEADBEEF, payload=b"opus-bytes")
    packet.csrc = [1, 2]
    packet.extensions.mid = "0"  # forces a header extension block
    packet.padding_size = 3
    from aiortc.rtp import HeaderExtensionsMap
    from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters

    extensions = HeaderExtensionsMap()
    extensions.configure(RTCRtpParameters(headerExtensions=[RTCRtpHeaderExtensionParameters(id=1, uri="urn:ietf:params:rtp-hdrext:sdes:mid")]))
    data = packet.serialize(extensions)
    assert data[0] & 0x30 == 0x30  # padding and extension bits set
    assert parse_rtp(data) == (0xDEADBEEF, 65535, 4_000_000_000, b"opus-bytes")
    with pytest.raises(RtpHeaderError):
        parse_rtp(data[:10])


# --- batches (issue 15): on_packets and parse_rtp_batch give exactly what the per-packet path gives ---


def _stream(rng: random.Random, count: int, *, start_seq: int, hostile: bool):
    """(ssrc, seq, timestamp, arrival_s) of a stream with loss, jitter, silences and, if hostile, reordering,
    duplicates, restarts, SSRC changes and timestamp jumps."""
    ssrc, seq, ts, t = 7, start_seq, 1234, 1_764_000_000.0
    packets = []
    for _ in range(count):
        step = 1 if rng.random() > 0.05 else rng.randint(2, 6)  # loss bursts
        if rng.random() < 0.01:
            t += rng.uniform(0.2, 0.6)  # a silence (publisher switch)
        if hostile:
            roll = rng.random()
            if roll < 0.02:
                step = -rng.randint(1, 5)  # reordered / late
            elif roll < 0.03:
                step = 0  # duplicate
            elif roll < 0.035:
                step = rng.randint(4000, 30000)  # restart by a jump
            elif roll < 0.04:
                ssrc = rng.randint(1, 2**32 - 1)  # another publisher
            elif roll < 0.045:
                ts += rng.randint(2**31, 2**32 - 1)  # timestamp discontinuity
        seq = (seq + step) % 65536
        ts = (ts + 960 * max(step, 1)) % 2**32
        t += 0.02 * max(step, 1) + rng.uniform(-0.003, 0.003)
        packets.append((ssrc, seq, ts, t))
    return packets


def _datagram(ssrc: int, seq: int, ts: int, payload: bytes) -> bytes:
    # The WHEP relay's layout: one-byte-header extension block (the MID, RFC 8843) before the payload.
    return struct.pack("!BBHII", 0x90, 111, seq, ts, ssrc) + b"\xbe\xde\x00\x01\x10a\x00\x00" + payload


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("hostile", [False, True])
def test_batches_give_exactly_the_per_packet_figures(seed, hostile):
    rng = random.Random(seed)
    packets = _stream(rng, 1500, start_seq=rng.choice([0, 65000, 30000]), hostile=hostile)
    one_by_one, batched = RtpStreamStats(), RtpStreamStats()
    position = 0
    while position < len(packets):
        size = rng.choice([0, 1, 3, 50, 50, 51, 120])
        batch = packets[position:position + size]
        position += size
        expected_payloads, datagrams, arrivals_ns = [], [], []
        for n, (ssrc, seq, ts, arrival_s) in enumerate(batch):
            arrival_ns = int(arrival_s * 1e9)
            if hostile and rng.random() < 0.01:
                datagrams.append(b"\x90\x6f\x00")  # malformed: skipped, counted, does not touch the stream
                arrivals_ns.append(arrival_ns)
            payload = rng.randbytes(rng.randint(0, 90))
            one_by_one.on_packet(ssrc, seq, ts, arrival_ns * 1e-9)
            expected_payloads.append(payload)
            datagrams.append(_datagram(ssrc, seq, ts, payload))
            arrivals_ns.append(arrival_ns)
        payloads, kept_arrivals_ns, malformed = batched.on_datagrams(datagrams, arrivals_ns)
        assert payloads == expected_payloads
        assert kept_arrivals_ns == [a for d, a in zip(datagrams, arrivals_ns) if len(d) > 3]
        assert malformed == len(datagrams) - len(batch)
        now_s = (batch[-1][3] if batch else 1_764_000_000.0) + rng.choice([0.0, 0.5])
        assert batched.take_interval(now_s) == one_by_one.take_interval(now_s)
    assert (batched.packets_total, batched.lost_total, batched.restarts_total) == \
        (one_by_one.packets_total, one_by_one.lost_total, one_by_one.restarts_total)
    assert batched.jitter_ms == one_by_one.jitter_ms
    if hostile:
        assert one_by_one.restarts_total > 0 and one_by_one.lost_total > 0  # the hostile cases did occur


def test_batch_parse_matches_parse_rtp_and_skips_malformed_datagrams():
    plain = struct.pack("!BBHII", 0x80, 111, 1, 960, 5) + b"opus"
    csrc_ext_pad = struct.pack("!BBHII", 0xB2, 111, 2, 1920, 5) + b"\0" * 8 + b"\xbe\xde\x00\x01" + b"\x10a\0\0" + b"xy\0\x02"
    truncated_ext = struct.pack("!BBHII", 0x90, 111, 3, 0, 5) + b"\xbe"
    padding_too_long = struct.pack("!BBHII", 0xA0, 111, 4, 0, 5) + b"\x30"
    datagrams = [plain, b"short", csrc_ext_pad, truncated_ext, padding_too_long]
    expected = []
    for data in datagrams:
        try:
            expected.append(parse_rtp(data)[3])
        except RtpHeaderError:
            pass
    payloads, arrivals_ns, malformed = RtpStreamStats().on_datagrams(datagrams, [10, 20, 30, 40, 50])
    assert payloads == expected == [b"opus", b"xy"]
    assert (arrivals_ns, malformed) == ([10, 30], 3)


def test_booth_latencies_of_a_batch_are_the_per_packet_latencies():
    rng = random.Random(3)
    base = 1_764_000_000 * 10**9
    for publishers in (1, 4):
        booth = BoothSchedules(max_schedules=3)
        for n in range(publishers):  # with 4, the first is dropped (max_schedules)
            booth.add(PublisherSchedule(f"p{n}", base + n * 7_777_777_777, 250))
        indices = [rng.randrange(250) for _ in range(2000)]
        arrivals = [base + rng.randrange(-10**9, 60 * 10**9) for _ in indices]
        expected = [lat for lat in (booth.latency_ns(i, a) for i, a in zip(indices, arrivals)) if lat is not None]
        assert booth.latencies_ns(indices, arrivals) == expected
        assert 0 < len(expected) < len(indices)  # some arrivals precede every epoch
    assert BoothSchedules().latencies_ns([1], [base]) == []
