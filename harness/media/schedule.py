"""Publisher send schedules, and how a listener in any process turns a received payload into its send time.

A publisher sends loop packet ``k mod L`` at ``epoch_ns + k * 20 ms`` (wall clock, CLOCK_REALTIME), paced on
that absolute schedule (publisher.py). Its ``PublisherSchedule`` (epoch, packet period, loop length) is a few
numbers: the engine returns it from ``publish``, the bridge forwards it to every engine that hosts listeners
of the same booth (``schedule`` RPC), so a listener needs no shared log: payload hash -> loop index (audio.py)
-> the latest ``k`` with that index not after the arrival -> send time. Latency is measured against the
*scheduled* send time; the publisher reports its own lateness (actual - scheduled) separately, so a lagging
harness is visible and never read as target latency. Across machines all engines need synchronised clocks:
the latency is then off by the clock offset (reported by whoever runs distributed engines).

After a publisher override a booth has several schedules; each packet is attributed to the schedule giving
the smallest non-negative latency. Schedules older than ``max_schedules`` are dropped.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from ..rtc.markers import MARKER_INTERVAL_S

PACKET_PERIOD_NS = 20_000_000
# Marker m sits in loop packet m * PACKETS_PER_MARKER (markers every MARKER_INTERVAL_S, packets every 20 ms).
PACKETS_PER_MARKER = round(MARKER_INTERVAL_S * 1e9 / PACKET_PERIOD_NS)  # 25
# Timer wake-ups may precede the nominal time by a little; tolerate it rather than wrap a whole loop.
EARLY_TOLERANCE_NS = 5_000_000


@dataclasses.dataclass(frozen=True)
class PublisherSchedule:
    publisher_id: str
    epoch_ns: int  # wall-clock send time of packet k = 0
    loop_length: int
    period_ns: int = PACKET_PERIOD_NS
    language: str | None = None  # the speech loop it plays (speech.py); None for the synthetic loop

    def send_time_ns(self, loop_index: int, arrival_ns: int) -> int | None:
        """Scheduled send time of the latest packet with ``loop_index`` sent by ``arrival_ns``; None before the epoch."""
        k_max = (arrival_ns - self.epoch_ns + EARLY_TOLERANCE_NS) // self.period_ns
        if k_max < loop_index:
            return None
        k = loop_index + ((k_max - loop_index) // self.loop_length) * self.loop_length
        return self.epoch_ns + k * self.period_ns

    def marker_send_time_ns(self, marker_id: int, arrival_ns: int) -> int | None:
        """Scheduled send time of marker ``marker_id`` latest before ``arrival_ns`` (caption delay, marker latency)."""
        return self.send_time_ns(marker_id * PACKETS_PER_MARKER, arrival_ns)

    def to_wire(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_wire(cls, wire: dict) -> PublisherSchedule:
        return cls(**wire)


class BoothSchedules:
    """Every known schedule of one booth; resolves a loop index to a latency."""

    def __init__(self, max_schedules: int = 4) -> None:
        self._schedules: list[PublisherSchedule] = []
        self.max_schedules = max_schedules

    def add(self, schedule: PublisherSchedule) -> None:
        self._schedules = [s for s in self._schedules if s.publisher_id != schedule.publisher_id]
        self._schedules.append(schedule)
        del self._schedules[: -self.max_schedules]

    def __bool__(self) -> bool:
        return bool(self._schedules)

    def latency_ns(self, loop_index: int, arrival_ns: int) -> int | None:
        best: int | None = None
        for schedule in self._schedules:
            sent = schedule.send_time_ns(loop_index, arrival_ns)
            if sent is None:
                continue
            latency = arrival_ns - sent
            if best is None or latency < best:
                best = latency
        return best

    def latencies_ns(self, loop_indices: Sequence[int], arrivals_ns: Sequence[int]) -> list[int]:
        """``latency_ns`` of each (index, arrival) pair, in order, leaving out the Nones (one loop per batch)."""
        if len(self._schedules) != 1:
            latency_ns = self.latency_ns
            return [lat for lat in map(latency_ns, loop_indices, arrivals_ns) if lat is not None]
        # One publisher (the common case): send_time_ns inlined.
        schedule = self._schedules[0]
        epoch_ns, period_ns, loop_length = schedule.epoch_ns, schedule.period_ns, schedule.loop_length
        latencies = []
        for index, arrival_ns in zip(loop_indices, arrivals_ns):
            k_max = (arrival_ns - epoch_ns + EARLY_TOLERANCE_NS) // period_ns
            if k_max >= index:
                latencies.append(arrival_ns - epoch_ns - (index + ((k_max - index) // loop_length) * loop_length) * period_ns)
        return latencies
