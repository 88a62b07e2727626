"""Was the load generator itself saturated? The one rule, for the run's verdict and for the report.

Two kinds of generator seconds are judged the same way:
- media engine seconds: every engine pushes its own health each second (``harness.media.health``: loop lag p95 or
  CPU over its limits) into ``media/media-*-seconds.jsonl``;
- Locust hub seconds: each Locust process samples its gevent hub lag ten times a second (``generator_loop_lag_ms``
  under ``samples/``). A sample of L ms taken at t says the hub ran late over [t - L, t]; a second of one process
  is saturated when the hub ran late for more than ``HUB_LATE_MS_PER_S_SATURATED`` of it (a quarter). A hub
  blocked for 10 s leaves one sample of 10,000 ms, and all ten seconds it spanned count. Not a per-second p95: with
  ten samples a second that is one sample, and on a shared 2-core box one 54 ms wake-up in a second the hub lost
  8 % of marked it saturated.

A kind makes the run saturated (exit 3: its numbers measure the harness) when its saturated seconds exceed both
``SATURATED_SECONDS_TOLERATED`` and ``SATURATED_SHARE_TOLERATED`` of its seconds. Only seconds of the load are judged
when the run knows them (setup and teardown measure nothing of the target); saturated seconds outside are noted. A shorter spike (Chromium canaries
launching, setup work) is reported as tolerated, never silently dropped. ``harness.rehearsal.run`` judges a finished
run with :func:`judge_run_folder`; ``harness.report.health`` draws the periods from the same saturated seconds.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from .layout import MEDIA_DIR, media_engine, media_glob
from .run_folder import iter_sample_lines, sample_files, utc_now_iso

HUB_LATE_MS_PER_S_SATURATED = 250.0  # a Locust hub late for more than this of a second: Locust's timings measure the harness
SATURATED_SECONDS_TOLERATED = 3  # a shared machine has blips; saturated seconds beyond this ...
SATURATED_SHARE_TOLERATED = 0.05  # ... and beyond this share of a kind's seconds make the run invalid
HUB_LAG_METRIC = "generator_loop_lag_ms"  # written by harness.rehearsal.plugin's hub-lag sampler


@dataclasses.dataclass(frozen=True)
class SaturatedSecond:
    kind: str  # "engine" or "hub"
    source: str  # the engine ("e0", "w1.e0") or the Locust process's sample stream
    t_s: float  # epoch second (floor)
    reasons: str


@dataclasses.dataclass(frozen=True)
class KindJudgement:
    """One kind of generator second (engines or Locust hubs): how many were saturated, and does it count."""

    kind: str
    saturated_s: int
    measured_s: int

    @property
    def tolerated_s(self) -> float:
        return max(SATURATED_SECONDS_TOLERATED, SATURATED_SHARE_TOLERATED * self.measured_s)

    @property
    def saturated(self) -> bool:
        return self.saturated_s > self.tolerated_s


@dataclasses.dataclass(frozen=True)
class GeneratorJudgement:
    engines: KindJudgement
    hub: KindJudgement
    seconds: tuple[SaturatedSecond, ...]  # every saturated second, by time (outside the load window too)
    hub_lag_p99_ms: float | None  # run-wide, over every Locust process (shown, not judged)
    outside_s: int = 0  # saturated seconds before or after the load window: noted, not judged

    @property
    def saturated(self) -> bool:
        return self.engines.saturated or self.hub.saturated

    @property
    def measured(self) -> bool:
        return bool(self.engines.measured_s or self.hub.measured_s)

    def _span(self, kind: str) -> str:
        ts = [s.t_s for s in self.seconds if s.kind == kind]
        return f"between {utc_now_iso(min(ts))} and {utc_now_iso(max(ts))}" if ts else ""

    def invalid_reasons(self) -> list[str]:
        """Why the run is not valid evidence (empty unless saturated)."""
        out = []
        if self.engines.saturated:
            out.append(f"media engines saturated for {self.engines.saturated_s} of {self.engines.measured_s} engine-seconds, "
                       f"{self._span('engine')}: their numbers there measure the harness")
        if self.hub.saturated:
            out.append(f"Locust hub late > {HUB_LATE_MS_PER_S_SATURATED:.0f} ms a second for {self.hub.saturated_s} of {self.hub.measured_s} "
                       f"process-seconds, {self._span('hub')}: Locust's timings there measure the harness")
        return out

    def tolerated_notes(self) -> list[str]:
        """Saturated seconds within the tolerance: noted, not a verdict."""
        out = []
        if self.engines.saturated_s and not self.engines.saturated:
            out.append(f"media engines saturated for {self.engines.saturated_s} of {self.engines.measured_s} engine-seconds (tolerated)")
        if self.hub.saturated_s and not self.hub.saturated:
            out.append(f"Locust hub late > {HUB_LATE_MS_PER_S_SATURATED:.0f} ms a second for {self.hub.saturated_s} of {self.hub.measured_s} "
                       f"process-seconds, {self._span('hub')} (tolerated)")
        if self.outside_s:
            out.append(f"{self.outside_s} saturated generator second(s) outside the load (setup or teardown), not judged")
        return out


def judge_generator(engine_seconds: Iterable[tuple[str, float, bool, str]],
                    hub_lag: Iterable[tuple[str, float, float]],
                    window: tuple[float, float] | None = None) -> GeneratorJudgement:
    """The rule. `engine_seconds`: (engine, t epoch s, saturated, reasons) per engine and second;
    `hub_lag`: (Locust process stream, t epoch s, lag ms) per sample; `window`: the load's (start, end) epoch s."""
    hot: list[SaturatedSecond] = []
    engine_n = 0
    first_s, last_s = (math.floor(window[0]), window[1]) if window else (-math.inf, math.inf)

    def judged(second: float) -> bool:
        return first_s <= second <= last_s

    for engine, t, saturated, reasons in engine_seconds:
        engine_n += judged(math.floor(t))
        if saturated:
            hot.append(SaturatedSecond("engine", engine, float(math.floor(t)), reasons or "saturated"))
    samples = list(hub_lag)
    every_lag = [lag_ms for _, _, lag_ms in samples]
    seen = {(source, float(math.floor(t))) for source, t, _ in samples}
    late = hub_late_ms_per_second(samples)
    for (source, second), late_ms in sorted(late.items()):
        if late_ms > HUB_LATE_MS_PER_S_SATURATED:
            hot.append(SaturatedSecond("hub", source, second,
                                       f"hub late {late_ms:.0f} ms of the second > {HUB_LATE_MS_PER_S_SATURATED:.0f} ms"))
    hub_seconds = seen | {key for key, late_ms in late.items() if late_ms > HUB_LATE_MS_PER_S_SATURATED}
    return GeneratorJudgement(
        engines=KindJudgement("engine", sum(1 for s in hot if s.kind == "engine" and judged(s.t_s)), engine_n),
        hub=KindJudgement("hub", sum(1 for s in hot if s.kind == "hub" and judged(s.t_s)),
                          sum(1 for _, second in hub_seconds if judged(second))),
        seconds=tuple(sorted(hot, key=lambda s: (s.t_s, s.kind, s.source))),
        hub_lag_p99_ms=float(np.percentile(every_lag, 99)) if every_lag else None,
        outside_s=sum(1 for s in hot if not judged(s.t_s)),
    )


