"""Run directory, run.json, sample streams, summary.json and exit codes; files stay readable after a crash."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest

from harness.errors import EXIT_CODE_MEANINGS, ExitCode
from harness.results.run_folder import (
    SUMMARY_SCHEMA,
    GeneratorHealth,
    InvalidRunId,
    InvalidTransition,
    RunDirectory,
    RunDirectoryExists,
    RunStatus,
    SampleWriter,
    build_summary,
    exit_code,
    load_metric_samples,
    load_summary,
    new_run_id,
    public_url,
    read_samples,
)
from harness.scenario import load_scenario
from harness.results.slo import SloState, evaluate, parse_threshold

REPO = Path(__file__).resolve().parents[1]


def test_run_directory_is_created_with_run_json_at_once(tmp_path):
    scenario = load_scenario("smoke")
    run = RunDirectory.create(root=tmp_path, scenario=scenario.to_dict(), target_url="http://user:pw@127.0.0.1:8000/?token=abc")
    meta = json.loads(run.run_json.read_text())
    assert run.path.parent == tmp_path and run.samples_dir.is_dir()
    assert meta["status"] == "running" and meta["run_id"] == run.run_id
    assert meta["scenario"]["name"] == "smoke" and meta["scenario"]["event"]["rooms"][0]["name"] == "Main Hall"
    # no credentials in results
    assert meta["target"] == {"url": "http://127.0.0.1:8000/", "version": None}
    assert "pw" not in run.run_json.read_text() and "abc" not in run.run_json.read_text()
    assert meta["machine"]["cpu_count"] == os.cpu_count() and meta["machine"]["python"]
    assert meta["harness"]["version"] == "0.1.0"
    assert meta["harness"]["git_sha"] is None or len(meta["harness"]["git_sha"]) == 40


def test_run_json_is_updated_and_status_moves_once(tmp_path):
    run = RunDirectory.create(root=tmp_path, run_id="given-id")
    run.set_target_version("0c0ddc3")
    assert json.loads(run.run_json.read_text())["target"]["version"] == "0c0ddc3"
    health = GeneratorHealth(saturated=False, cpu_pct_max=61.5, loop_lag_p99_ms=4.0)
    run.finish(RunStatus.FINISHED, exit_code=ExitCode.OK, generator_health=health)
    meta = json.loads(run.run_json.read_text())
    assert (meta["status"], meta["exit_code"]) == ("finished", 0)
    assert meta["generator_health"]["cpu_pct_max"] == 61.5 and meta["ended_at"].endswith("Z")
    with pytest.raises(InvalidTransition):
        run.finish(RunStatus.INTERRUPTED, exit_code=ExitCode.INTERRUPTED)
    assert RunDirectory.open(run.path).status is RunStatus.FINISHED


def test_run_ids(tmp_path):
    assert new_run_id(now=0).startswith("19700101T000000Z-") and len(new_run_id()) == 23
    RunDirectory.create(root=tmp_path, run_id="nightly-1")
    with pytest.raises(RunDirectoryExists):
        RunDirectory.create(root=tmp_path, run_id="nightly-1")
    for bad in ("../escape", "a/b", "", ".hidden"):
        with pytest.raises(InvalidRunId):
            RunDirectory.create(root=tmp_path, run_id=bad)


def test_public_url_strips_credentials_query_and_fragment():
    assert public_url("https://a:b@portal.example.org:8443/base?code=X#f") == "https://portal.example.org:8443/base"
    assert public_url(None) is None


def test_sample_writer_flushes_on_interval_without_close(tmp_path):
    clock = {"now_s": 0.0}
    writer = SampleWriter(tmp_path / "s.jsonl", flush_interval_s=1.0, clock=lambda: clock["now_s"], background_flush=False)
    writer.write("jitter_ms", 1.0, t=100.0, booth="A/es")
    assert (tmp_path / "s.jsonl").read_text() == ""  # buffered: the interval has not passed
    clock["now_s"] = 1.0
    writer.write("jitter_ms", 2.0, t=101.0)
    lines = (tmp_path / "s.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [
        {"t": 100.0, "metric": "jitter_ms", "value": 1.0, "tags": {"booth": "A/es"}},
        {"t": 101.0, "metric": "jitter_ms", "value": 2.0},
    ]
    stats = writer.statistics()
    assert (stats.lines_written, stats.flushes, stats.closed) == (2, 1, False)
    writer.close()
    assert writer.statistics().closed


def test_background_flusher_writes_out_a_pause(tmp_path):
    with SampleWriter(tmp_path / "s.jsonl", flush_interval_s=0.05) as writer:
        writer.write("jitter_ms", 1.0)
        deadline = time.monotonic() + 5
        while (tmp_path / "s.jsonl").read_text() == "" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert json.loads((tmp_path / "s.jsonl").read_text())["value"] == 1.0


def test_exit_code_precedence():
    fail = evaluate([parse_threshold("jitter_ms", "max < 1")], {"jitter_ms": [5]})
    ok = evaluate([parse_threshold("jitter_ms", "max < 10")], {"jitter_ms": [5]})
    no_data_required = evaluate([parse_threshold("caption_delay_ms", "p95 < 1")], {})
    no_data_optional = evaluate([parse_threshold("caption_delay_ms", "p95 < 1", required=False)], {})
    thin_required = evaluate([parse_threshold("jitter_ms", "max < 10")], {"jitter_ms": [5]}, {"jitter_ms": 0.3})
    thin_optional = evaluate([parse_threshold("jitter_ms", "max < 10", required=False)], {"jitter_ms": [5]}, {"jitter_ms": 0.3})
    assert exit_code(ok) == ExitCode.OK == 0
    assert exit_code(ok + no_data_optional + thin_optional) == ExitCode.OK
    assert exit_code(ok + fail) == ExitCode.SLO_BREACHED == 1
    assert exit_code(ok + no_data_required) == ExitCode.INVALID_RUN == 3
    assert exit_code(ok + thin_required) == ExitCode.INVALID_RUN
    assert exit_code(fail + no_data_required) == ExitCode.INVALID_RUN  # an incomplete verdict is not trusted
    assert exit_code(fail + thin_required) == ExitCode.INVALID_RUN
    assert exit_code(fail, saturated=True) == ExitCode.INVALID_RUN
    assert exit_code(fail, harness_error=True) == ExitCode.INVALID_RUN
    assert exit_code(fail, invalid=True) == ExitCode.INVALID_RUN  # an engine died: its breach is no verdict
    assert exit_code(fail + no_data_required, invalid=True, saturated=True, interrupted=True) == ExitCode.INTERRUPTED == 130
    assert exit_code(()) == ExitCode.OK


def test_summary_states_invalid_run_with_its_reasons_and_the_shared_wording():
    ok = evaluate([parse_threshold("jitter_ms", "max < 10")], {"jitter_ms": [5]})
    event = {"t": 1.0e9, "kind": "engine_died", "text": "media engine e0 died at +25 s (exit code -9); audio measured for 18 of 60 s"}
    summary = build_summary(run_id="r", scenario_name="s", results=ok, started_at="x", ended_at="y", duration_s=60.0,
                            status=RunStatus.FINISHED, events=[event], invalid_reasons=[event["text"]])
    jsonschema.validate(summary, SUMMARY_SCHEMA)
    assert (summary["verdict"], summary["exit_code"]) == ("invalid", 3)
    assert summary["exit_code_meaning"] == EXIT_CODE_MEANINGS[ExitCode.INVALID_RUN]
    assert summary["events"] == [event]
    interrupted = build_summary(run_id="r", scenario_name="s", results=ok, started_at="x", ended_at="y", duration_s=9.0,
                                status=RunStatus.INTERRUPTED, interrupted=True)
    jsonschema.validate(interrupted, SUMMARY_SCHEMA)
    assert (interrupted["verdict"], interrupted["exit_code"], interrupted["status"]) == ("interrupted", 130, "interrupted")


def test_summary_is_schema_valid_and_round_trips(tmp_path):
    scenario = load_scenario("smoke")
    run = RunDirectory.create(root=tmp_path, scenario=scenario.to_dict())
    with run.sample_writer("engine-1") as writer:
        for i in range(100):
            writer.write("mouth_to_ear_latency_ms", 100 + i)
        writer.write("http_error_rate", 0)
    samples = load_metric_samples(run.path, [t.metric for t in scenario.slos])
    results = evaluate(scenario.slos, samples)
    summary = build_summary(
        run_id=run.run_id, scenario_name=scenario.name, results=results, started_at=run.metadata["started_at"],
        ended_at="2026-01-01T00:01:00.000Z", duration_s=60.0, status=RunStatus.FINISHED,
        generator_health=GeneratorHealth(saturated=False), counts={"listeners_started": 12},
    )
    jsonschema.validate(summary, SUMMARY_SCHEMA)
    run.write_summary(summary)
    loaded = load_summary(run.summary_json)
    assert loaded == summary
    by_metric = {row["metric"]: row for row in loaded["slos"]}
    assert by_metric["mouth_to_ear_latency_ms"]["state"] == "pass" and by_metric["mouth_to_ear_latency_ms"]["sample_count"] == 100
    assert by_metric["jitter_ms"]["state"] == "no_data" and by_metric["jitter_ms"]["observed"] is None
    assert by_metric["mouth_to_ear_latency_ms"]["line"] == scenario.slos[0].line
    assert loaded["slo_counts"] == {"pass": 2, "fail": 0, "no_data": len(scenario.slos) - 2, "insufficient_data": 0}
    assert (loaded["verdict"], loaded["exit_code"]) == ("invalid", ExitCode.INVALID_RUN)


# --- crash survival: a child writes samples and run.json updates, then is killed mid-run ---

WRITER_CHILD = r'''
import sys, time
from pathlib import Path
from harness.results.run_folder import RunDirectory
run = RunDirectory.create(root=Path(sys.argv[1]), run_id="crash")
writer = run.sample_writer("engine-1", flush_interval_s=0.2)
print("ready", flush=True)
i = 0
while True:
    writer.write("jitter_ms", i % 50, booth="Main Hall/es")
    i += 1
    if i % 100 == 0:
        run.set_target_version(f"v{i}")
    time.sleep(0.0005)
'''


def test_files_are_readable_after_the_writer_is_killed(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", WRITER_CHILD, str(tmp_path)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        stream = tmp_path / "crash" / "samples" / "engine-1.jsonl"
        deadline = time.monotonic() + 30
        while (not stream.exists() or stream.read_bytes().count(b"\n") < 600) and time.monotonic() < deadline:
            time.sleep(0.05)
        # readable while the child is still writing
        assert len(read_samples(tmp_path / "crash")) > 0
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL

    meta = json.loads((tmp_path / "crash" / "run.json").read_text())  # whole file, never half-written
    assert meta["status"] == "running" and meta["target"]["version"].startswith("v")
    frame = read_samples(tmp_path / "crash")
    assert len(frame) >= 600
    assert set(frame["metric"]) == {"jitter_ms"} and set(frame["booth"]) == {"Main Hall/es"}
    assert set(frame["source"]) == {"engine-1"}
    # every complete line parsed; at most the very last one was cut short by the kill
    raw_lines = stream.read_text().split("\n")
    assert len(frame) >= len([line for line in raw_lines if line]) - 1
    # the samples still feed a verdict
    results = evaluate([parse_threshold("jitter_ms", "max < 50")], load_metric_samples(tmp_path / "crash"))
    assert results[0].state is SloState.PASS and results[0].sample_count == len(frame)
