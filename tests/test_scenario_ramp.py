"""A probe's stepped ramp as a scenario's load (``load.ramp``): validation with line-accurate errors, the model,
the Locust shape following the ramp's levels, and a real headless rehearsal of scenarios/db-pool-ramp.yaml.

Locust is imported only in subprocesses (its gevent monkey-patching must not reach the pytest process).
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import run_locust

from harness.scenario import ScenarioError, load_scenario, parse_scenario

REPO = Path(__file__).resolve().parents[1]

EVENT = "event: {rooms: [{name: A, booths: [{language: es, interpreters: 2, listeners: 6}, {language: fr, interpreters: 1, listeners: 4}]}]}\n"
SLOS = "slos: {http_error_rate: ['rate < 0.1']}\n"


def scenario_text(load: str) -> str:
    return "name: ramp\n" + EVENT + load + SLOS


def test_ramp_builds_one_stage_per_step_and_keeps_the_plan():
    scenario = parse_scenario(scenario_text("load:\n  ramp: {probe: db-pool, levels: [1, 2, 4, 8], step_s: 5}\n"), "x.yaml")
    ramp = scenario.load.ramp
    assert ramp is not None and ramp.probe == "db-pool"
    assert ramp.plan.levels == (1, 2, 4, 8) and ramp.plan.step_s == 5.0
    assert ramp.spawn_rate_per_s == 10.0  # harness.scenario.ramp.DEFAULT_SPAWN_RATE_PER_S
    assert [(s.start_s, s.duration_s, s.listeners, s.spawn_rate_per_s) for s in scenario.load.stages] == [
        (0.0, 5.0, 1, 10.0), (5.0, 5.0, 2, 10.0), (10.0, 5.0, 4, 10.0), (15.0, 5.0, 8, 10.0)]
    assert scenario.load.total_duration_s == 20.0 and scenario.load.peak_listeners == 8
    data = scenario.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["load"]["ramp"] == {"probe": "db-pool", "plan": {"levels": [1, 2, 4, 8], "step_s": 5.0}, "spawn_rate_per_s": 10.0}


def test_stage_scenarios_have_no_ramp():
    assert load_scenario("smoke").load.ramp is None


@pytest.mark.parametrize("load, expected", [
    ("load:\n  stages: [{duration_s: 5, listeners: 1, spawn_rate_per_s: 1}]\n  ramp: {probe: db-pool, levels: [1], step_s: 5}\n",
     "x.yaml:5: load.ramp: give exactly one of 'stages' (explicit) or 'ramp' (a probe's stepped ramp)"),
    ("load:\n  admins: 1\n",
     "x.yaml:3: load: needs 'stages' (explicit) or 'ramp' (a probe's stepped ramp)"),
    ("load:\n  ramp:\n    probe: db-pool\n    levels: [2, 4, 4]\n    step_s: 5\n",
     "x.yaml:6: load.ramp.levels[2]: must be greater than the level before it, 4 (got 4)"),
    ("load:\n  ramp:\n    probe: db-pool\n    levels:\n      - 4\n      - 11\n    step_s: 5\n",
     "x.yaml:8: load.ramp.levels[1]: exceeds the event's listener capacity of 10 (got 11)"),
    ("load:\n  ramp: {probe: db-pol, levels: [1], step_s: 5}\n",
     "x.yaml:4: load.ramp.probe: must be one of db-pool, booth-state (got string 'db-pol') (did you mean 'db-pool'?)"),
    ("load:\n  ramp: {probe: workers, levels: [1], step_s: 5}\n",
     "x.yaml:4: load.ramp.probe: must be one of db-pool, booth-state (got string 'workers')"),
    ("load:\n  ramp:\n    probe: db-pool\n    levels: [1]\n    step_s: 0\n",
     "x.yaml:7: load.ramp.step_s: must be > 0 (got 0)"),
    ("load:\n  ramp:\n    probe: db-pool\n    step_s: 5\n",
     "x.yaml:4: load.ramp.levels: missing required key"),
])
def test_ramp_mistakes_are_one_line_at_their_key(load, expected):
    with pytest.raises(ScenarioError) as info:
        parse_scenario(scenario_text(load), "x.yaml")
    assert str(info.value) == expected


def test_handovers_are_checked_against_the_ramp_length():
    text = scenario_text("load:\n  ramp: {probe: booth-state, levels: [1, 2], step_s: 10}\n") + "handovers: {at: [{at_s: 25, booth: A/es}]}\n"
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, "x.yaml")
    assert str(info.value) == "x.yaml:6: handovers.at[0].at_s: must be before the end of the load stages at 20 s (got 25)"


SHAPE_PROBE = r'''
import json
from harness.scenario import parse_scenario
from harness.rehearsal.shape import ScenarioShape

class RampShape(ScenarioShape):
    scenario = parse_scenario(
        "name: x\n"
        "event: {rooms: [{name: A, booths: [{language: es, interpreters: 2, listeners: 8}]}]}\n"
        "load: {admins: 1, coordinators: 1, ramp: {probe: db-pool, levels: [2, 5, 8], step_s: 4, spawn_rate_per_s: 3}}\n"
        "slos: {http_error_rate: ['rate < 0.1']}\n", "x.yaml")

shape = RampShape()
clock = {"now_s": 0.0}
shape.get_run_time = lambda: clock["now_s"]
ticks = []
for t in (0, 3.9, 4, 7.9, 8, 11.9, 12, 30):
    clock["now_s"] = t
    tick = shape.tick()
    ticks.append(None if tick is None else list(tick))
print(json.dumps(ticks))
'''


def test_scenario_shape_follows_the_ramp_levels_on_top_of_fixed_users():
    done = subprocess.run([sys.executable, "-c", SHAPE_PROBE], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    fixed = 2 + 1 + 1  # interpreters + admins + coordinators
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [
        [fixed + 2, 3.0], [fixed + 2, 3.0], [fixed + 5, 3.0], [fixed + 5, 3.0], [fixed + 8, 3.0], [fixed + 8, 3.0], None, None]


def test_db_pool_ramp_rehearsal_user_counts_follow_the_levels(tmp_path):
    """scenarios/db-pool-ramp.yaml, shortened to three 8 s steps (Locust's --run-time does not cut a shape short)."""
    shipped = yaml.safe_load((REPO / "scenarios" / "db-pool-ramp.yaml").read_text())
    assert shipped["load"]["ramp"]["probe"] == "db-pool"
    levels = [2, 4, 6]
    shipped["load"]["ramp"].update(levels=levels, step_s=8)
    short = tmp_path / "db-pool-ramp-short.yaml"
    short.write_text(yaml.safe_dump(shipped, sort_keys=False))
    fixed = load_scenario(short).fixed_users

    done = run_locust(tmp_path / "runs", str(short), "ramp")
    # 0 or 1 is a verdict on the SLOs (not the subject here); 2 would be a harness or setup error.
    assert done.returncode in (0, 1), done.stderr[-2000:]
    with open(tmp_path / "runs" / "ramp" / "locust_stats_history.csv", newline="") as fh:
        counts = [int(row["user_count"]) for row in csv.DictReader(fh)]
    while counts and counts[-1] == 0:  # the last rows may be written after Locust stopped every user
        counts.pop()
    expected = [fixed + level for level in levels]
    assert max(counts) == expected[-1]
    assert counts == sorted(counts), f"user counts went down during the ramp: {counts}"
    # Each level is held (seen for at least 4 of its 8 s), in order.
    for users in expected:
        assert counts.count(users) >= 4, f"level {users} held for {counts.count(users)} s: {counts}"
    assert [c for c in dict.fromkeys(counts) if c in expected] == expected