def hub_late_ms_per_second(hub_lag: Iterable[tuple[str, float, float]]) -> dict[tuple[str, float], float]:
    """(Locust process stream, epoch second) -> milliseconds of that second its hub ran late, from (stream, t, lag ms)
    samples: each sample's lateness [t - lag, t] is split over the seconds it overlaps."""
    late: dict[tuple[str, float], float] = {}
    for source, t, lag_ms in hub_lag:
        start = t - lag_ms / 1000.0
        for second in range(int(math.floor(start)), int(math.floor(t)) + 1):
            overlap_s = min(second + 1.0, t) - max(float(second), start)
            if overlap_s > 0:
                late[(source, float(second))] = late.get((source, float(second)), 0.0) + overlap_s * 1000.0
    return late


def read_engine_seconds(run_path: Path) -> Iterable[tuple[str, float, bool, str]]:
    for path in sorted((Path(run_path) / MEDIA_DIR).glob(media_glob("seconds"))):
        with open(path, encoding="utf-8", errors="replace") as fh:
            for raw in fh:
                try:
                    record = json.loads(raw)
                    health = record.get("health") or {}
                    yield (media_engine(path), float(record["t_epoch_s"]), bool(health.get("saturated")),
                           "; ".join(health.get("reasons") or []))
                except (ValueError, KeyError, TypeError, AttributeError):
                    continue  # the cut-short last line of a killed engine


def read_hub_lag(run_path: Path) -> Iterable[tuple[str, float, float]]:
    for path in sample_files(run_path):
        for line in iter_sample_lines(path):
            if line.metric == HUB_LAG_METRIC:
                yield line.source, line.t, line.value


def judge_run_folder(run_path: Path, window: tuple[float, float] | None = None) -> GeneratorJudgement:
    return judge_generator(read_engine_seconds(run_path), read_hub_lag(run_path), window)
