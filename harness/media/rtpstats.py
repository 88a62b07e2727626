"""Receive-side statistics of one RTP stream, computed from the packets themselves (media-design 6.7).

Owns: extended sequence numbers and restarts (RFC 3550 A.1), expected/lost counts (RFC 3550 6.4.1, A.3),
interarrival jitter (RFC 3550 6.4.1, A.8), sequence gaps, and silences (no packet for longer than a
threshold). Pure: arrival times are passed in (seconds on any monotonic clock), so tests can drive it.
``take_interval`` returns what happened since the previous call (the per-second sample).

``on_datagrams`` takes a batch of raw RTP datagrams (a tap listener's second of packets, issue 15) and gives
exactly what ``parse_rtp`` and one ``on_packet`` per packet give, in one loop over local variables: a packet
that continues the stream in order (nearly all) costs no function call; any other (first packet, new SSRC,
late, duplicate, restart) goes through ``on_packet``.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Sequence

from ..errors import VoxloadError

SEQ_MOD = 1 << 16
_FIXED_HEADER = struct.Struct("!BBHII")  # RFC 3550 5.1: V/P/X/CC, M/PT, sequence number, timestamp, SSRC


class RtpHeaderError(VoxloadError, ValueError):
    """A datagram too short or malformed to be RTP."""


def parse_rtp(data: bytes) -> tuple[int, int, int, bytes]:
    """(ssrc, sequence number, timestamp, payload) of an RTP packet (RFC 3550 5.1, 5.3.1)."""
    if len(data) < 12:
        raise RtpHeaderError("shorter than the 12-byte RTP header")
    first, _, seq, timestamp, ssrc = _FIXED_HEADER.unpack_from(data)
    start = 12 + 4 * (first & 0x0F)  # CSRC list
    if first & 0x10:  # header extension: 16-bit profile, 16-bit length in 32-bit words
        if len(data) < start + 4:
            raise RtpHeaderError("truncated header extension")
        start += 4 + 4 * ((data[start + 2] << 8) | data[start + 3])
    end = len(data)
    if first & 0x20:  # padding: the last octet counts the padding octets
        end -= data[-1]
    if start > end:
        raise RtpHeaderError("header longer than the packet")
    return ssrc, seq, timestamp, data[start:end]
# RFC 3550 A.1: a jump of more than MAX_DROPOUT forward or MAX_MISORDER backwards is not loss or
# reordering but a restarted source; the relay's publisher override may look like that (MediaMTX).
MAX_DROPOUT = 3000
MAX_MISORDER = 100


@dataclasses.dataclass(frozen=True)
class IntervalStats:
    packets: int
    expected: int
    lost: int
    gaps: int
    gap_packets_max: int
    jitter_ms: float
    silences_ms: tuple[float, ...]  # silences that ended in this interval
    ongoing_silence_ms: float  # 0 unless no packet arrived for longer than the threshold
    restarts: int
    late_packets: int
    max_interarrival_ms: float  # longest time between two packets in the interval (publisher switch gaps)


class RtpStreamStats:
    def __init__(self, clock_rate_hz: int = 48000, silence_threshold_ms: float = 200.0) -> None:
        self.clock_rate_hz = clock_rate_hz
        self.silence_threshold_s = silence_threshold_ms / 1000.0
        self.packets_total = 0
        self.lost_total = 0
        self.restarts_total = 0
        self._ssrc: int | None = None
        self._max_ext_seq: int | None = None
        self._cycles = 0
        self._last_arrival_s: float | None = None
        self._transit: float | None = None
        self._jitter_ts = 0.0  # RFC 3550 J, in RTP timestamp units
        self._reset_interval()

    def _reset_interval(self) -> None:
        self._i_packets = 0
        self._i_expected_base = self._max_ext_seq
        self._i_expected_extra = 0  # expected counts carried over a restart
        self._i_gaps = 0
        self._i_gap_max = 0
        self._i_silences: list[float] = []
        self._i_restarts = 0
        self._i_late = 0
        self._i_max_interarrival_ms = 0.0

    @property
    def jitter_ms(self) -> float:
        return self._jitter_ts / self.clock_rate_hz * 1000.0

    def on_packet(self, ssrc: int, seq: int, rtp_timestamp: int, arrival_s: float) -> None:
        if self._last_arrival_s is not None:
            silence_s = arrival_s - self._last_arrival_s
            self._i_max_interarrival_ms = max(self._i_max_interarrival_ms, silence_s * 1000.0)
            if silence_s > self.silence_threshold_s:
                self._i_silences.append(silence_s * 1000.0)
        self._last_arrival_s = arrival_s
        self.packets_total += 1
        self._i_packets += 1

        if self._max_ext_seq is None or ssrc != self._ssrc:
            self._restart(ssrc, seq, counted=self._max_ext_seq is not None)
        else:
            max_seq = self._max_ext_seq % SEQ_MOD
            delta = (seq - max_seq) % SEQ_MOD
            if 0 < delta < MAX_DROPOUT:
                if seq < max_seq:
                    self._cycles += SEQ_MOD  # sequence number wrapped
                ext = self._cycles + seq
                if delta > 1:
                    self._i_gaps += 1
                    self._i_gap_max = max(self._i_gap_max, delta - 1)
                self._max_ext_seq = ext
            elif delta == 0 or SEQ_MOD - delta <= MAX_MISORDER:
                self._i_late += 1  # duplicate or reordered: received, does not move the maximum
            else:
                self._restart(ssrc, seq, counted=True)
                self._transit = None

        # RFC 3550 6.4.1 / A.8: D(i,j) = (Rj - Ri) - (Sj - Si) = transit_j - transit_i, with arrival R
        # in RTP timestamp units; J(i) = J(i-1) + (|D(i-1,i)| - J(i-1)) / 16.
        transit = arrival_s * self.clock_rate_hz - rtp_timestamp
        if self._transit is not None:
            d = abs(transit - self._transit)
            if d < (1 << 31):  # ignore a timestamp discontinuity (source switch) rather than spike J
                self._jitter_ts += (d - self._jitter_ts) / 16.0
        self._transit = transit

    def on_datagrams(self, datagrams: Sequence[bytes], arrivals_ns: Sequence[int]) -> tuple[list[bytes], list[int], int]:
        """``parse_rtp`` then ``on_packet`` (arrival ``ns * 1e-9`` s) for each datagram, in order.

        Returns the payloads, their arrival times (ns) and how many datagrams were malformed (skipped).
        """
        payloads: list[bytes] = []
        kept_arrivals_ns: list[int] = []
        malformed = 0
        unpack_from = _FIXED_HEADER.unpack_from
        rate = self.clock_rate_hz
        silence_threshold_s = self.silence_threshold_s
        # The state on_packet's in-order branch reads and writes, kept in locals between packets.
        stream_ssrc = self._ssrc
        max_ext_seq = self._max_ext_seq
        cycles = self._cycles
        last_arrival_s = self._last_arrival_s
        previous_transit = self._transit
        jitter_ts = self._jitter_ts
        packets = gaps = 0
        gap_max = self._i_gap_max
        max_interarrival_ms = self._i_max_interarrival_ms
        silences = self._i_silences
        for data, arrival_ns in zip(datagrams, arrivals_ns):
            length = len(data)
            if length < 12:
                malformed += 1
                continue
            first, _, seq, timestamp, ssrc = unpack_from(data)
            start = 12 + 4 * (first & 0x0F)
            if first & 0x10:
                if length < start + 4:
                    malformed += 1
                    continue
                start += 4 + 4 * ((data[start + 2] << 8) | data[start + 3])
            end = length - data[-1] if first & 0x20 else length
            if start > end:
                malformed += 1
                continue
            payloads.append(data[start:end])
            kept_arrivals_ns.append(arrival_ns)
            arrival_s = arrival_ns * 1e-9
            if max_ext_seq is not None and ssrc == stream_ssrc:
                max_seq = max_ext_seq % SEQ_MOD
                delta = (seq - max_seq) % SEQ_MOD
            else:
                delta = 0
            if not 0 < delta < MAX_DROPOUT:
                # Not the next packet of the stream: on_packet's other branches, on the object's state.
                self._store_run(max_ext_seq, cycles, last_arrival_s, previous_transit, jitter_ts, packets, gaps, gap_max, max_interarrival_ms)
                packets = gaps = 0
                self.on_packet(ssrc, seq, timestamp, arrival_s)
                stream_ssrc, max_ext_seq, cycles = self._ssrc, self._max_ext_seq, self._cycles
                last_arrival_s, previous_transit, jitter_ts = self._last_arrival_s, self._transit, self._jitter_ts
                gap_max, max_interarrival_ms = self._i_gap_max, self._i_max_interarrival_ms
                continue
            # on_packet's in-order branch, line for line.
            if last_arrival_s is not None:
                silence_s = arrival_s - last_arrival_s
                if silence_s * 1000.0 > max_interarrival_ms:
                    max_interarrival_ms = silence_s * 1000.0
                if silence_s > silence_threshold_s:
                    silences.append(silence_s * 1000.0)
            last_arrival_s = arrival_s
            packets += 1
            if seq < max_seq:
                cycles += SEQ_MOD
            if delta > 1:
                gaps += 1
                if delta - 1 > gap_max:
                    gap_max = delta - 1
            max_ext_seq = cycles + seq
            transit = arrival_s * rate - timestamp
            if previous_transit is not None:
                d = abs(transit - previous_transit)
                if d < (1 << 31):
                    jitter_ts += (d - jitter_ts) / 16.0
            previous_transit = transit
        self._store_run(max_ext_seq, cycles, last_arrival_s, previous_transit, jitter_ts, packets, gaps, gap_max, max_interarrival_ms)
        return payloads, kept_arrivals_ns, malformed

    def _store_run(self, max_ext_seq: int, cycles: int, last_arrival_s: float | None, transit: float | None,
                   jitter_ts: float, packets: int, gaps: int, gap_max: int, max_interarrival_ms: float) -> None:
        """Write back what ``on_datagrams`` kept in locals for a run of in-order packets (once per run, not per packet)."""
        self._max_ext_seq, self._cycles, self._last_arrival_s = max_ext_seq, cycles, last_arrival_s
        self._transit, self._jitter_ts = transit, jitter_ts
        self._i_packets += packets
        self.packets_total += packets
        self._i_gaps += gaps
        self._i_gap_max, self._i_max_interarrival_ms = gap_max, max_interarrival_ms

    def _restart(self, ssrc: int, seq: int, counted: bool) -> None:
        if counted:
            self._i_restarts += 1
            self.restarts_total += 1
            # Close the old stream's expected count before the numbering starts over.
            if self._i_expected_base is not None and self._max_ext_seq is not None:
                self._i_expected_extra += self._max_ext_seq - self._i_expected_base
        self._ssrc = ssrc
        self._cycles = 0
        self._max_ext_seq = seq
        self._i_expected_base = seq - 1  # this packet is expected
        self._transit = None

    def take_interval(self, now_s: float) -> IntervalStats:
        """Counts since the last call; ``now_s`` (same clock as arrivals) detects an ongoing silence."""
        expected = self._i_expected_extra
        if self._max_ext_seq is not None and self._i_expected_base is not None:
            expected += self._max_ext_seq - self._i_expected_base
        # RFC 3550 A.3: lost = expected - received; duplicates can make it negative, clamp per interval.
        lost = max(0, expected - self._i_packets)
        self.lost_total += lost
        ongoing = 0.0
        if self._last_arrival_s is not None and now_s - self._last_arrival_s > self.silence_threshold_s:
            ongoing = (now_s - self._last_arrival_s) * 1000.0
        stats = IntervalStats(
            packets=self._i_packets,
            expected=expected,
            lost=lost,
            gaps=self._i_gaps,
            gap_packets_max=self._i_gap_max,
            jitter_ms=self.jitter_ms,
            silences_ms=tuple(self._i_silences),
            ongoing_silence_ms=ongoing,
            restarts=self._i_restarts,
            late_packets=self._i_late,
            max_interarrival_ms=self._i_max_interarrival_ms,
        )
        self._reset_interval()
        return stats
