"""Faults of the target stated in words: when the portal stopped answering, for how long, and what failed.

Owns the outage rule. An outage is a stretch of the run in which every HTTP request failed: consecutive
seconds that had requests, none of which succeeded, with at least ``OUTAGE_MIN_FAILED`` failures over at
least ``OUTAGE_MIN_S``. It is derived from the ``http_error_rate`` samples already on disk (each failure carries
its request and error class, ``harness.rehearsal.plugin``), so a crashed run's folder states its outages too.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pandas as pd

from .rundata import RunData
from .series import metric

OUTAGE_MIN_FAILED = 3  # fewer failures than this are errors, not an outage
OUTAGE_MIN_S = 1.0  # from the first to the last failure of the stretch
TOP_N = 4  # requests and error classes named per outage


@dataclasses.dataclass(frozen=True)
class Outage:
    start_s: float  # first failed request, since the load started
    end_s: float  # last failed request of the stretch
    recovered_s: float | None  # first request that succeeded again; None = not before the end of the run
    failed: int
    requests: tuple[tuple[str, int], ...]  # ("GET /path", failures), most frequent first
    errors: tuple[tuple[str, int], ...]  # ("TargetUnreachable: ...", count), most frequent first

    @property
    def duration_s(self) -> float:
        return (self.recovered_s if self.recovered_s is not None else self.end_s) - self.start_s

    def describe(self) -> str:
        until = (f"answered again at +{self.recovered_s:.0f} s" if self.recovered_s is not None
                 else f"did not answer again before the run ended (last failure at +{self.end_s:.0f} s)")
        what = ", ".join(f"{name} ({n})" for name, n in self.requests)
        why = ", ".join(f"{error} ({n})" for error, n in self.errors)
        return (f"The target stopped answering at +{self.start_s:.0f} s and {until}: all {self.failed} HTTP requests in "
                f"that time failed, among them {what}; errors: {why}.")

    def as_dict(self) -> dict[str, Any]:
        return {"start_s": round(self.start_s, 1), "end_s": round(self.end_s, 1),
                "recovered_s": None if self.recovered_s is None else round(self.recovered_s, 1), "failed": self.failed,
                "requests": [list(r) for r in self.requests], "errors": [list(e) for e in self.errors], "text": self.describe()}


def _top(values: pd.Series) -> tuple[tuple[str, int], ...]:
    counts = values.fillna("unknown").astype(str).value_counts()
    return tuple((str(k), int(v)) for k, v in counts.head(TOP_N).items())


def outages(run: RunData, t0: float) -> list[Outage]:
    samples = metric(run, "http_error_rate")
    if samples.empty:
        return []
    frame = samples.sort_values("t").reset_index(drop=True)
    frame = frame.assign(t_s=frame["t"] - t0, second=((frame["t"] - t0) // 1))
    per_second = frame.groupby("second")["value"].agg(["min", "size"])
    down = per_second["min"] >= 1.0  # every request of that second failed
    found: list[Outage] = []
    seconds = per_second.index.to_numpy()
    i = 0
    while i < len(seconds):
        if not down.iloc[i]:
            i += 1
            continue
        j = i
        while j + 1 < len(seconds) and down.iloc[j + 1]:
            j += 1
        rows = frame[(frame["second"] >= seconds[i]) & (frame["second"] <= seconds[j])]
        after = frame[(frame["second"] > seconds[j]) & (frame["value"] < 1.0)]
        start_s, end_s = float(rows["t_s"].min()), float(rows["t_s"].max())
        if len(rows) >= OUTAGE_MIN_FAILED and end_s - start_s >= OUTAGE_MIN_S:
            names = (rows["method"].fillna("").astype(str) + " " + rows["name"].fillna("?").astype(str)).str.strip() \
                if "method" in rows else rows["name"]
            found.append(Outage(start_s, end_s, float(after["t_s"].iloc[0]) if not after.empty else None, len(rows),
                                _top(names), _top(rows["error"] if "error" in rows else pd.Series(dtype=object))))
        i = j + 1
    return found
