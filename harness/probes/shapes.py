"""Probes as Locust load shapes, for scenarios: stepped concurrency ramps (db-pool, booth-state fan-out).

Imports locust (so gevent's monkey patching): only the Locust process may import this module, after locust
itself (as a locustfile does), never pytest or an engine. The step arithmetic lives in :mod:`harness.probes.ramp` (no locust), shared with the CLI probes.

Wiring for the Locust layer (owned by the lead): ``probe_shape(name, levels="1,2,4,8", step_s=10)`` returns an
instance; a locustfile that defines ``shape_class`` gets it by module attribute, e.g.
``SteppedRampShape.configure(StepPlan.parse(...))``. The user classes that generate the load stay the
scenario's own (ListenerUser polls are the db-pool read load; InterpreterUser joins the fan-out load).
"""

from __future__ import annotations

from locust import LoadTestShape

from .ramp import RampError, StepPlan

# Users are started this fast within a step: a step's level should be reached well inside the step.
DEFAULT_SPAWN_RATE_PER_S = 10.0


class SteppedRampShape(LoadTestShape):
    """Hold each level of a :class:`StepPlan` for ``step_s``, then stop (``tick`` returns None)."""

    abstract = False
    plan: StepPlan = StepPlan((1, 2, 4, 8, 16, 32), 10.0)
    spawn_rate_per_s: float = DEFAULT_SPAWN_RATE_PER_S

    @classmethod
    def configure(cls, plan: StepPlan, spawn_rate_per_s: float = DEFAULT_SPAWN_RATE_PER_S) -> type[SteppedRampShape]:
        """A subclass bound to `plan` (Locust instantiates shape classes itself)."""
        return type(f"SteppedRamp_{'_'.join(map(str, plan.levels))}", (cls,),
                    {"plan": plan, "spawn_rate_per_s": spawn_rate_per_s, "abstract": False})

    def tick(self) -> tuple[int, float] | None:
        level = self.plan.level_at(self.get_run_time())
        return None if level is None else (level, self.spawn_rate_per_s)


# Probes whose load is a stepped concurrency ramp; the others (workers, security, restarts) are drills, not shapes.
RAMP_PROBES = ("db-pool", "booth-state")


def probe_shape(name: str, levels: str = "1,2,4,8,16,32", step_s: float = 10.0,
                spawn_rate_per_s: float = DEFAULT_SPAWN_RATE_PER_S) -> type[SteppedRampShape]:
    """The Locust shape class for probe `name` in a scenario; RampError for probes that are not ramps."""
    if name not in RAMP_PROBES:
        raise RampError(f"probe {name!r} has no Locust shape (ramps: {', '.join(RAMP_PROBES)})")
    return SteppedRampShape.configure(StepPlan.parse(levels, step_s), spawn_rate_per_s)
