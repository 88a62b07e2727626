"""The generator-saturation rule (harness.results.health): engines and the Locust hub judged by saturated seconds.

A brief spike (one second: Chromium canaries launching, setup work) is noted as tolerated; sustained saturation makes
the run invalid evidence (exit 3). The rule is checked on its own, on run-folder files in the writers' formats, and in
real rehearsals whose Locust process is frozen from outside with SIGSTOP (its gevent hub really lags, as on an
overloaded machine) for one long second or for many short stretches.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO
from harness.results.health import (
    HUB_LAG_METRIC,
    HUB_LATE_MS_PER_S_SATURATED,
    SATURATED_SECONDS_TOLERATED,
    judge_generator,
    judge_run_folder,
)
from harness.results.run_folder import SampleWriter

T0 = 1_700_000_000.0
FAULT = str(REPO / "tests" / "data" / "scenarios" / "fault.yaml")
LOCUSTFILE = str(REPO / "scenarios" / "conference.py")
RUN_TIMEOUT_S = 240


def _hub(seconds: int, hot: set[int], source: str = "locust", lag_ms: float = 200.0) -> list[tuple[str, float, float]]:
    """Ten samples a second as the hub sampler takes them; in a `hot` second two of them lag `lag_ms` (stalls that
    began in the same second: 400 ms of it late by default)."""
    out = []
    for s in range(seconds):
        for i in range(10):
            out.append((source, T0 + s + 0.05 + i / 10, lag_ms if s in hot and i in (3, 7) else 1.5))
    return out


def _engine(seconds: int, hot: set[int], engine: str = "e0") -> list[tuple[str, float, bool, str]]:
    return [(engine, T0 + s + 0.5, s in hot, "loop lag p95 41.0 ms > 20 ms" if s in hot else "") for s in range(seconds)]


def test_one_second_hub_spike_is_tolerated_and_noted():
    judged = judge_generator(_engine(60, set()), _hub(60, {2}))
    assert not judged.saturated and judged.invalid_reasons() == []
    assert judged.hub.saturated_s == 1 and judged.hub.measured_s == 60
    # Before: one run-wide p99 over 600 samples, of which 2 lag 400 ms, was still under the limit here, but a
    # 1 s spike of 7 samples made it 62 ms on the real smoke run; the seconds rule does not depend on that share.
    [note] = judged.tolerated_notes()
    assert "Locust hub late > 250 ms a second" in note and "1 of 60 process-seconds" in note and note.endswith("(tolerated)")
    assert [(s.kind, s.t_s) for s in judged.seconds] == [("hub", T0 + 2)]


def test_a_dense_start_up_spike_that_moves_the_run_wide_p99_is_still_one_second():
    # Half the samples of one second lag (a hub catching up): over 20 s that is 2.5 % of samples, p99 far above 50 ms.
    lags = [("locust", T0 + s + 0.05 + i / 10, 300.0 if s == 1 and i >= 5 else 2.0) for s in range(20) for i in range(10)]
    judged = judge_generator([], lags)
    assert judged.hub_lag_p99_ms > 50.0  # the old run-wide p99 rule's limit: it would have made this run invalid
    assert not judged.saturated and judged.hub.saturated_s == 1


def test_sustained_hub_lag_is_saturated_with_its_span():
    hot = set(range(10, 10 + SATURATED_SECONDS_TOLERATED + 2))
    judged = judge_generator(_engine(60, set()), _hub(60, hot))
    assert judged.saturated and judged.hub.saturated and not judged.engines.saturated
    [reason] = judged.invalid_reasons()
    assert reason.startswith(f"Locust hub late > {HUB_LATE_MS_PER_S_SATURATED:.0f} ms a second for {len(hot)} of 60 process-seconds, between ")
    assert judged.tolerated_notes() == []


def test_a_long_stall_counts_every_second_it_spanned():
    # A hub blocked for 10 s samples nothing meanwhile, then once with a 10,000 ms lag: ten saturated seconds, not one
    # (the 50 ms of it in its last second are not a quarter of that second).
    lags = [("locust", T0 + s + 0.05 + i / 10, 1.0) for s in range(60) if not 20 <= s < 30 for i in range(10)]
    lags.append(("locust", T0 + 30.0 + 0.05, 10_000.0))  # blocked from +20.05 s to +30.05 s
    judged = judge_generator([], lags)
    assert judged.saturated and judged.hub.saturated_s == 10 and judged.hub.measured_s == 60
    assert [s.t_s - T0 for s in judged.seconds] == [float(s) for s in range(20, 30)]
    assert "hub late 950 ms of the second" in judged.seconds[0].reasons
    # A 1 s stall takes more than a quarter of at most two seconds: tolerated.
    short = judge_generator([], [lag for lag in lags if lag[2] < 100] + [("locust", T0 + 30.5, 1000.0)])
    assert short.hub.saturated_s == 2 and not short.saturated


def test_only_seconds_of_the_load_are_judged_and_the_rest_is_noted():
    # Ten hot seconds before the load started (workers connecting, the stack starting), three inside it.
    lags = _hub(60, set(range(0, 10)) | {30, 31, 32})
    everything = judge_generator([], lags)
    assert everything.saturated
    judged = judge_generator(_engine(60, {5, 6, 7, 8, 9}), lags, window=(T0 + 10.0, T0 + 60.0))
    assert not judged.saturated and judged.hub.saturated_s == 3 and judged.hub.measured_s == 50
    assert judged.engines.saturated_s == 0 and judged.engines.measured_s == 50
    assert judged.outside_s == 15
    assert "15 saturated generator second(s) outside the load (setup or teardown), not judged" in judged.tolerated_notes()
    # The same hot seconds inside the window are judged as ever.
    assert judge_generator([], lags, window=(T0, T0 + 60.0)).saturated


def test_tolerance_is_the_larger_of_seconds_and_share():
    # 5 % of 200 process-seconds is 10: 8 hot seconds are tolerated, 11 are not.
    assert not judge_generator([], _hub(200, set(range(8)))).saturated
    assert judge_generator([], _hub(200, set(range(11)))).saturated
    # The same rule for engines (the one rule judges both kinds).
    assert not judge_generator(_engine(200, set(range(8))), []).saturated
    assert judge_generator(_engine(200, set(range(11))), []).engines.saturated


def test_hub_seconds_are_per_locust_process():
    # Two processes each lag in different seconds: neither has a sustained stretch over the tolerance of its seconds...
    quiet = judge_generator([], _hub(40, {1, 2}, "w1") + _hub(40, {5, 6}, "w2"))
    assert quiet.hub.measured_s == 80 and quiet.hub.saturated_s == 4 and not quiet.saturated
    # ... and a healthy process's samples do not dilute a saturated one's seconds into a pass.
    busy = judge_generator([], _hub(40, set(range(30)), "w1") + _hub(40, set(), "w2"))
    assert busy.saturated and busy.hub.saturated_s == 30


def test_no_data_is_not_measured():
    judged = judge_generator([], [])
    assert not judged.measured and not judged.saturated and judged.hub_lag_p99_ms is None


def test_judged_from_the_files_the_writers_leave(tmp_path):
    """samples/*.jsonl through the real SampleWriter; media seconds as harness.media.samples writes them (one cut line)."""
    (tmp_path / "samples").mkdir()
    (tmp_path / "media").mkdir()
    stream = SampleWriter(tmp_path / "samples" / "locust.jsonl")
    for source, t, lag in _hub(30, set(range(5, 12))):
        stream.write(HUB_LAG_METRIC, lag, t=t, process="locust")
        stream.write("http_request_duration_ms", 9999.0, t=t, name="GET /")  # other metrics are not hub lag
    stream.close()
    with open(tmp_path / "media" / "media-e0-seconds.jsonl", "w") as fh:
        for engine, t, hot, reasons in _engine(30, {3}):
            fh.write(json.dumps({"t_epoch_s": t, "health": {"saturated": hot, "reasons": [reasons] if reasons else []},
                                 "groups": {}}) + "\n")
        fh.write('{"t_epoch_s": 1700000031.5, "hea')  # a killed engine's last line
    judged = judge_run_folder(tmp_path)
    assert judged.engines.measured_s == 30 and judged.engines.saturated_s == 1 and not judged.engines.saturated
    assert judged.hub.measured_s == 30 and judged.hub.saturated_s == 7 and judged.hub.saturated
    assert {s.source for s in judged.seconds} == {"e0", "locust"}


# --- real rehearsals: the Locust process frozen from outside ---


def _locust(cwd: Path, run_id: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "locust", "-f", LOCUSTFILE, "--headless", "--only-summary", "--scenario", FAULT,
         "--results-dir", "reports", "--run-id", run_id],
        cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for_audio(proc: subprocess.Popen, run: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        rows = sum(max(0, len(p.read_text(errors="replace").splitlines()) - 1) for p in (run / "media").glob("media-*-listeners.csv"))
        if rows >= 6:
            return
        if proc.poll() is not None:
            pytest.fail(f"the run ended (exit {proc.returncode}) before listeners measured audio:\n{proc.stdout.read()[-3000:]}")
        time.sleep(0.2)
    pytest.fail("timed out waiting for listeners measuring audio")


def _freeze(pid: int, stopped_s: float) -> None:
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(stopped_s)
    finally:
        os.kill(pid, signal.SIGCONT)


def test_sustained_hub_lag_in_a_real_run_is_exit_3(tmp_path):
    proc = _locust(tmp_path, "hubbusy")
    run = tmp_path / "reports" / "hubbusy"
    _wait_for_audio(proc, run)
    frozen_until = time.monotonic() + 8.0
    while time.monotonic() < frozen_until:  # a hub that keeps missing its 100 ms ticks, second after second
        _freeze(proc.pid, 0.3)
        time.sleep(0.2)
    out, _ = proc.communicate(timeout=RUN_TIMEOUT_S)
    assert proc.returncode == 3, out[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["generator_health"]["saturated"] is True and summary["verdict"] == "invalid"
    hub = [r for r in summary["invalid_reasons"] if r.startswith("Locust hub late")]
    assert len(hub) == 1, summary["invalid_reasons"]
    verdict = json.loads((run / "verdict.json").read_text())
    periods = [p for p in verdict["generator_health"]["periods"] if p["source"].startswith("Locust hub")]
    assert periods and max(p["duration_s"] for p in periods) >= 6, periods
    assert f"INVALID  {hub[0]}" in out


def test_one_second_hub_freeze_in_a_real_run_is_noted_not_invalid(tmp_path):
    proc = _locust(tmp_path, "hubspike")
    run = tmp_path / "reports" / "hubspike"
    _wait_for_audio(proc, run)
    _freeze(proc.pid, 1.0)  # as a blocking Chromium launch or setup step holds the hub once
    out, _ = proc.communicate(timeout=RUN_TIMEOUT_S)
    summary = json.loads((run / "summary.json").read_text())
    assert not [r for r in summary["invalid_reasons"] if "hub" in r], summary["invalid_reasons"]
    notes = [n for n in summary["generator_health"]["notes"] if n.startswith("Locust hub late")]
    assert len(notes) == 1 and notes[0].endswith("(tolerated)"), summary["generator_health"]
    # Exit 0 unless this shared machine saturated the media engines on their own (then said so, exit 3).
    engines_saturated = any(r.startswith("media engines saturated") for r in summary["invalid_reasons"])
    assert proc.returncode == (3 if engines_saturated else 0), out[-3000:]
    verdict = json.loads((run / "verdict.json").read_text())
    assert [p for p in verdict["generator_health"]["periods"] if p["source"].startswith("Locust hub")]
    assert "Brief generator saturation" in (run / "report.html").read_text() or engines_saturated


# --- the report judges a run without summary.json (a crash) by the same rule ---


def _crashed_run_with_hub_lag(tmp_path, hot: set[int]) -> Path:
    from harness.results.run_folder import RunDirectory

    run = RunDirectory.create(root=tmp_path, run_id="crashed", now=T0)
    with run.sample_writer("locust") as writer:
        for source, t, lag in _hub(60, hot):
            writer.write(HUB_LAG_METRIC, lag, t=t, process=source)
            writer.write("http_error_rate", 0.0, t=t, name="/admin/", method="GET")  # as harness.rehearsal.plugin writes them
            writer.write("http_req_duration_ms", 5.0, t=t, name="/admin/")
    return run.path


def test_report_of_a_crashed_run_with_one_hub_spike_shows_it_within_the_tolerance(tmp_path):
    from harness.report import build_report

    path = _crashed_run_with_hub_lag(tmp_path, {30})
    verdict = json.loads(build_report(path).verdict_json.read_text())
    health = verdict["generator_health"]
    assert health["saturated"] is False
    [period] = health["periods"]
    assert period["source"] == "Locust hub (locust)" and period["start_s"] == period["end_s"] == 30.0
    [statement] = [s["text"] for s in verdict["capacity"] if "generator" in s["text"]]
    assert statement.startswith("Brief generator saturation, within the run's tolerance: Locust hub (locust): +30 s to +30 s")
    assert 'id="generator-warning"' not in (path / "report.html").read_text()


def test_report_of_a_crashed_run_with_sustained_hub_lag_says_saturated(tmp_path):
    from harness.report import build_report

    path = _crashed_run_with_hub_lag(tmp_path, set(range(20, 30)))
    health = json.loads(build_report(path).verdict_json.read_text())["generator_health"]
    assert health["saturated"] is True
    [period] = health["periods"]
    assert (period["start_s"], period["end_s"], period["duration_s"]) == (20.0, 29.0, 10.0)
    assert "measure the harness" in (path / "report.html").read_text()
