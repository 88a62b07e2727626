"""Which canaries a scenario gets, and the scenario keys that ask for them (no browser needed)."""

from __future__ import annotations

from pathlib import Path

from harness.browser.rehearsal import browser_thresholds, plan_canaries
from harness.scenario import load_scenario, parse_scenario

REPO = Path(__file__).resolve().parents[1]


def test_defaults_none_in_conference_one_in_smoke():
    assert load_scenario("conference").media.browser_listeners == 0
    assert plan_canaries(load_scenario("conference")) == []
    smoke = load_scenario("smoke")
    assert smoke.media.browser_listeners == 1 and smoke.media.browser_interpreter is False
    # Smoke's browser thresholds are optional: a machine without Chromium reads no_data, not a failure.
    assert browser_thresholds(smoke) and not any(t.required for t in browser_thresholds(smoke))


def test_canary_listeners_spread_over_booths_like_the_audience():
    text = (REPO / "scenarios" / "smoke.yaml").read_text()
    text = text.replace("browser_listeners: 1", "browser_listeners: 3\n  browser_interpreter: true")
    scenario = parse_scenario(text, "three-canaries.yaml")
    plans = plan_canaries(scenario)
    assert [(p.name, p.role, p.booth_ref) for p in plans] == [
        ("l0", "listener", "Main Hall/en"), ("l1", "listener", "Main Hall/fr"), ("l2", "listener", "Main Hall/en"),
        ("i0", "interpreter", "Main Hall/en"),
    ]
    assert [p.booth_ref for p in plans[:3]] == [scenario.event.listener_booth(i).ref for i in range(3)]


def test_canary_process_never_imports_locust_or_gevent_and_the_owner_never_imports_playwright():
    import subprocess
    import sys

    probe = ("import sys, harness.browser.canary as c; "
             "print(sorted(m for m in ('locust', 'gevent') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, check=True)
    assert done.stdout.strip() == "[]"
    probe = ("import sys, harness.browser.rehearsal, harness.browser.fleet; "
             "harness.browser.chromium.unavailable_reason(); "
             "print(sorted(m for m in ('playwright', 'locust', 'gevent') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, check=True)
    assert done.stdout.strip() == "[]"
