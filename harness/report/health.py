"""Generator health in the report: was the harness itself saturated, and when?

Owns the saturated *periods*: adjacent saturated seconds (at most ``MERGE_GAP_S`` apart) of one engine or one Locust
process form one period. Which seconds are saturated, and whether the run as a whole is, is
``harness.results.health``'s rule (the same one the run judged itself by); periods inside its tolerance are still
shown. The run's own judgement in summary.json stands; a run without summary.json is judged here by the same rule.
Numbers measured inside a period describe the harness, not the target.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..results.health import SaturatedSecond, judge_run_folder
from .rundata import RunData

MERGE_GAP_S = 2.0


@dataclasses.dataclass(frozen=True)
class SaturatedPeriod:
    source: str  # "media engine e0" or "Locust hub (<process stream>)"
    start_s: float  # since load start
    end_s: float
    reasons: str

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s + 1.0  # inclusive seconds

    def describe(self) -> str:
        return f"{self.source}: +{self.start_s:.0f} s to +{self.end_s:.0f} s ({self.duration_s:.0f} s; {self.reasons})"


@dataclasses.dataclass(frozen=True)
class GeneratorHealthView:
    saturated: bool
    periods: tuple[SaturatedPeriod, ...]
    engine_cpu_pct_max: float | None
    engine_lag_p95_max_ms: float | None
    hub_lag_p99_ms: float | None
    notes: tuple[str, ...]  # from summary.json (run.py's own judgement, teardown problems)
    measured: bool  # False when neither engines nor Locust left health data

    def warning(self) -> str | None:
        if not self.saturated:
            if self.periods:
                spans = "; ".join(p.describe() for p in self.periods[:6])
                return f"Brief generator saturation, within the run's tolerance: {spans}."
            return None
        if self.periods:
            spans = "; ".join(p.describe() for p in self.periods[:6])
            more = f" and {len(self.periods) - 6} more" if len(self.periods) > 6 else ""
            return f"The load generator was saturated: {spans}{more}. Numbers from these periods measure the harness, not the target."
        return "The load generator was saturated (" + "; ".join(self.notes) + "). Treat this run's numbers as the harness's limit, not the target's."

    def as_dict(self) -> dict[str, Any]:
        return {
            "saturated": self.saturated,
            "periods": [{**dataclasses.asdict(p), "duration_s": p.duration_s} for p in self.periods],
            "engine_cpu_pct_max": self.engine_cpu_pct_max,
            "engine_loop_lag_p95_max_ms": self.engine_lag_p95_max_ms,
            "locust_hub_lag_p99_ms": self.hub_lag_p99_ms,
            "notes": list(self.notes),
            "measured": self.measured,
        }


def _periods(seconds: list[SaturatedSecond], source: str) -> list[SaturatedPeriod]:
    """`seconds`: the saturated seconds of one source, by time (offsets since load start)."""
    periods: list[SaturatedPeriod] = []
    start = end = None
    why: dict[str, None] = {}
    for second in seconds:
        if end is not None and second.t_s - end > MERGE_GAP_S:
            periods.append(SaturatedPeriod(source, start, end, "; ".join(why) or "saturated"))
            start, why = None, {}
        start = second.t_s if start is None else start
        end = second.t_s
        why.update(dict.fromkeys(r for r in second.reasons.split("; ") if r))  # unique, in order
    if end is not None:
        periods.append(SaturatedPeriod(source, start, end, "; ".join(why) or "saturated"))
    return periods


def generator_health(run: RunData, t0: float) -> GeneratorHealthView:
    judgement = judge_run_folder(run.path)
    by_source: dict[tuple[str, str], list[SaturatedSecond]] = {}
    for second in judgement.seconds:
        shifted = dataclasses.replace(second, t_s=float((second.t_s - t0) // 1))
        by_source.setdefault((second.kind, second.source), []).append(shifted)
    periods: list[SaturatedPeriod] = []
    for (kind, source), seconds in by_source.items():
        periods += _periods(seconds, f"media engine {source}" if kind == "engine" else f"Locust hub ({source})")
    engines = run.engine_seconds
    judged = (run.summary or {}).get("generator_health") or (run.run_meta or {}).get("generator_health")
    saturated = bool(judged.get("saturated")) if judged is not None else judgement.saturated
    judged = judged or {}
    notes = tuple(judged.get("notes") or ())
    return GeneratorHealthView(
        saturated=saturated,
        periods=tuple(sorted(periods, key=lambda p: p.start_s)),
        engine_cpu_pct_max=float(engines["cpu_pct"].max()) if not engines.empty and engines["cpu_pct"].notna().any() else None,
        engine_lag_p95_max_ms=float(engines["loop_lag_p95_ms"].max()) if not engines.empty and engines["loop_lag_p95_ms"].notna().any() else None,
        hub_lag_p99_ms=judgement.hub_lag_p99_ms if judgement.hub_lag_p99_ms is not None else judged.get("loop_lag_p99_ms"),
        notes=notes,
        measured=judgement.measured,
    )
