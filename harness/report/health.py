"""Generator health in the report: was the harness itself saturated, and when?

Owns the saturated *periods*. Media engines push their own verdict every second (``harness.media.health``:
loop lag p95 > 20 ms or CPU > 85 %) into ``media/media-*-seconds.jsonl``; the Locust process samples its
gevent hub lag ten times a second as ``generator_loop_lag_ms``, and a second whose p95 lag exceeds
``harness.results.run_folder.HUB_LAG_SATURATED_MS`` counts as saturated here. Adjacent saturated seconds (at most
``MERGE_GAP_S`` apart) form one period. Numbers measured inside a period describe the harness, not the target.

Whether the run as a whole counts as saturated is the run's own judgement (summary.json, made by
``harness.rehearsal.run`` with the tolerances in ``harness.results.run_folder``); periods inside the tolerance are still shown.
A run without summary.json is judged here with the same tolerances.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pandas as pd

from ..results.run_folder import HUB_LAG_SATURATED_MS, SATURATED_SECONDS_TOLERATED, SATURATED_SHARE_TOLERATED
from .rundata import RunData
from .series import metric

MERGE_GAP_S = 2.0


@dataclasses.dataclass(frozen=True)
class SaturatedPeriod:
    source: str  # "media engine e0" or "Locust hub"
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


def _periods(seconds: pd.Series, reasons: pd.Series, source: str) -> list[SaturatedPeriod]:
    """`seconds`: sorted saturated seconds since start; `reasons`: the reason text of each."""
    if seconds.empty:
        return []
    group = (seconds.diff() > MERGE_GAP_S).cumsum()
    periods = []
    for _, idx in seconds.groupby(group.to_numpy()).groups.items():
        span = seconds.loc[idx]
        why = "; ".join(dict.fromkeys(r for r in reasons.loc[idx] if r))  # unique, in order
        periods.append(SaturatedPeriod(source, float(span.min()), float(span.max()), why or "saturated"))
    return periods


def generator_health(run: RunData, t0: float) -> GeneratorHealthView:
    periods: list[SaturatedPeriod] = []
    engines = run.engine_seconds
    if not engines.empty:
        for engine, rows in engines.groupby("engine"):
            hot = rows[rows["saturated"]].sort_values("t")
            periods += _periods(((hot["t"] - t0) // 1).reset_index(drop=True), hot["reasons"].reset_index(drop=True), f"media engine {engine}")
    lag = metric(run, "generator_loop_lag_ms")
    hub_p99 = None
    if not lag.empty:
        hub_p99 = float(lag["value"].quantile(0.99))
        per_second = lag["value"].groupby((lag["t"] - t0) // 1).quantile(0.95)
        hot = per_second[per_second > HUB_LAG_SATURATED_MS]
        reasons = pd.Series([f"hub lag p95 {v:.0f} ms > {HUB_LAG_SATURATED_MS:.0f} ms" for v in hot], dtype=object)
        periods += _periods(pd.Series(hot.index, dtype=float), reasons, "Locust hub")
    judged = (run.summary or {}).get("generator_health") or (run.run_meta or {}).get("generator_health")
    if judged is not None:
        saturated = bool(judged.get("saturated"))
    else:
        # Same rule as harness.rehearsal.run: engines saturated beyond the tolerance, or a hub lag p99 over the limit.
        engine_hot_s = int(engines["saturated"].sum()) if not engines.empty else 0
        saturated = (engine_hot_s > max(SATURATED_SECONDS_TOLERATED, SATURATED_SHARE_TOLERATED * len(engines))
                     or (hub_p99 is not None and hub_p99 > HUB_LAG_SATURATED_MS))
    judged = judged or {}
    notes = tuple(judged.get("notes") or ())
    return GeneratorHealthView(
        saturated=saturated,
        periods=tuple(sorted(periods, key=lambda p: p.start_s)),
        engine_cpu_pct_max=float(engines["cpu_pct"].max()) if not engines.empty and engines["cpu_pct"].notna().any() else None,
        engine_lag_p95_max_ms=float(engines["loop_lag_p95_ms"].max()) if not engines.empty and engines["loop_lag_p95_ms"].notna().any() else None,
        hub_lag_p99_ms=hub_p99 if hub_p99 is not None else judged.get("loop_lag_p99_ms"),
        notes=notes,
        measured=not engines.empty or not lag.empty,
    )
