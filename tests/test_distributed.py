"""Locust's distributed mode: 1 master + 2 workers on loopback, each worker with its own media engine.

Real Locust processes, real embedded stack, real media. The merged results must match a single-process
run of the same scenario, and losing a worker must leave a valid partial result that names it.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import REPO
from harness.refstack.stack import free_port


def _start(args: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "locust", "-f", str(REPO / "scenarios" / "conference.py"), *args],
                            stdout=open(log, "w"), stderr=subprocess.STDOUT, cwd=REPO)


def _distributed(tmp_path: Path, scenario: str, run_id: str, kill_worker_after_s: float | None = None) -> tuple[int, Path]:
    port = free_port()
    master = _start(["--headless", "--only-summary", "--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
                     "--expect-workers", "2", "--scenario", scenario, "--results-dir", str(tmp_path), "--run-id", run_id],
                    tmp_path / "master.log")
    workers = [_start(["--worker", "--master-host", "127.0.0.1", "--master-port", str(port), "--scenario", scenario],
                      tmp_path / f"worker{i}.log") for i in range(2)]
    try:
        if kill_worker_after_s is not None:
            deadline = time.monotonic() + 120
            while not (tmp_path / run_id / "event.json").exists() and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(kill_worker_after_s)
            workers[1].send_signal(signal.SIGKILL)
        code = master.wait(timeout=300)
    finally:
        for p in [master, *workers]:
            if p.poll() is None:
                p.kill()
                p.wait()
    return code, tmp_path / run_id


def test_distributed_results_match_a_single_process_run(tmp_path, smoke_run):
    single_result, single = smoke_run
    assert single_result.returncode == 0
    code, run = _distributed(tmp_path, "smoke", "dist")
    assert code == 0, (tmp_path / "master.log").read_text()[-3000:]
    merged, alone = (json.loads((r / "summary.json").read_text()) for r in (run, single))
    assert [row["metric"] for row in merged["slos"]] == [row["metric"] for row in alone["slos"]]
    assert {row["state"] for row in merged["slos"]} == {"pass"}
    assert merged["counts"]["listener_sessions"] == alone["counts"]["listener_sessions"] == 12
    assert merged["counts"]["handovers_ok"] == alone["counts"]["handovers_ok"] == 2
    ratio = merged["counts"]["packets_received"] / alone["counts"]["packets_received"]
    assert 0.85 < ratio < 1.15, ratio
    workers = json.loads((run / "workers.json").read_text())
    assert [w["worker"] for w in workers] == ["w0", "w1"]
    assert all(w["done"] and w["lost_at"] is None and abs(w["clock_offset_ms"]) < 50 for w in workers)
    # Both workers' media reached the one results folder.
    assert {p.name.split("-")[1].split(".")[0] for p in (run / "media").glob("media-*-listeners.csv")} == {"w0", "w1"}


def test_losing_a_worker_leaves_a_valid_partial_result_naming_it(tmp_path):
    code, run = _distributed(tmp_path, str(REPO / "tests" / "data" / "scenarios" / "short.yaml"), "lost", kill_worker_after_s=12)
    assert code == 3, (tmp_path / "master.log").read_text()[-3000:]  # a lost worker: the run is not valid evidence
    summary = json.loads((run / "summary.json").read_text())
    assert json.loads((run / "run.json").read_text())["status"] == "finished"
    lost = [w for w in json.loads((run / "workers.json").read_text()) if w["lost_at"]]
    assert len(lost) == 1
    (event,) = [e for e in summary["events"] if e["kind"] == "worker_lost"]
    assert event["text"].startswith(f"Locust worker {lost[0]['worker']} was lost at +") and event["text"] in summary["invalid_reasons"]
    assert event["text"] in (run / "summary.md").read_text()
    # What the lost worker forwarded before it died is still in the results.
    assert (run / "samples" / f"{lost[0]['worker']}.jsonl").stat().st_size > 0
