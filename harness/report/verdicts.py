"""The verdict table: one row per SLO, measured value against threshold, in pass/fail/no data/insufficient data.

Owns where the rows come from. A finished run's rows are summary.json's, unchanged (the run judged them;
the report does not re-judge). A run that never wrote summary.json gets *provisional* rows, recomputed
from whatever data reached the disk with the same code the run uses (``harness.results.measures.collect`` and
``harness.results.slo.evaluate``), and the verdict ``invalid`` with exit code 3 (``interrupted``/130 when Ctrl-C stopped
it): an unfinished run cannot be signed. Run events (an engine that died, a lost worker) come from summary.json,
or for an unfinished run from the files the bridge left (``harness.results.measures.engine_death_events``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..results import measures
from ..results import slo
from ..errors import ExitCode
from ..results.run_folder import Verdict, verdict_for
from .rundata import RunData
from .series import metric


@dataclasses.dataclass(frozen=True)
class SloRow:
    metric: str
    source: str
    aggregation: str
    op: str
    bound: float
    unit: str
    required: bool
    state: str  # pass | fail | no_data | insufficient_data
    observed: float | None
    sample_count: int
    file: str | None
    line: int | None
    coverage: float | None = None

    @property
    def coverage_text(self) -> str:
        return "" if self.coverage is None else f"{100 * self.coverage:.0f} %"

    @property
    def measured_text(self) -> str:
        return "no data" if self.observed is None else f"{_number(self.observed)}{self._unit_suffix}"

    @property
    def threshold_text(self) -> str:
        return f"{self.aggregation} {self.op} {_number(self.bound)}{self._unit_suffix}"

    @property
    def _unit_suffix(self) -> str:
        # Ratios and counts read better bare ("0.02"), times and percentages with their unit.
        return "" if self.unit in ("ratio", "count", "") else f" {self.unit}"

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "measured": self.measured_text, "threshold": self.threshold_text}


@dataclasses.dataclass(frozen=True)
class Verdicts:
    verdict: str  # harness.results.run_folder.Verdict value
    exit_code: int
    rows: tuple[SloRow, ...]
    provisional: bool  # rows recomputed from a run without summary.json
    reason: str | None  # why the verdict is what it is, when not obvious from the rows
    events: tuple[dict[str, Any], ...] = ()  # run events with a time: engine died, worker lost, Ctrl-C
    invalid_reasons: tuple[str, ...] = ()  # why the run is not valid evidence (exit 3)

    @property
    def event_texts(self) -> list[str]:
        return [str(e.get("text")) for e in self.events]

    def row(self, metric_name: str) -> SloRow | None:
        return next((r for r in self.rows if r.metric == metric_name), None)


def _number(value: float) -> str:
    """Readable precision: 1,000 / 57.3 / 0.02 / 1.5e-05."""
    size = abs(value)
    if value == int(value) and size < 1e15:
        return f"{int(value):,}"
    if size >= 100:
        return f"{value:,.0f}"
    if size >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def _unit(metric_name: str) -> str:
    known = slo.METRICS.get(metric_name)
    return known.unit if known else ""


def _row(doc: dict[str, Any]) -> SloRow:
    return SloRow(
        metric=str(doc["metric"]), source=str(doc["source"]), aggregation=str(doc["aggregation"]), op=str(doc["op"]),
        bound=float(doc["bound"]), unit=str(doc.get("unit") or _unit(doc["metric"])),
        required=bool(doc.get("required", True)), state=str(doc["state"]),
        observed=None if doc.get("observed") is None else float(doc["observed"]), sample_count=int(doc.get("sample_count", 0)),
        file=doc.get("file"), line=doc.get("line"),
        coverage=None if doc.get("coverage") is None else float(doc["coverage"]),
    )


@dataclasses.dataclass(frozen=True)
class _SeenHandover:
    """What ``harness.results.measures`` needs of a handover (duck-typed like ``harness.rehearsal.run.HandoverRecord``)."""

    booth: str
    at_epoch_s: float
    ok: bool


def _recompute(run: RunData) -> tuple[tuple[SloRow, ...], tuple[dict[str, Any], ...]]:
    thresholds = []
    for doc in run.scenario.get("slos") or []:
        try:
            thresholds.append(slo.parse_threshold(doc["metric"], doc["source"], required=doc.get("required", True),
                                                  file=doc.get("file"), line=doc.get("line")))
        except (slo.SloError, KeyError):
            continue  # the scenario was validated when the run started; a bad row here means a hand-edited run.json
    t0 = run.start_epoch_s
    end = _last_sample_epoch_s(run)
    events = tuple(measures.engine_death_events(run.path, t0, end)) if t0 is not None and end is not None else ()
    if not thresholds:
        return (), events
    outcomes = metric(run, "handover_failure_rate")
    durations = metric(run, "handover_duration_ms")
    seen = []
    for t, value, booth in outcomes[["t", "value", "booth"]].itertuples(index=False) if not outcomes.empty else ():
        match = durations[(durations["booth"] == booth) & ((durations["t"] - t).abs() < 0.5)]
        seen.append(_SeenHandover(str(booth), t - (float(match["value"].iloc[0]) / 1000.0 if not match.empty else 0.0), value == 0.0))
    booths = ((run.event or {}).get("booths") or {}).values()
    transcribed = [b["booth_id"] for b in booths if b.get("transcribed")]
    captioned = set(metric(run, "caption_delay_ms")["booth"].dropna().astype(str)) if not run.samples.empty else set()
    values = measures.collect(run.path, seen, transcribed, captioned)
    return tuple(_row(r.as_dict()) for r in slo.evaluate(thresholds, values)), events


def _last_sample_epoch_s(run: RunData) -> float | None:
    ends = [float(run.samples["t"].max())] if not run.samples.empty else []
    ends += [float(run.listeners["t_epoch_s"].max())] if not run.listeners.empty else []
    return max(ends) if ends else None


# A probe run judges no SLO: its outcome is its findings (harness.probes), so it gets its own verdict word.
PROBE_VERDICT = "findings"


def verdicts(run: RunData) -> Verdicts:
    meta = run.run_meta or {}
    if run.is_probe_run:
        code = meta.get("exit_code")
        if meta.get("status") == "finished" and code is not None:
            return Verdicts(PROBE_VERDICT, int(code), (), False, None)
        reason = f"the probe did not finish (status {meta.get('status', 'unknown')}{': ' + meta['error'] if meta.get('error') else ''})"
        code = ExitCode.INTERRUPTED if meta.get("exit_code") == ExitCode.INTERRUPTED else ExitCode.INVALID_RUN
        return Verdicts(verdict_for(code).value, int(code), (), False, reason)
    if run.summary is not None:
        summary = run.summary
        rows = tuple(_row(doc) for doc in summary.get("slos") or [])
        code = int(summary.get("exit_code", ExitCode.INVALID_RUN))
        invalid = tuple(summary.get("invalid_reasons") or ())
        reason = summary.get("harness_error") or ("; ".join(invalid) if invalid else None)
        return Verdicts(str(summary.get("verdict") or verdict_for(code).value), code, rows, False, reason,
                        tuple(summary.get("events") or ()), invalid)
    rows, events = _recompute(run)
    status = meta.get("status", "unknown")
    error = meta.get("error")
    code = ExitCode.INTERRUPTED if meta.get("exit_code") == ExitCode.INTERRUPTED else ExitCode.INVALID_RUN
    reason = (f"the run did not finish (status {status}{': ' + error if error else ''}); this report is partial and its "
              f"SLO rows are provisional, recomputed from the data that reached the disk")
    invalid = tuple(e["text"] for e in events)
    return Verdicts(verdict_for(code).value, int(code), rows, True, reason, events, invalid)
