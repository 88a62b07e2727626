"""Paths as a person types them: every command run from a temporary working directory with relative arguments.

The bug this guards against: `voxload rehearse smoke` from a clean clone exited 2 ("portal exited with code 3")
because the relative results folder reached the portal's SQLite URL while the portal ran in another directory.
Tests that pass absolute paths from the repository root hid it. The three commands checked here are runs shared
with other tests (tests/conftest.py: the smoke rehearsal, the short auth-mode rehearsal, the db-pool probe), each
typed from its own temporary directory.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx

from conftest import REPO, TEST_PORTAL_ENV
from harness.target.embedded import EmbeddedStack
from harness.refstack.stack import Stack, StackConfig


def _only_run_folder(results: Path) -> Path:
    runs = [p for p in results.iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def test_readme_first_command_from_a_clean_directory(smoke_run):
    """`voxload rehearse smoke`, unchanged, from a directory that is not the checkout (the shared smoke run is that
    command: tests/conftest.py)."""
    done, run = smoke_run
    cwd = run.parent.parent
    assert REPO not in (cwd, *cwd.parents) and cwd.name == "somewhere"
    assert "did not start" not in done.stderr, done.stderr[-2000:]
    assert "is closed" not in done.stderr  # no probe wrote to a sample stream after the run closed it
    assert run == _only_run_folder(cwd / "reports")  # the relative default, resolved against where the command was typed
    meta = json.loads((run / "run.json").read_text())
    summary = json.loads((run / "summary.json").read_text())
    assert meta["status"] == "finished", meta.get("error")
    assert done.returncode == summary["exit_code"] == meta["exit_code"], done.stderr[-2000:]
    assert (run / "stack" / "interpretation.db").stat().st_size > 0  # the embedded portal's SQLite file, where it belongs
    assert summary["counts"]["listener_sessions"] > 0
    assert {row["metric"] for row in summary["slos"]} >= {"handover_gap_ms", "mouth_to_ear_latency_ms"}
    assert (run / "report.html").exists()


def test_locust_with_relative_locustfile_scenario_and_results_from_another_directory(short_auth_run_from_elsewhere):
    """`locust -f ../relative/conference.py --scenario my/short-auth.yaml --results-dir out` (the shared run: conftest.py)."""
    done, run = short_auth_run_from_elsewhere
    cwd = run.parent.parent
    assert REPO not in (cwd, *cwd.parents) and run == cwd / "out" / "rel"
    assert (run / "summary.json").exists(), done.stderr[-3000:]
    meta = json.loads((run / "run.json").read_text())
    summary = json.loads((run / "summary.json").read_text())
    assert meta["status"] == "finished"
    assert meta["scenario"]["source_path"] == str(cwd / "my" / "short-auth.yaml")
    assert done.returncode == summary["exit_code"]
    assert summary["scenario"] == "short-auth"
    assert summary["counts"]["listener_sessions"] > 0  # users ran against the stack the relative paths started
    assert (run / "stack" / "interpretation.db").exists()
    assert (run / "event.json").exists()


def test_probe_db_pool_from_a_clean_directory(small_db_pool_probe):
    """`voxload probe db-pool ... --results-dir out` typed in a directory that is not the checkout (the shared probe run
    is that command: tests/conftest.py)."""
    done, run = small_db_pool_probe
    cwd = run.parent.parent
    assert REPO not in (cwd, *cwd.parents) and run == cwd / "out" / "pool2"
    assert done.returncode == 0, done.stderr[-3000:]
    probe_dir = run / "probes" / "db-pool"
    assert (probe_dir / "finding.json").exists(), sorted(p.name for p in probe_dir.iterdir())
    assert (probe_dir / "stack" / "interpretation.db").exists()
    assert json.loads((run / "run.json").read_text())["status"] == "finished"


def test_stack_with_a_relative_data_dir_serves_from_there(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    stack = Stack(StackConfig.ephemeral(with_media=False, data_dir=Path("data"), portal_env=dict(TEST_PORTAL_ENV)))
    try:
        stack.start()
        assert stack.data_dir == tmp_path / "data"
        assert httpx.get(f"{stack.portal_url}/healthz", timeout=10).status_code == 200
        assert (tmp_path / "data" / "interpretation.db").exists()
    finally:
        stack.stop()


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        pending.extend(children.get(current, []))
    return found


def test_booth_access_token_reaches_the_embedded_stack_by_environment_only(tmp_path):
    token = "booth-token-never-in-ps-3f9a"
    target = EmbeddedStack(Path(os.path.relpath(tmp_path / "stack")), knobs={"BOOTH_ACCESS_TOKEN": token, **TEST_PORTAL_ENV})
    try:
        target.start()
        assert target.data_dir == tmp_path / "stack"
        pids = _descendants(target._proc.pid)
        assert len(pids) >= 3  # stack control, portal, relay
        for pid in pids:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            assert token not in cmdline, cmdline
        # The portal is in token mode (contract 3.5): the booth API refuses without the token, accepts with it.
        url = f"{target.portal_url}/api/events/no-such-event/booths/es/state"
        assert httpx.get(url, timeout=10).status_code == 403
        assert httpx.get(url, params={"token": token}, timeout=10).status_code != 403
    finally:
        target.stop()
