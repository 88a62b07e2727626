"""The stepped ramp shared by the probes and their Locust shape (the shape runs in a subprocess: locust patches gevent)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness.probes.knee import CurveShape, kneedle
from harness.scenario.ramp import RampError, StepPlan

REPO = Path(__file__).resolve().parents[1]


def test_step_plan_levels_and_end():
    plan = StepPlan.parse("1,2,4", 5.0)
    assert [plan.level_at(t) for t in (0, 4.9, 5.0, 14.9, 15.0)] == [1, 1, 2, 4, None]
    assert plan.duration_s == 15.0
    for bad in ("4,2", "0,1", "a,b", ""):
        with pytest.raises(RampError):
            StepPlan.parse(bad, 1.0)


def test_kneedle_finds_the_bend_and_refuses_straight_lines():
    knee = kneedle([1, 2, 4, 8, 16, 32], [10, 10, 11, 12, 40, 200])
    assert knee is not None and knee.x == 16
    assert kneedle([1, 2, 3, 4], [1, 2, 3, 4]) is None
    assert kneedle([1, 2], [1, 5]) is None
    concave = kneedle([1, 2, 4, 8, 16], [100, 190, 250, 260, 262], CurveShape.CONCAVE_INCREASING)
    assert concave is not None and concave.x == 4


def test_locust_shape_follows_the_plan_and_stops():
    code = textwrap.dedent("""
        import locust  # first, as in a locustfile: gevent patches before anything imports ssl
        from harness.rehearsal.ramp_shapes import probe_shape
        from harness.scenario.ramp import RampError
        shape_cls = probe_shape("db-pool", levels="2,5", step_s=1.0, spawn_rate_per_s=3)
        shape = shape_cls()
        shape.start_time -= 0.5; print(shape.tick())
        shape.start_time -= 1.0; print(shape.tick())
        shape.start_time -= 1.0; print(shape.tick())
        try:
            probe_shape("security")
        except RampError as exc:
            print("refused", exc)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[:3] == ["(2, 3)", "(5, 3)", "None"]
    assert lines[3].startswith("refused")
