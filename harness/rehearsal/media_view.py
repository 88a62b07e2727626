"""The media figures of a rehearsal as Locust shows them: their own web UI tab and console block.

The media engines' per-second aggregates (``harness.media.aggregate``) are not requests: a probe's latency
(~89 ms) and packet counts put in Locust's request table dominated its aggregated p95 and the web UI's
response-time chart. Here they are kept apart, per (booth, role), and shown as:

- a "Media" tab in Locust's web UI (``template_args`` ``extended_tabs``/``extended_tables``, rows added to
  ``/stats/requests`` as ``extended_stats``, the mechanism of Locust's ``extend_modern_web_ui.py`` example),
- a JSON route, :data:`MEDIA_ROUTE`,
- a block in the console summary at the end (:func:`console_block`).

Workers send their figures to the master with Locust's ``report_to_master``/``worker_report`` events. The
run-folder samples (media/*.csv) and the SLO evaluation do not read any of this.
"""

from __future__ import annotations

import dataclasses
import json
import threading

MEDIA_ROUTE = "/voxload/media"
MEDIA_TAB_KEY = "voxload-media"
# Key of the figures in a worker's report to the master (Locust's report_to_master data dict).
REPORT_KEY = "voxload_media"

# Column keys are single words: Locust's web UI camel-cases every key of /stats/requests before matching.
MEDIA_COLUMNS = (
    ("booth", "Booth"),
    ("role", "Role"),
    ("sessions", "Sessions"),
    ("packets", "Packets"),
    ("lost", "Lost"),
    ("loss", "Loss %"),
    ("p95", "Latency p95 (ms)"),
    ("worst", "Worst p95 (ms)"),
)


@dataclasses.dataclass
class MediaRow:
    """One (booth, role) since the start: packets and losses summed, the latest and worst second's p95."""

    booth: str
    role: str
    sessions: int = 0
    packets: int = 0
    expected: int = 0
    lost: int = 0
    latency_p95_ms: float | None = None
    worst_p95_ms: float | None = None

    @property
    def loss_pct(self) -> float | None:
        return round(100.0 * self.lost / self.expected, 3) if self.expected else None

    def as_table_row(self) -> dict:
        return {"booth": self.booth, "role": self.role, "sessions": self.sessions, "packets": self.packets,
                "lost": self.lost, "loss": self.loss_pct, "p95": self.latency_p95_ms, "worst": self.worst_p95_ms}


def _p95(group: dict) -> float | None:
    # A probe's marker latency is mouth-to-ear; other listeners only have the RTP-timestamp estimate.
    latency = group.get("marker_latency_ms") if group.get("role") == "probe" else group.get("latency_ms")
    if group.get("role") == "publisher":
        latency = group.get("lateness_ms")
    return latency.get("p95") if latency else None


class MediaFigures:
    """Media figures per (worker, booth, role); fed by engine aggregates or by workers' reports."""

    LOCAL = ""  # the source name of this process's own engines

    def __init__(self) -> None:
        self._lock = threading.Lock()  # engine stats arrive on the bridge's reader thread
        self._rows: dict[tuple[str, str, str], MediaRow] = {}

    def add_engine_record(self, record: dict, source: str = LOCAL) -> None:
        """One per-second ``stats`` push of a media engine (its ``groups``)."""
        with self._lock:
            for group in record.get("groups", []):
                key = (source, str(group.get("booth")), str(group.get("role")))
                row = self._rows.setdefault(key, MediaRow(key[1], key[2]))
                row.sessions = int(group.get("sessions", 0))
                row.packets += int(group.get("packets", 0))
                row.expected += int(group.get("expected", 0) or 0)
                row.lost += int(group.get("lost", 0) or 0)
                p95 = _p95(group)
                if p95 is not None:
                    row.latency_p95_ms = p95
                    row.worst_p95_ms = p95 if row.worst_p95_ms is None else max(row.worst_p95_ms, p95)

    def snapshot(self) -> list[dict]:
        """This process's own rows, as a worker sends them to the master."""
        with self._lock:
            return [dataclasses.asdict(r) for (source, _, _), r in self._rows.items() if source == self.LOCAL]

    def replace_from(self, source: str, rows: list[dict]) -> None:
        """A worker's latest snapshot replaces what it sent before (its rows are already cumulative)."""
        with self._lock:
            for key in [k for k in self._rows if k[0] == source]:
                del self._rows[key]
            for data in rows:
                row = MediaRow(**data)
                self._rows[(source, row.booth, row.role)] = row

    def rows(self) -> list[MediaRow]:
        """Rows merged over workers, sorted by booth and role."""
        with self._lock:
            merged: dict[tuple[str, str], MediaRow] = {}
            for (_, booth, role), row in self._rows.items():
                into = merged.setdefault((booth, role), MediaRow(booth, role))
                into.sessions += row.sessions
                into.packets += row.packets
                into.expected += row.expected
                into.lost += row.lost
                for name in ("latency_p95_ms", "worst_p95_ms"):
                    value = getattr(row, name)
                    if value is not None:
                        current = getattr(into, name)
                        setattr(into, name, value if current is None else max(current, value))
            return [merged[k] for k in sorted(merged)]


def console_block(figures: MediaFigures) -> list[str]:
    """Lines for the console summary at the end; empty when no engine reported anything."""
    rows = figures.rows()
    if not rows:
        return []
    lines = ["voxload media (per booth and role, whole run):",
             f"  {'booth':<38} {'role':<10} {'packets':>9} {'lost':>7} {'loss %':>7} {'p95 ms':>8} {'worst p95 ms':>13}"]
    for row in rows:
        lines.append(f"  {row.booth:<38} {row.role:<10} {row.packets:>9} {row.lost:>7} {_shown(row.loss_pct):>7} "
                     f"{_shown(row.latency_p95_ms):>8} {_shown(row.worst_p95_ms):>13}")
    return lines


def _shown(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def install_web_ui(web_ui, figures: MediaFigures) -> None:
    """Add the Media tab, its table and :data:`MEDIA_ROUTE` to Locust's web UI (Flask app)."""
    from flask import Response, request

    web_ui.template_args["extended_tabs"] = [{"title": "Media", "key": MEDIA_TAB_KEY}]
    web_ui.template_args["extended_tables"] = [
        {"key": MEDIA_TAB_KEY, "structure": [{"key": key, "title": title} for key, title in MEDIA_COLUMNS]}]

    def table() -> list[dict]:
        return [row.as_table_row() for row in figures.rows()]

    @web_ui.app.after_request
    def _add_media_stats(response):
        # The web UI polls /stats/requests; its tab renders `extended_stats` rows with the matching key.
        if not request.path.endswith("/stats/requests") or response.mimetype != "application/json":
            return response
        try:
            data = json.loads(response.get_data())
        except ValueError:
            return response  # not ours to break: Locust's own answer goes out unchanged
        data["extended_stats"] = [{"key": MEDIA_TAB_KEY, "data": table()}]
        response.set_data(json.dumps(data))
        return response

    @web_ui.app.route(MEDIA_ROUTE)
    @web_ui.auth_required_if_enabled
    def _media_figures():
        return Response(json.dumps({"columns": [k for k, _ in MEDIA_COLUMNS], "rows": table()}),
                        mimetype="application/json")
