"""Per-second aggregates of one engine, per booth and role: what the engine pushes to its client.

Owns the shape of the pushed record (``stats`` push, see engine.py) and the reduction from per-session
intervals to per-group numbers. A group is (booth, role) with role ``listener`` (RTP tap), ``probe`` or
``publisher``. Percentiles are over every sample of the interval in the group (one latency sample per
packet; two marker samples per second per probe). Fields with no samples are None (no data is not zero).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict

import numpy as np

from ..results.percentiles import percentiles
from .listener import ProbeInterval
from .rtpstats import IntervalStats

PUSHED_NDIGITS = 3  # ms to the microsecond keeps the pushed lines short


@dataclasses.dataclass
class _Group:
    sessions: int = 0
    packets: int = 0
    expected: int = 0
    lost: int = 0
    gaps: int = 0
    restarts: int = 0
    unknown_payloads: int = 0
    silences: int = 0
    silence_ms_max: float = 0.0
    interarrival_ms_max: float = 0.0
    jitters_ms: list[float] = dataclasses.field(default_factory=list)
    latencies_ms: list[float] = dataclasses.field(default_factory=list)
    marker_latencies_ms: list[float] = dataclasses.field(default_factory=list)
    markers: int = 0
    markers_skipped: int = 0
    decoded_gap_ms: float = 0.0
    lateness_ms: list[float] = dataclasses.field(default_factory=list)
    setups_ok: int = 0
    setups_failed: int = 0
    connected_ms: list[float] = dataclasses.field(default_factory=list)
    first_packet_ms: list[float] = dataclasses.field(default_factory=list)


class IntervalAggregator:
    def __init__(self) -> None:
        self._groups: dict[tuple[str, str], _Group] = defaultdict(_Group)

    def add_listener(self, booth: str, role: str, rtp: IntervalStats, latencies_ms: list[float], unknown: int, probe: ProbeInterval | None) -> None:
        g = self._groups[(booth, role)]
        g.sessions += 1
        g.packets += rtp.packets
        g.expected += rtp.expected
        g.lost += rtp.lost
        g.gaps += rtp.gaps
        g.restarts += rtp.restarts
        g.unknown_payloads += unknown
        g.silences += len(rtp.silences_ms)
        g.silence_ms_max = max([g.silence_ms_max, rtp.ongoing_silence_ms, *rtp.silences_ms])
        g.interarrival_ms_max = max(g.interarrival_ms_max, rtp.max_interarrival_ms)
        if rtp.expected or rtp.packets:
            g.jitters_ms.append(rtp.jitter_ms)
        g.latencies_ms.extend(latencies_ms)
        if probe is not None:
            g.marker_latencies_ms.extend(probe.marker_latencies_ms)
            g.markers += probe.markers
            g.markers_skipped += probe.markers_skipped
            g.decoded_gap_ms += probe.decoded_gap_ms

    def add_publisher(self, booth: str, packets_sent: int, lateness_ms: list[float]) -> None:
        g = self._groups[(booth, "publisher")]
        g.sessions += 1
        g.packets += packets_sent
        g.lateness_ms.extend(lateness_ms)

    def add_setup(self, booth: str, role: str, ok: bool, connected_ms: float | None, first_packet_ms: float | None) -> None:
        g = self._groups[(booth, role)]
        if ok:
            g.setups_ok += 1
            if connected_ms is not None:
                g.connected_ms.append(connected_ms)
            if first_packet_ms is not None:
                g.first_packet_ms.append(first_packet_ms)
        else:
            g.setups_failed += 1

    def take(self) -> list[dict]:
        records = []
        for (booth, role), g in sorted(self._groups.items()):
            record = {"booth": booth, "role": role, "sessions": g.sessions, "packets": g.packets}
            if role == "publisher":
                record["lateness_ms"] = percentiles(g.lateness_ms, ndigits=PUSHED_NDIGITS)
            else:
                record.update(
                    expected=g.expected,
                    lost=g.lost,
                    loss_pct=round(100.0 * g.lost / g.expected, 3) if g.expected else None,
                    jitter_ms_mean=round(float(np.mean(g.jitters_ms)), 3) if g.jitters_ms else None,
                    jitter_ms_max=round(max(g.jitters_ms), 3) if g.jitters_ms else None,
                    latency_ms=percentiles(g.latencies_ms, ndigits=PUSHED_NDIGITS),
                    gaps=g.gaps,
                    silences=g.silences,
                    silence_ms_max=round(g.silence_ms_max, 1),
                    interarrival_ms_max=round(g.interarrival_ms_max, 1),
                    restarts=g.restarts,
                    unknown_payloads=g.unknown_payloads,
                )
                if role == "probe":
                    record.update(
                        marker_latency_ms=percentiles(g.marker_latencies_ms, ndigits=PUSHED_NDIGITS),
                        markers=g.markers,
                        markers_skipped=g.markers_skipped,
                        decoded_gap_ms=round(g.decoded_gap_ms, 1),
                    )
            record["setups"] = {
                "ok": g.setups_ok,
                "failed": g.setups_failed,
                "connected_ms": percentiles(g.connected_ms, ndigits=PUSHED_NDIGITS),
                "first_packet_ms": percentiles(g.first_packet_ms, ndigits=PUSHED_NDIGITS),
            }
            records.append(record)
        self._groups.clear()
        return records
