"""Probes as Locust load shapes, for scenarios: stepped concurrency ramps (db-pool, booth-state fan-out).

Imports locust (so gevent's monkey patching): only the Locust process may import this module, after locust
itself (as a locustfile does), never pytest or an engine. The step arithmetic lives in :mod:`harness.scenario.ramp` (no locust), shared with the CLI probes.

Two ways in: a scenario names a probe ramp in ``load.ramp`` and ``harness.rehearsal.shape.ScenarioShape`` follows it
through :func:`ramp_target` (listeners are the ramped users: their audio-delay polls are the db-pool read
load); or a locustfile takes ``probe_shape(name, levels="1,2,4,8", step_s=10)``, a shape class bound to the
plan, as its own shape.
"""

from __future__ import annotations

from locust import LoadTestShape

from ..scenario.ramp import DEFAULT_SPAWN_RATE_PER_S, RAMP_PROBES, RampError, StepPlan


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
        return ramp_target(self.plan, self.get_run_time(), self.spawn_rate_per_s)


def ramp_target(plan: StepPlan, run_time_s: float, spawn_rate_per_s: float) -> tuple[int, float] | None:
    """What a stepped ramp asks Locust for at `run_time_s`: (users, spawn rate), or None once it is over.

    Shared by :class:`SteppedRampShape` and ``harness.rehearsal.shape.ScenarioShape`` (a scenario's ``load.ramp``,
    where the users are the listeners on top of the scenario's fixed users).
    """
    level = plan.level_at(run_time_s)
    return None if level is None else (level, spawn_rate_per_s)


def probe_shape(name: str, levels: str = "1,2,4,8,16,32", step_s: float = 10.0,
                spawn_rate_per_s: float = DEFAULT_SPAWN_RATE_PER_S) -> type[SteppedRampShape]:
    """The Locust shape class for probe `name` in a scenario; RampError for probes that are not ramps."""
    if name not in RAMP_PROBES:
        raise RampError(f"probe {name!r} has no Locust shape (ramps: {', '.join(RAMP_PROBES)})")
    return SteppedRampShape.configure(StepPlan.parse(levels, step_s), spawn_rate_per_s)
