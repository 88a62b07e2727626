"""Locust's distributed mode: 1 master + 2 workers on loopback, each worker with its own media engine.

Real Locust processes, real embedded stack, real media. The merged results must match a single-process
run of the same scenario, and losing a worker must leave a valid partial result that names it.
"""

from __future__ import annotations


import json
import os
import shutil
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


def _why(run: Path, log: Path) -> str:
    """The run's own reasons first (Locust's summary table fills the end of the log), then the log's end."""
    summary = json.loads((run / "summary.json").read_text()) if (run / "summary.json").exists() else {}
    rows = [f"{r['metric']}: {r['state']} (coverage {r.get('coverage')})" for r in summary.get("slos", []) if r["state"] != "pass"]
    return "\n".join([*summary.get("invalid_reasons", []), *rows, log.read_text()[-2000:]])


def test_distributed_results_match_a_single_process_run(tmp_path, smoke_run):
    single_result, single = smoke_run
    assert single_result.returncode == 0
    code, run = _distributed(tmp_path, "smoke", "dist")
    assert code == 0, _why(run, tmp_path / "master.log")
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


def _locust(cwd: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "locust", "-f", os.path.relpath(REPO / "scenarios" / "conference.py", cwd), *args]


def _master(cwd: Path, port: int, run_id: str, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        _locust(cwd, "--headless", "--only-summary", "--master", "--master-bind-host", "127.0.0.1", "--master-bind-port",
                str(port), "--expect-workers", "1", "--scenario", "event.yaml", "--results-dir", "out", "--run-id", run_id),
        cwd=cwd, stdout=open(log, "w"), stderr=subprocess.STDOUT)


def _stop(*procs: subprocess.Popen) -> None:
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()


def _operator_dirs(tmp_path: Path) -> tuple[Path, Path]:
    # The master's scenario exists only in its own directory, named relatively; workers run elsewhere.
    ops, worker_dir = tmp_path / "ops", tmp_path / "worker-host"
    ops.mkdir()
    worker_dir.mkdir()
    shutil.copy(REPO / "tests" / "data" / "scenarios" / "short.yaml", ops / "event.yaml")
    return ops, worker_dir


def test_workers_need_only_f_and_worker(tmp_path):
    """Locust's convention: the master sends the scenario (its content) to workers started with -f and --worker.

    Before, workers loaded the default scenario and every user died with KeyError 'Plenary/en'.
    """
    ops, worker_dir = _operator_dirs(tmp_path)
    port = free_port()
    master = _master(ops, port, "d", tmp_path / "master.log")
    worker = subprocess.Popen(_locust(worker_dir, "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)),
                              cwd=worker_dir, stdout=open(tmp_path / "worker.log", "w"), stderr=subprocess.STDOUT)
    try:
        code = master.wait(timeout=300)
        worker.wait(timeout=60)
    finally:
        _stop(master, worker)
    run = ops / "out" / "d"
    worker_log = (tmp_path / "worker.log").read_text()
    assert "KeyError" not in worker_log and "Traceback" not in worker_log, worker_log[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    assert code == summary["exit_code"], (tmp_path / "master.log").read_text()[-3000:]
    assert summary["scenario"] == "short"
    assert summary["counts"]["listener_sessions"] > 0  # the worker's listeners found the master's booths
    assert summary["counts"]["handovers_ok"] == 1
    workers = json.loads((run / "workers.json").read_text())
    assert [(w["worker"], w["done"], w["lost_at"]) for w in workers] == [("w0", True, None)]


def test_a_worker_with_another_scenario_is_refused_with_one_line(tmp_path):
    ops, worker_dir = _operator_dirs(tmp_path)
    port = free_port()
    master = _master(ops, port, "r", tmp_path / "master.log")
    try:
        deadline = time.monotonic() + 120
        while not (ops / "out" / "r" / "run.json").exists() and master.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)  # the master is up and answers workers
        refused = subprocess.run(_locust(worker_dir, "--worker", "--master-host", "127.0.0.1", "--master-port", str(port),
                                         "--scenario", "smoke"), cwd=worker_dir, capture_output=True, text=True, timeout=180)
    finally:
        _stop(master)
    assert refused.returncode == 2, refused.stderr[-3000:]
    ours = [line for line in refused.stderr.splitlines() if line.startswith("voxload:")]
    assert ours == [f"voxload: --scenario {REPO / 'scenarios' / 'smoke.yaml'} differs from the master's scenario "
                    f"{ops / 'event.yaml'}: start workers with only -f and --worker, they run the master's scenario"]
    # Refused during its init: users Locust spawned meanwhile wait for the run and leave with the process.
    assert "Traceback" not in refused.stderr
