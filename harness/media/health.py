"""Engine health: is the harness itself saturated? (So its own overload is never blamed on the target.)

Owns the event-loop lag probe (a task that sleeps ``PROBE_PERIOD_S`` and records how late it wakes), the
engine's CPU share (process CPU time / wall time, 100 % = one core), and the saturation verdict: loop lag
p95 above ``lag_p95_limit_ms`` (default 20 ms) or CPU above ``cpu_limit_pct`` (default 85 %).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time

import numpy as np

PROBE_PERIOD_S = 0.01


@dataclasses.dataclass(frozen=True)
class HealthSample:
    cpu_pct: float
    loop_lag_p95_ms: float
    loop_lag_max_ms: float
    saturated: bool
    reasons: tuple[str, ...]


class EngineHealth:
    def __init__(self, lag_p95_limit_ms: float = 20.0, cpu_limit_pct: float = 85.0) -> None:
        self.lag_p95_limit_ms = lag_p95_limit_ms
        self.cpu_limit_pct = cpu_limit_pct
        self._lags_ms: list[float] = []
        self._cpu_s = time.process_time()
        self._wall_s = time.monotonic()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._probe())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _probe(self) -> None:
        while True:
            due = time.monotonic() + PROBE_PERIOD_S
            await asyncio.sleep(PROBE_PERIOD_S)
            self._lags_ms.append(max(0.0, time.monotonic() - due) * 1000.0)

    def take_sample(self) -> HealthSample:
        cpu_s, wall_s = time.process_time(), time.monotonic()
        elapsed_s = max(1e-6, wall_s - self._wall_s)
        cpu_pct = 100.0 * (cpu_s - self._cpu_s) / elapsed_s
        self._cpu_s, self._wall_s = cpu_s, wall_s
        lags, self._lags_ms = self._lags_ms, []
        # No probe wake-up at all in the interval means the loop was blocked the whole time.
        lag_p95 = float(np.percentile(lags, 95)) if lags else elapsed_s * 1000.0
        lag_max = max(lags) if lags else lag_p95
        reasons = []
        if lag_p95 > self.lag_p95_limit_ms:
            reasons.append(f"loop lag p95 {lag_p95:.1f} ms > {self.lag_p95_limit_ms:g} ms")
        if cpu_pct > self.cpu_limit_pct:
            reasons.append(f"cpu {cpu_pct:.0f} % > {self.cpu_limit_pct:g} %")
        return HealthSample(round(cpu_pct, 1), round(lag_p95, 2), round(lag_max, 2), bool(reasons), tuple(reasons))
