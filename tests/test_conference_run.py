"""The locustfile as CI runs it: `locust -f scenarios/conference.py --headless` against the embedded stack.

Real Locust subprocesses (importing locust here would monkey-patch pytest's process), a real reference
stack, real aiortc publishers and listeners. Each run takes a minute or so.
"""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET

from conftest import REPO, run_locust as _locust


def test_smoke_scenario_passes_with_real_outcomes(smoke_run):
    result, run = smoke_run
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    states = {row["metric"]: row["state"] for row in summary["slos"]}
    assert set(states.values()) == {"pass"}, states
    # Listeners really received audio, and both scheduled handovers happened and were measured at listeners.
    assert summary["counts"]["packets_received"] > 1000
    assert summary["counts"]["handovers_ok"] == 2
    gap = next(row for row in summary["slos"] if row["metric"] == "handover_gap_ms")
    assert gap["sample_count"] >= 2 and gap["observed"] > 0
    captions = next(row for row in summary["slos"] if row["metric"] == "caption_delay_ms")
    assert captions["sample_count"] > 0  # the transcribed booth's captions were matched with what was said
    wer = next(row for row in summary["slos"] if row["metric"] == "caption_word_error_rate")
    assert wer["sample_count"] > 0  # captions from a real recogniser (pocketsphinx, the English booth)
    cases = ET.parse(run / "junit.xml").getroot().iter("testcase")
    assert len(list(cases)) == len(summary["slos"])
    assert json.loads((run / "run.json").read_text())["status"] == "finished"
    assert (run / "locust_stats.csv").exists()
    assert any((run / "media").glob("media-*-listeners.csv"))


def test_impossible_slo_exits_1(tmp_path):
    result = _locust(tmp_path, str(REPO / "tests" / "data" / "scenarios" / "impossible.yaml"), "impossible")
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads((tmp_path / "impossible" / "summary.json").read_text())
    states = {row["metric"]: row["state"] for row in summary["slos"]}
    assert states["mouth_to_ear_latency_ms"] == "fail"
    assert states["http_error_rate"] == "pass"
    failures = list(ET.parse(tmp_path / "impossible" / "junit.xml").getroot().iter("failure"))
    assert len(failures) == 1


def test_malformed_scenario_is_one_line_exit_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nevent:\n  rooms: []\n  bogus: 1\n")
    result = _locust(tmp_path, str(bad), "bad", timeout_s=60)
    assert result.returncode == 2
    line = [l for l in result.stderr.splitlines() if l.startswith("voxload:")]
    assert len(line) == 1 and str(bad) in line[0] and ":" in line[0]
    assert "Traceback" not in result.stderr


def test_auth_mode_rehearsal_uses_tokens_and_passes(short_auth_run_from_elsewhere):
    result, run = short_auth_run_from_elsewhere  # short-auth.yaml, shared with test_cli_paths (conftest.py)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    observed = {row["metric"]: row["observed"] for row in summary["slos"]}
    assert observed["listeners_receiving_ratio"] == 1.0  # listeners took the embed-token path (contract 6.5)
    assert observed["http_error_rate"] == 0.0  # the page's 401 on /api/auth/token is a listed outcome, not an error
    assert summary["counts"]["handovers_ok"] == 1


def test_same_scenario_runs_against_another_deployment_given_by_host(tmp_path):
    """`--host` drives a deployment the harness did not start; teardown deletes what the run created."""
    import os
    import signal

    from harness.clients.admin import AdminClient
    from harness.clients.http import PortalHttp
    from harness.refstack.stack import free_port

    password = "operator-secret-for-host-test"
    port = free_port()
    target = subprocess.Popen(
        [sys.executable, "-m", "harness", "stack", "up", "--portal-port", str(port), "--media-port", str(free_port()),
         "--media-api-port", str(free_port()), "--data-dir", str(tmp_path / "target")],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "ADMIN_PASSWORD": password},
    )
    try:
        for line in target.stdout:
            if line.startswith("Ctrl-C"):
                break
        host = f"http://127.0.0.1:{port}"
        result = subprocess.run(
            [sys.executable, "-m", "locust", "-f", str(REPO / "scenarios" / "conference.py"), "--headless", "--only-summary",
             "--scenario", str(REPO / "tests" / "data" / "scenarios" / "short.yaml"), "--host", host,
             "--results-dir", str(tmp_path), "--run-id", "host"],
            capture_output=True, text=True, timeout=240, cwd=REPO, env={**os.environ, "VOXLOAD_ADMIN_PASSWORD": password},
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        run = tmp_path / "host"
        assert json.loads((run / "run.json").read_text())["target"]["url"] == host
        assert not (run / "stack").exists()  # nothing embedded was started
        slug = json.loads((run / "event.json").read_text())["slug"]
        admin = AdminClient(PortalHttp.for_url(host))
        admin.login(password)
        assert slug not in [row.slug for row in admin.events_on_page(1)]  # deleted by the run's teardown
        for path in run.rglob("*"):
            if path.is_file():
                assert password not in path.read_text(errors="replace"), f"admin password leaked into {path}"
    finally:
        target.send_signal(signal.SIGTERM)
        target.wait(timeout=30)
