"""The Locust load shape built from scenario stages, driven by a fake clock (no Locust run needed).

Importing locust runs ``gevent.monkey.patch_all()``, which must not happen inside the shared pytest
process (it would patch every other test's sockets and threads). So the probe below runs in a child
interpreter: it builds shapes, swaps ``get_run_time`` for a fake clock, calls ``tick()`` and prints JSON.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.scenario import load_scenario

REPO = Path(__file__).resolve().parents[1]

PROBE = r'''
import json, logging, sys, types
from locust import User
from locust.util.load_locustfile import is_shape_class
from harness.scenario import parse_scenario
from harness.rehearsal.shape import ScenarioShape, ShapeNotConfigured

records = []
class Capture(logging.Handler):
    def emit(self, record):
        records.append(record.getMessage())
logging.getLogger("harness.rehearsal.shape").addHandler(Capture())
logging.getLogger("harness.rehearsal.shape").setLevel(logging.INFO)

SCENARIO = parse_scenario(
    "name: x\n"
    "event: {rooms: [{name: A, booths: [{language: es, interpreters: 2, listeners: 10},"
    " {language: fr, interpreters: 3, listeners: 10}]}]}\n"
    "load:\n"
    "  admins: 1\n"
    "  coordinators: 2\n"
    "  stages:\n"
    "    - {duration_s: 10, listeners: 8, spawn_rate_per_s: 2}\n"
    "    - {duration_s: 20, listeners: 100%, spawn_rate_per_s: 4}\n"
    "    - {duration_s: 5, listeners: 0, spawn_rate_per_s: 10}\n"
    "slos: {jitter_ms: ['p95 < 30']}\n",
    "x.yaml",
)

def drive(shape, times):
    clock = {"now_s": 0.0}
    shape.get_run_time = lambda: clock["now_s"]  # the fake clock
    out = []
    for t in times:
        clock["now_s"] = t
        result = shape.tick()
        out.append(None if result is None else [r if not isinstance(r, list) else [c.__name__ for c in r] for r in result])
    return out

class XShape(ScenarioShape):
    scenario = SCENARIO

class ListenerUser(User):
    abstract = True

class WithClasses(ScenarioShape):
    scenario = SCENARIO
    user_classes = [ListenerUser]

class FromOption(ScenarioShape):
    scenario_option = "scenario"

class Nothing(ScenarioShape):
    pass

result = {"abstract_base_registered": is_shape_class(ScenarioShape), "subclass_registered": is_shape_class(XShape)}
result["ticks"] = drive(XShape(), [0, 5, 9.999, 10, 29.9, 30, 34.9, 35, 40])
result["transitions"] = list(records)
result["with_classes"] = drive(WithClasses(), [12])
option_shape = FromOption()
option_shape.runner = types.SimpleNamespace(environment=types.SimpleNamespace(parsed_options=types.SimpleNamespace(scenario="smoke")))
result["from_option"] = drive(option_shape, [0, 1e9])
try:
    Nothing().tick()
    result["unconfigured"] = None
except ShapeNotConfigured as exc:
    result["unconfigured"] = str(exc)
print(json.dumps(result))
'''

FIXED = 5 + 1 + 2  # interpreters + admins + coordinators of the probe's scenario


@pytest.fixture(scope="module")
def probe() -> dict:
    proc = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_base_class_is_abstract_so_importing_it_registers_no_shape(probe):
    assert probe["abstract_base_registered"] is False
    assert probe["subclass_registered"] is True


def test_tick_follows_the_stages_and_stops_after_the_last(probe):
    assert probe["ticks"] == [
        [FIXED + 8, 2.0],
        [FIXED + 8, 2.0],
        [FIXED + 8, 2.0],
        [FIXED + 20, 4.0],
        [FIXED + 20, 4.0],
        [FIXED + 0, 10.0],
        [FIXED + 0, 10.0],
        None,
        None,
    ]


def test_stage_transitions_are_logged_once_each(probe):
    assert probe["transitions"] == [
        "load shape: start -> stage 0 (8 listeners at 2/s)",
        "load shape: stage 0 (8 listeners at 2/s) -> stage 1 (20 listeners at 4/s)",
        "load shape: stage 1 (20 listeners at 4/s) -> stage 2 (0 listeners at 10/s)",
        "load shape: stage 2 (0 listeners at 10/s) -> end",
    ]


def test_user_classes_make_three_tuples(probe):
    assert probe["with_classes"] == [[FIXED + 20, 4.0, ["ListenerUser"]]]


def test_scenario_is_loaded_from_the_parsed_option_at_first_tick(probe):
    smoke = load_scenario("smoke")
    first = smoke.load.stages[0]
    assert probe["from_option"] == [[smoke.fixed_users + first.listeners, first.spawn_rate_per_s], None]


def test_unconfigured_shape_says_what_is_missing(probe):
    assert probe["unconfigured"].startswith("Nothing: set `scenario`")
