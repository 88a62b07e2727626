"""The run's lifecycle as one RunPhase Enum changed through ConferenceRun._set_state (harness/rehearsal/run.py).

A real scenario and a real run folder; no Locust process (the phase machine is what is tested here; every
rehearsal test drives it through Locust's events end to end).
"""

from __future__ import annotations

import json
import logging
import types

import pytest

from conftest import REPO
from harness.rehearsal.run import ConferenceRun, InvalidRunTransition, Role, RunPhase
from harness.results.run_folder import RunDirectory
from harness.scenario import load_scenario

SHORT = REPO / "tests" / "data" / "scenarios" / "short.yaml"


def _run(tmp_path, role: Role = Role.LOCAL) -> ConferenceRun:
    scenario = load_scenario(str(SHORT))
    run_dir = RunDirectory.create(root=tmp_path, run_id="phase", scenario=scenario.to_dict(), target_url=None)
    environment = types.SimpleNamespace(host=None, process_exit_code=None, runner=None)
    return ConferenceRun(environment, scenario, run_dir, types.SimpleNamespace(keep=False), role)


def _transitions(caplog) -> list[str]:
    return [r.getMessage().split(": ", 1)[1] for r in caplog.records if r.getMessage().startswith("run local:")]


def test_a_run_goes_setting_up_ready_stopping_done_and_ready_and_stopping_follow(tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="harness.rehearsal.run")
    run = _run(tmp_path)
    assert run.phase is RunPhase.SETTING_UP and not run.ready.is_set() and not run.stopping
    run._set_state(RunPhase.READY)
    assert run.ready.is_set() and not run.stopping  # users waiting on `ready` go
    run._set_state(RunPhase.STOPPING)
    assert run.stopping
    assert run.finish() == 0 and run.phase is RunPhase.STOPPING  # a second finish() does nothing
    run._set_state(RunPhase.DONE)
    assert run.stopping
    assert _transitions(caplog) == ["setting-up -> ready", "ready -> stopping", "stopping -> done"]
    run.samples.close()


def test_a_failed_setup_ends_in_failed_with_its_error_in_run_json(tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="harness.rehearsal.run")
    run = _run(tmp_path)
    run.finish_failed("embedded reference stack did not start: port taken")
    assert run.phase is RunPhase.FAILED and run.stopping and not run.ready.is_set()
    data = json.loads((run.run_dir.path / "run.json").read_text())
    assert data["status"] == "failed" and "port taken" in data["error"]
    assert _transitions(caplog) == ["setting-up -> failed"]
    with pytest.raises(InvalidRunTransition, match="failed -> stopping"):
        run._set_state(RunPhase.STOPPING)


@pytest.mark.parametrize("start, new", [
    (RunPhase.SETTING_UP, RunPhase.DONE),
    (RunPhase.READY, RunPhase.SETTING_UP),
    (RunPhase.READY, RunPhase.DONE),
    (RunPhase.STOPPING, RunPhase.READY),
    (RunPhase.DONE, RunPhase.STOPPING),
])
def test_invalid_run_transitions_raise(tmp_path, start, new):
    run = _run(tmp_path)
    run.phase = start
    with pytest.raises(InvalidRunTransition, match=f"{start.value} -> {new.value}"):
        run._set_state(new)
    assert run.phase is start
    run.samples.close()


def test_finish_of_a_run_whose_load_never_started_is_invalid_and_ends_done(tmp_path, capsys):
    """finish() end to end without Locust: teardown (nothing started), reconcile (an order nobody carried out),
    judge (no test_start: invalid, exit 3), write (summary, JUnit, run.json), print; then the phase is done."""
    from harness.errors import ExitCode
    from harness.rehearsal.handover import HandoverOrder

    run = _run(tmp_path)
    run._set_state(RunPhase.READY)
    run.issued_orders.append(HandoverOrder(1, "ev-1-it", "offer", 1000.0))
    assert run.finish() == ExitCode.INVALID_RUN
    assert run.phase is RunPhase.DONE
    folder = run.run_dir.path
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["exit_code"] == ExitCode.INVALID_RUN
    assert "the load never started (no test_start): nothing was measured" in summary["invalid_reasons"]
    handovers = json.loads((folder / "handovers.json").read_text())
    assert [(h["order_id"], h["ok"], h["error"]) for h in handovers] == [(1, False, "no interpreter initiated the handover")]
    assert (folder / "junit.xml").exists()
    assert json.loads((folder / "run.json").read_text())["status"] == "interrupted"
    out = capsys.readouterr().out
    assert "INVALID  the load never started" in out and "exit code 3" in out
    assert run.finish() == 0  # safe to call again: nothing is judged twice (the process exit code is Locust's)


class _RecordingLink:
    """A worker's link to its master, recording what the worker forwards (distributed.WorkerLink's sends)."""

    def __init__(self) -> None:
        self.sent: list[tuple] = []

    def __getattr__(self, name):
        if not name.startswith("send_"):
            raise AttributeError(name)
        return lambda *args: self.sent.append((name, *args))


def test_a_worker_forwards_what_an_owner_decides_and_an_owner_keeps_it(tmp_path):
    from harness.rehearsal.handover import HandoverRecord

    worker = _run(tmp_path / "w", Role.WORKER)
    worker.link = _RecordingLink()
    assert worker.canaries is None and worker.duties.runs_media and not worker.duties.owns_results
    record = HandoverRecord("ev-1-it", 1000.0, True, 420.0, None, 7)
    assert worker.order_handover("Hall/it", 15.0) is None
    worker.record_handover(record)
    worker.mark_unlocked()
    worker.abort_booth_mismatch("joined booth ev-1-es, provisioned ev-1-it")
    worker.add_publisher_schedule("ev-1-it", {"t0": 1.0})
    assert worker.link.sent == [("send_order", "Hall/it", 15.0), ("send_handover", record), ("send_unlocked",),
                                ("send_abort", "joined booth ev-1-es, provisioned ev-1-it"),
                                ("send_schedule", "ev-1-it", {"t0": 1.0})]
    assert worker.handovers == [] and worker.aborts == [] and worker.booths_unlocked.is_set()
    worker.samples.close()
    master = _run(tmp_path / "m", Role.MASTER)
    assert not master.duties.runs_media and master.duties.owns_results
    master.record_handover(record)
    master.abort_booth_mismatch("joined booth ev-1-es, provisioned ev-1-it")
    assert master.handovers == [record] and len(master.aborts) == 1
    master.samples.close()
