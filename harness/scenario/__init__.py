"""Scenario files: what event to simulate, how load ramps, when handovers happen, which SLOs judge the run.

The public API (everything else in this package is internal)::

    from harness.scenario import load_scenario, ScenarioError
    scenario = load_scenario("smoke")            # or a path; bare names resolve to scenarios/NAME.yaml
    scenario.event.booths                        # expanded BoothSpec tuple, generator form already applied
    scenario.load.stages                         # Stage(index, start_s, duration_s, listeners, spawn_rate_per_s)
    scenario.load.ramp                           # RampSpec(probe, plan, spawn_rate_per_s) or None (load.ramp)
    scenario.handovers.schedule                  # HandoverAt(at_s, booth="ROOM/LANG"), sorted
    scenario.slos                                # harness.results.slo.Threshold tuple, with file and line

Modules: ``marked_yaml`` (YAML with line numbers), ``schema`` (the JSON Schema), ``schema_check``
(jsonschema errors -> one-line issues), ``semantics`` (cross-field rules), ``model`` (frozen dataclasses),
``loader`` (name resolution and the pipeline), ``errors``. ``python -m harness.scenario check FILE``
validates files from the shell (exit 0 valid, 2 invalid). Format reference: scenarios/README.md.
"""

from .errors import ScenarioError, ScenarioIssue
from .loader import DEFAULT_SCENARIO, load_scenario, parse_scenario, resolve_scenario_path, scenarios_dir
from .model import (
    AuthMode,
    BoothSpec,
    EventSpec,
    HandoverAt,
    HandoverMethod,
    HandoverSpec,
    LoadSpec,
    MediaSpec,
    Provisioning,
    RampSpec,
    RoomSpec,
    Scenario,
    Stage,
    Target,
    ThinkTime,
)

__all__ = [
    "DEFAULT_SCENARIO",
    "AuthMode",
    "BoothSpec",
    "EventSpec",
    "HandoverAt",
    "HandoverMethod",
    "HandoverSpec",
    "LoadSpec",
    "MediaSpec",
    "Provisioning",
    "RampSpec",
    "RoomSpec",
    "Scenario",
    "ScenarioError",
    "ScenarioIssue",
    "Stage",
    "Target",
    "ThinkTime",
    "load_scenario",
    "parse_scenario",
    "resolve_scenario_path",
    "scenarios_dir",
]
