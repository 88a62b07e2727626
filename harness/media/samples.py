"""Engine sample files: append-only, one set per engine in the results directory, flushed every interval.

Files (``{engine}`` is the engine name, e.g. ``e0``; times are wall-clock epoch seconds):

``media-{engine}-listeners.csv`` one row per listener per interval:
    t_epoch_s, engine, handle, booth, role (listener|probe), packets, expected, lost, jitter_ms
    (RFC 3550, at the end of the interval), latency_p50_ms, latency_p95_ms, latency_max_ms (payload hash,
    empty when no sample), gaps (sequence jumps), gap_packets_max, silence_max_ms (longest packet-free stretch
    that ended in, or is ongoing at the end of, the interval; 0 below the threshold), max_interarrival_ms
    (longest time between two packets, whatever the threshold), restarts (source/SSRC
    restarts, e.g. publisher override), unknown_payloads (payloads not in the loop index), marker_latency_ms
    (probe: mean mouth-to-ear), markers, markers_skipped, decoded_gap_ms (probe)
``media-{engine}-publishers.csv`` one row per publisher per interval:
    t_epoch_s, engine, handle, booth, packets_sent, lateness_p95_ms, lateness_max_ms (actual send - schedule)
``media-{engine}-events.jsonl`` one JSON object per event: ``setup`` (ok, phase/error on failure, offer_ms,
    post_ms, connected_ms, first_packet_ms), ``close`` (transitions), ``disconnected``, ``silence``.
``media-{engine}-seconds.jsonl`` every per-second aggregate the engine pushed to its client (aggregate.py).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from ..results.layout import media_file_name

LISTENER_COLUMNS = (
    "t_epoch_s", "engine", "handle", "booth", "role", "packets", "expected", "lost", "jitter_ms",
    "latency_p50_ms", "latency_p95_ms", "latency_max_ms", "gaps", "gap_packets_max", "silence_max_ms",
    "max_interarrival_ms", "restarts", "unknown_payloads", "marker_latency_ms", "markers", "markers_skipped", "decoded_gap_ms",
)
PUBLISHER_COLUMNS = ("t_epoch_s", "engine", "handle", "booth", "packets_sent", "lateness_p95_ms", "lateness_max_ms")


class SampleFiles:
    def __init__(self, results_dir: Path, engine: str) -> None:
        results_dir.mkdir(parents=True, exist_ok=True)
        self.paths = {kind: results_dir / media_file_name(engine, kind) for kind in ("listeners", "publishers", "events", "seconds")}
        self._files = {name: open(path, "a", newline="", encoding="utf-8") for name, path in self.paths.items()}
        self._listeners = csv.writer(self._files["listeners"])
        self._publishers = csv.writer(self._files["publishers"])
        for name, columns, writer in (
            ("listeners", LISTENER_COLUMNS, self._listeners),
            ("publishers", PUBLISHER_COLUMNS, self._publishers),
        ):
            if self._files[name].tell() == 0:
                writer.writerow(columns)

    def listener_row(self, row: dict) -> None:
        self._listeners.writerow(["" if row.get(c) is None else row[c] for c in LISTENER_COLUMNS])

    def publisher_row(self, row: dict) -> None:
        self._publishers.writerow(["" if row.get(c) is None else row[c] for c in PUBLISHER_COLUMNS])

    def event(self, record: dict) -> None:
        self._files["events"].write(json.dumps(record, separators=(",", ":")) + "\n")

    def second(self, record: dict) -> None:
        self._files["seconds"].write(json.dumps(record, separators=(",", ":")) + "\n")

    def flush(self) -> None:
        for f in self._files.values():
            f.flush()

    def close(self) -> None:
        for f in self._files.values():
            f.close()
