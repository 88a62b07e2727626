"""Stepped concurrency ramps: the load plan shared by the probes and the Locust shapes (shapes.py).

Owns :class:`StepPlan`: a list of concurrency levels, each held for a fixed time, and ``RAMP_PROBES``, the
probes whose load is such a ramp. The probes walk it with threads; :mod:`harness.rehearsal.ramp_shapes` turns the
same plan into a Locust ``LoadTestShape`` and :mod:`harness.scenario` validates a scenario's ``load.ramp``
with it. No locust import (and light: the scenario loader imports it).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from ..errors import VoxloadError


class RampError(VoxloadError, ValueError):
    """A ramp that cannot run (one line for the CLI)."""


# Probes whose load is a stepped concurrency ramp, so a scenario can borrow them as its load shape
# (``load.ramp``); the others (workers, security, restarts) are drills, not shapes.
RAMP_PROBES = ("db-pool", "booth-state")
# Users are started this fast within a step when the plan does not say: a level should be reached well inside its step.
DEFAULT_SPAWN_RATE_PER_S = 10.0


@dataclasses.dataclass(frozen=True)
class StepPlan:
    levels: tuple[int, ...]
    step_s: float

    def __post_init__(self) -> None:
        if not self.levels:
            raise RampError("a ramp needs at least one step")
        if any(level < 1 for level in self.levels):
            raise RampError(f"ramp levels must be >= 1, got {list(self.levels)}")
        if list(self.levels) != sorted(set(self.levels)):
            raise RampError(f"ramp levels must increase strictly, got {list(self.levels)}")
        if not 0 < self.step_s < math.inf:  # also refuses nan, which compares false with everything
            raise RampError(f"step length must be a finite number > 0 s, got {self.step_s}")

    @classmethod
    def parse(cls, text: str, step_s: float) -> StepPlan:
        """``"1,2,4,8"`` -> levels (1, 2, 4, 8)."""
        try:
            levels = tuple(int(part) for part in text.split(",") if part.strip())
        except ValueError:
            raise RampError(f"ramp {text!r}: expected comma-separated integers, e.g. 1,2,4,8") from None
        return cls(levels, step_s)

    @classmethod
    def doubling(cls, start: int, stop: int, step_s: float) -> StepPlan:
        levels: list[int] = []
        level = start
        while level <= stop:
            levels.append(level)
            level *= 2
        return cls(tuple(levels), step_s)

    @property
    def duration_s(self) -> float:
        return len(self.levels) * self.step_s

    def level_at(self, elapsed_s: float) -> int | None:
        """The concurrency for `elapsed_s` into the ramp; None once it is over."""
        if elapsed_s < 0:
            return self.levels[0]
        index = int(elapsed_s // self.step_s)
        return self.levels[index] if index < len(self.levels) else None

    def steps(self) -> Sequence[tuple[int, float, float]]:
        """(level, start_s, end_s) for every step."""
        return [(level, i * self.step_s, (i + 1) * self.step_s) for i, level in enumerate(self.levels)]
