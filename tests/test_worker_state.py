"""The master's view of each worker as one WorkerState Enum (harness/rehearsal/worker_state.py).

The whole distributed path (hello, missing heartbeats, done, workers.json) runs in tests/test_distributed.py
with real Locust processes; here, each sequence of states and the rows of workers.json it gives.
"""

from __future__ import annotations

import logging

import pytest

from harness.rehearsal.worker_state import InvalidWorkerTransition, WorkerInfo, WorkerState


def _transitions(caplog) -> list[str]:
    return [r.getMessage().split(": ", 1)[1] for r in caplog.records if r.getMessage().startswith("worker w1:")]


def test_a_worker_that_says_done_goes_joined_done(caplog):
    caplog.set_level(logging.DEBUG, logger="harness.rehearsal.worker_state")
    info = WorkerInfo("w1", "node-1", 1000.0)
    assert info.state is WorkerState.JOINED and not info.settled
    assert info.as_report() == {"worker": "w1", "joined_at": 1000.0, "lost_at": None, "done": False, "state": "joined"}
    info.mark_done(clock_offset_ms=1.5, rtt_ms=0.4)
    assert info.settled
    assert info.as_report() == {"worker": "w1", "joined_at": 1000.0, "lost_at": None, "done": True, "state": "done",
                                "clock_offset_ms": 1.5, "rtt_ms": 0.4}
    assert _transitions(caplog) == ["joined -> done"]


def test_a_lost_worker_keeps_when_it_was_lost_even_if_it_comes_back_and_says_done(caplog):
    caplog.set_level(logging.DEBUG, logger="harness.rehearsal.worker_state")
    info = WorkerInfo("w1", "node-1", 1000.0)
    info.mark_lost(at_s=1010.0)
    assert info.settled and info.as_report()["lost_at"] == 1010.0 and not info.as_report()["done"]
    info.mark_done(clock_offset_ms=None, rtt_ms=None)
    row = info.as_report()
    assert row["done"] and row["lost_at"] == 1010.0  # its missing seconds stay noted
    assert _transitions(caplog) == ["joined -> lost", "lost -> done"]


@pytest.mark.parametrize("steps, bad", [
    (["done"], "done -> done"),
    (["done"], "done -> lost"),
    (["lost"], "lost -> lost"),
])
def test_invalid_worker_transitions_raise(steps, bad):
    info = WorkerInfo("w1", "node-1", None)
    for step in steps:
        info.mark_done(None, None) if step == "done" else info.mark_lost()
    before = info.as_report()
    with pytest.raises(InvalidWorkerTransition, match=f"w1 {bad}"):
        info.mark_done(None, None) if bad.endswith("done") else info.mark_lost()
    assert info.as_report() == before
