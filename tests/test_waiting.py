"""``poll_until``, the one polling loop: a fake clock and sleep make every case exact and instant."""

from __future__ import annotations

import pytest

from harness.errors import VoxloadError
from harness.waiting import WaitTimeout, poll_until


class FakeTime:
    def __init__(self) -> None:
        self.now_s = 100.0
        self.sleeps: list[float] = []

    def clock_s(self) -> float:
        return self.now_s

    def sleep_s(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now_s += seconds


def test_returns_the_first_truthy_value_without_sleeping_when_it_already_holds():
    t = FakeTime()
    assert poll_until(lambda: "ready", 5.0, 0.5, what="x", clock_s=t.clock_s, sleep_s=t.sleep_s) == "ready"
    assert t.sleeps == []


def test_polls_at_the_interval_until_the_condition_holds():
    t = FakeTime()
    answers = iter([None, 0, [], {"n": 1}])
    assert poll_until(lambda: next(answers), 5.0, 0.5, what="x", clock_s=t.clock_s, sleep_s=t.sleep_s) == {"n": 1}
    assert t.sleeps == [0.5, 0.5, 0.5]


def test_times_out_at_the_deadline_with_a_last_look_and_says_what_it_waited_for():
    t = FakeTime()
    calls: list[float] = []

    def never() -> bool:
        calls.append(t.now_s)
        return False

    with pytest.raises(WaitTimeout, match=r"^the booth state not within 1\.2 s$") as caught:
        poll_until(never, 1.2, 0.5, what="the booth state", clock_s=t.clock_s, sleep_s=t.sleep_s)
    assert t.sleeps == pytest.approx([0.5, 0.5, 0.2])  # the last sleep is cut to the deadline
    assert calls == pytest.approx([100.0, 100.5, 101.0, 101.2])  # asked once more at the deadline
    assert isinstance(caught.value, VoxloadError) and isinstance(caught.value, TimeoutError)


def test_a_condition_that_becomes_true_during_the_last_sleep_is_not_a_timeout():
    t = FakeTime()
    assert poll_until(lambda: t.now_s >= 101.0, 1.0, 0.4, what="x", clock_s=t.clock_s, sleep_s=t.sleep_s) is True


def test_errors_of_the_predicate_propagate():
    def broken() -> bool:
        raise KeyError("gone")

    with pytest.raises(KeyError):
        poll_until(broken, 1.0, 0.1, what="x")


def test_a_non_positive_interval_is_refused():
    with pytest.raises(ValueError):
        poll_until(lambda: False, 1.0, 0.0, what="x")


def test_real_clock_waits_about_the_timeout():
    # Default clock and sleep: a false condition raises after the timeout, not before.
    import time

    start_s = time.monotonic()
    with pytest.raises(WaitTimeout):
        poll_until(lambda: False, 0.3, 0.05, what="nothing")
    assert time.monotonic() - start_s >= 0.3
