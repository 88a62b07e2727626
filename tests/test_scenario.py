"""Scenario files: shipped scenarios load into the expanded model; malformed ones give exact one-line errors.

Each fixture in tests/data/bad_scenarios/ states its expected message in its first line
(``# expect: LINE: KEY.PATH: message``); the loader must produce exactly ``FILE:`` + that as its first issue,
and ``python -m harness.scenario check`` must print it and exit 2 without a traceback.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.scenario import (
    AuthMode,
    HandoverMethod,
    Provisioning,
    ScenarioError,
    load_scenario,
    parse_scenario,
    resolve_scenario_path,
    scenarios_dir,
)
from harness.results.slo import METRICS

REPO = Path(__file__).resolve().parents[1]
BAD_DIR = REPO / "tests" / "data" / "bad_scenarios"
BAD_FILES = sorted(BAD_DIR.glob("*.yaml"))
SHIPPED = ("smoke", "conference", "large-event", "handover-drill", "db-pool-ramp")


def expected_message(path: Path) -> str:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# expect: "), f"{path.name} must state its expected message"
    return f"tests/data/bad_scenarios/{path.name}:{first.removeprefix('# expect: ')}"


def test_there_are_at_least_twelve_malformed_fixtures():
    assert len(BAD_FILES) >= 12


@pytest.mark.parametrize("path", BAD_FILES, ids=lambda p: p.stem)
def test_malformed_scenario_reports_file_line_and_key(path, monkeypatch):
    monkeypatch.chdir(REPO)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    error = info.value
    assert str(error) == expected_message(path)
    assert "\n" not in str(error)
    assert error.file == f"tests/data/bad_scenarios/{path.name}"
    assert error.line == int(expected_message(path).split(":")[1])


@pytest.mark.parametrize("name", ["interpreters_zero", "unknown_key", "yaml_syntax", "handover_single_interpreter"])
def test_check_command_prints_one_line_and_exits_2(name):
    path = BAD_DIR / f"{name}.yaml"
    proc = subprocess.run(
        [sys.executable, "-m", "harness.scenario", "check", str(path.relative_to(REPO))],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr == expected_message(path) + "\n"
    assert "Traceback" not in proc.stderr


def test_check_command_accepts_every_shipped_scenario_by_bare_name():
    proc = subprocess.run([sys.executable, "-m", "harness.scenario", "check", *SHIPPED],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count(": ok (") == len(SHIPPED)


def test_show_prints_the_resolved_scenario_as_json():
    proc = subprocess.run([sys.executable, "-m", "harness.scenario", "show", "smoke"],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["name"] == "smoke"
    assert [b["language"] for b in data["event"]["rooms"][0]["booths"]] == ["en", "fr"]
    assert data["slos"][0]["metric"] == "mouth_to_ear_latency_ms"


def test_missing_scenario_is_a_one_line_error(monkeypatch, tmp_path):
    monkeypatch.setenv("VOXLOAD_SCENARIOS_DIR", str(tmp_path))
    with pytest.raises(ScenarioError) as info:
        load_scenario("nonexistent")
    assert info.value.line == 1
    assert str(info.value).endswith("no such scenario file (bare names are looked up in " + str(tmp_path) + "/)")


def test_all_issues_are_reported_in_line_order(tmp_path):
    text = (
        "name: x\n"
        "event:\n"
        "  rooms:\n"
        "    - name: A\n"
        "      booths:\n"
        "        - {language: es, interpreters: 0, listeners: -1, colour: red}\n"
        "load: {stages: [{duration_s: 0, listeners: 1, spawn_rate_per_s: 1}]}\n"
        "slos: {jitter_ms: ['p95 < 30']}\n"
    )
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, "x.yaml")
    assert info.value.lines() == [
        "x.yaml:6: event.rooms[0].booths[0].colour: unknown key",
        "x.yaml:6: event.rooms[0].booths[0].interpreters: must be >= 1 (got 0)",
        "x.yaml:6: event.rooms[0].booths[0].listeners: must be >= 0 (got -1)",
        "x.yaml:7: load.stages[0].duration_s: must be > 0 (got 0)",
    ]


# --- valid scenarios ---


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_scenarios_load(name):
    scenario = load_scenario(name)
    assert scenario.name == name
    assert scenario.source_path == scenarios_dir() / f"{name}.yaml"
    assert scenario.slos and all(t.metric in METRICS and t.line and t.file for t in scenario.slos)
    assert scenario.load.peak_listeners <= scenario.event.listener_capacity


def test_smoke_is_a_short_ci_run_with_handovers_and_one_transcribed_booth():
    smoke = load_scenario("smoke")
    assert 45 <= smoke.load.total_duration_s <= 75
    assert len(smoke.event.rooms) == 1 and len(smoke.event.booths) == 2
    assert all(b.interpreters == 2 for b in smoke.event.booths)
    assert smoke.event.transcribed_count == 1
    assert smoke.handovers is not None and 1 <= len(smoke.handovers.schedule) <= 2
    assert smoke.target == type(smoke.target)(host=None, auth_mode=AuthMode.OPEN, provisioning=Provisioning.FORMS, keep=False)
    assert smoke.fixed_users == 4 + 1 + 1


def test_conference_and_large_event_shapes():
    conference = load_scenario("conference")
    assert (len(conference.event.rooms), len(conference.event.booths), conference.load.peak_listeners) == (2, 6, 300)
    assert 500 <= conference.load.total_duration_s <= 720
    large = load_scenario("large-event")
    assert len(large.event.booths) == 24
    # Contract 7.2: more than the 10-worker cap, so the run shows the cap.
    assert large.event.transcribed_count > 10


def test_generate_form_expands_rooms_booths_and_percentages():
    large = load_scenario("large-event")
    assert [r.name for r in large.event.rooms] == ["Room 1", "Room 2", "Room 3", "Room 4"]
    assert [b.language for b in large.event.rooms[0].booths] == ["en", "es", "fr", "de", "it", "pt"]
    assert [b.transcribed for b in large.event.booths] == [True] * 12 + [False] * 12
    assert large.event.listener_capacity == 24 * 20
    assert [s.listeners for s in large.load.stages] == [240, 480, 480, 0]
    assert [s.start_s for s in large.load.stages] == [0, 120, 240, 660]


def test_periodic_handovers_are_expanded_per_booth_inside_the_run():
    drill = load_scenario("handover-drill")
    assert drill.handovers.method is HandoverMethod.REQUEST
    es = drill.handovers.for_booth("Main Hall/es")
    assert es == tuple(float(t) for t in range(20, 180, 15))
    assert drill.handovers.for_booth("Main Hall/de") == es
    assert [h.at_s for h in drill.handovers.schedule] == sorted(h.at_s for h in drill.handovers.schedule)


def test_handovers_booths_all_skips_booths_without_backup(tmp_path):
    text = (
        "name: x\n"
        "event: {rooms: [{name: A, booths: [{language: es, interpreters: 2, listeners: 1},"
        " {language: fr, interpreters: 1, listeners: 1}]}]}\n"
        "load: {stages: [{duration_s: 30, listeners: 2, spawn_rate_per_s: 1}]}\n"
        "handovers: {every_s: 10, first_at_s: 5}\n"
        "slos: {jitter_ms: ['p95 < 30']}\n"
    )
    scenario = parse_scenario(text, "x.yaml")
    assert [(h.at_s, h.booth) for h in scenario.handovers.schedule] == [(5.0, "A/es"), (15.0, "A/es"), (25.0, "A/es")]
    assert scenario.handovers.method is HandoverMethod.OFFER  # the default


def test_defaults_are_applied():
    text = (
        "name: x\n"
        "event: {rooms: [{name: A, booths: [{language: es, interpreters: 1, listeners: 4}]}]}\n"
        "load: {stages: [{duration_s: 10, listeners: '50%', spawn_rate_per_s: 1}]}\n"
        "slos: {http_error_rate: [{threshold: 'rate < 0.01', required: false}]}\n"
    )
    scenario = parse_scenario(text, "x.yaml")
    assert scenario.target.host is None and scenario.target.auth_mode is AuthMode.OPEN
    assert (scenario.load.admins, scenario.load.coordinators) == (1, 1)
    assert scenario.load.stages[0].listeners == 2
    assert scenario.media.engines is None and scenario.media.probe_listener_share == 0.1
    assert scenario.handovers is None
    assert scenario.slos[0].required is False and scenario.slos[0].line == 4


def test_listener_assignment_interleaves_booths_by_weight():
    conference = load_scenario("conference")
    capacity = conference.event.listener_capacity
    picks = [conference.event.listener_booth(i).ref for i in range(capacity)]
    for booth in conference.event.booths:
        assert picks.count(booth.ref) == booth.listeners
    # any ramp prefix is spread like the whole audience: the first 30 listeners cover every booth
    assert {p for p in picks[:30]} == {b.ref for b in conference.event.booths}


def test_bare_names_resolve_to_the_scenarios_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_scenario_path("smoke") == REPO / "scenarios" / "smoke.yaml"
    assert resolve_scenario_path("custom/x.yaml") == Path("custom/x.yaml")


def test_resolved_content_is_plain_json():
    data = load_scenario("conference").to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["target"]["auth_mode"] == "open"
    assert data["load"]["stages"][1] == {"index": 1, "start_s": 60.0, "duration_s": 60.0, "listeners": 300, "spawn_rate_per_s": 4.0}
