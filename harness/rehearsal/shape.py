"""The Locust load shape of a scenario: ``load.stages`` (or a probe's ``load.ramp``) -> ``LoadTestShape.tick()``.

This module is Locust-facing (it imports locust, which monkey-patches with gevent): engine processes
must not import it (conventions item 3).

Semantics (Locust's, not k6's): while stage *i* runs (``start_s <= run time < end_s``) the shape asks
for ``fixed users + stage.listeners`` users at ``stage.spawn_rate_per_s``; Locust ramps towards that
target at that rate. After the last stage ``tick()`` returns None and Locust stops the test. With ``load.ramp`` (a probe's
stepped ramp, ``harness.rehearsal.ramp_shapes.ramp_target``) the listeners follow the ramp's levels instead, one
step after the other, and the test stops after the last step.
"Fixed users" are the ones present for the whole run: every interpreter, admin and coordinator
(``Scenario.fixed_users``). They are meant to be user classes with ``fixed_count`` set, which Locust
spawns before weighted classes, so listeners are the part that ramps.

Usage in a locustfile (the subclass is needed: the base class is abstract so that importing it does not
register a shape)::

    from harness.rehearsal.shape import ScenarioShape

    class ConferenceShape(ScenarioShape):
        scenario_option = "scenario"      # read --scenario from parsed options at the first tick
        # or: scenario = load_scenario("smoke")
        # optional: user_classes = [InterpreterUser, ListenerUser, ...]  -> 3-tuples
"""

from __future__ import annotations

import logging
from typing import ClassVar

from locust import LoadTestShape, User

from ..errors import VoxloadError
from .ramp_shapes import ramp_target
from ..scenario import Scenario, Stage, load_scenario

log = logging.getLogger(__name__)


class ShapeNotConfigured(VoxloadError, RuntimeError):
    """The shape has neither a ``scenario`` nor a parsed option naming one."""


def _describe(stage: Stage | None) -> str:
    return "end" if stage is None else f"stage {stage.index} ({stage.listeners} listeners at {stage.spawn_rate_per_s:g}/s)"


class ScenarioShape(LoadTestShape):
    abstract: ClassVar[bool] = True

    # Either set `scenario`, or name the parsed Locust option that holds a scenario name or path.
    scenario: ClassVar[Scenario | None] = None
    scenario_option: ClassVar[str | None] = None
    # When set, tick() returns (user_count, spawn_rate, user_classes) and Locust spawns only these classes.
    user_classes: ClassVar[list[type[User]] | None] = None

    def __init__(self) -> None:
        super().__init__()
        self._scenario: Scenario | None = type(self).scenario
        self._stage: Stage | None = None

    def resolved_scenario(self) -> Scenario:
        """The scenario, loaded on first use from the parsed option if not given directly."""
        if self._scenario is None:
            option = type(self).scenario_option
            options = getattr(getattr(self.runner, "environment", None), "parsed_options", None)
            value = getattr(options, option, None) if option else None
            if not value:
                raise ShapeNotConfigured(
                    f"{type(self).__name__}: set `scenario`, or `scenario_option` naming a Locust option that holds one"
                )
            self._scenario = load_scenario(value)
        return self._scenario

    @property
    def current_stage(self) -> Stage | None:
        return self._stage

    def _set_stage(self, new: Stage | None) -> None:
        if new == self._stage:
            return
        log.info("load shape: %s -> %s", "start" if self._stage is None else _describe(self._stage), _describe(new))
        self._stage = new

    def fixed_users(self, scenario: Scenario) -> int:
        """Users on top of the listeners; override if the locustfile's fixed classes differ."""
        return scenario.fixed_users

    @staticmethod
    def listener_target(scenario: Scenario, run_time_s: float) -> tuple[int, float] | None:
        """(listeners, spawn rate) at `run_time_s`: the probe ramp's level when ``load.ramp`` is set, else the stage's."""
        ramp = scenario.load.ramp
        if ramp is not None:
            return ramp_target(ramp.plan, run_time_s, ramp.spawn_rate_per_s)
        stage = scenario.load.stage_at(run_time_s)
        return None if stage is None else (stage.listeners, stage.spawn_rate_per_s)

    def tick(self) -> tuple[int, float] | tuple[int, float, list[type[User]] | None] | None:
        scenario = self.resolved_scenario()
        run_time_s = self.get_run_time()
        # With a ramp the stages mirror its steps one to one, so the transitions logged are the ramp's steps.
        self._set_stage(scenario.load.stage_at(run_time_s))
        target = self.listener_target(scenario, run_time_s)
        if target is None:
            return None
        listeners, spawn_rate_per_s = target
        users = self.fixed_users(scenario) + listeners
        if self.user_classes is not None:
            return users, spawn_rate_per_s, list(self.user_classes)
        return users, spawn_rate_per_s
