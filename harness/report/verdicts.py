"""The verdict table: one row per SLO, measured value against threshold, in three states (conventions item 9).

Owns where the rows come from. A finished run's rows are summary.json's, unchanged (the run judged them;
the report does not re-judge). A run that never wrote summary.json gets *provisional* rows, recomputed
from whatever data reached the disk with the same code the run uses (``harness.measures.collect`` and
``harness.slo.evaluate``), and the verdict ``error`` with exit code 2: an unfinished run cannot be signed.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .. import measures, slo
from ..results import EXIT_ERROR, Verdict
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
    state: str  # pass | fail | no_data
    observed: float | None
    sample_count: int
    file: str | None
    line: int | None

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
    verdict: str  # harness.results.Verdict value
    exit_code: int
    rows: tuple[SloRow, ...]
    provisional: bool  # rows recomputed from a run without summary.json
    reason: str | None  # why the verdict is what it is, when not obvious from the rows

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
    )


@dataclasses.dataclass(frozen=True)
class _SeenHandover:
    """What ``harness.measures`` needs of a handover (duck-typed like ``harness.run.HandoverRecord``)."""

    booth: str
    at_epoch_s: float
    ok: bool


def _recompute(run: RunData) -> tuple[SloRow, ...]:
    thresholds = []
    for doc in run.scenario.get("slos") or []:
        try:
            thresholds.append(slo.parse_threshold(doc["metric"], doc["source"], required=doc.get("required", True),
                                                  file=doc.get("file"), line=doc.get("line")))
        except (slo.SloError, KeyError):
            continue  # the scenario was validated when the run started; a bad row here means a hand-edited run.json
    if not thresholds:
        return ()
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
    return tuple(_row(r.as_dict()) for r in slo.evaluate(thresholds, values))


# A probe run judges no SLO: its outcome is its findings (harness.probes), so it gets its own verdict word.
PROBE_VERDICT = "findings"


def verdicts(run: RunData) -> Verdicts:
    if run.is_probe_run:
        meta = run.run_meta or {}
        code = meta.get("exit_code")
        if meta.get("status") == "finished" and code is not None:
            return Verdicts(PROBE_VERDICT, int(code), (), False, None)
        reason = f"the probe did not finish (status {meta.get('status', 'unknown')}{': ' + meta['error'] if meta.get('error') else ''})"
        return Verdicts(Verdict.ERROR.value, EXIT_ERROR, (), False, reason)
    if run.summary is not None:
        rows = tuple(_row(doc) for doc in run.summary.get("slos") or [])
        reason = run.summary.get("harness_error")
        return Verdicts(str(run.summary.get("verdict")), int(run.summary.get("exit_code", EXIT_ERROR)), rows, False, reason)
    rows = _recompute(run)
    status = (run.run_meta or {}).get("status", "unknown")
    error = (run.run_meta or {}).get("error")
    reason = f"the run did not finish (status {status}{': ' + error if error else ''}); SLO rows are provisional, recomputed from partial data"
    return Verdicts(Verdict.ERROR.value, EXIT_ERROR, rows, True, reason)
