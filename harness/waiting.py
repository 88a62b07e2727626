"""Waiting for a condition with a deadline: the one polling loop of the harness.

Probes, rehearsal users and the distributed link each wait for something another process does (a socket to
drop, a caption to arrive, the master's answer). ``poll_until`` asks the question every ``interval_s`` until
it holds or ``timeout_s`` has passed on a monotonic clock, and asks once more at the deadline, so a
condition that became true during the last sleep is not reported as a timeout.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from .errors import VoxloadError

T = TypeVar("T")


class WaitTimeout(VoxloadError, TimeoutError):
    """The condition of :func:`poll_until` did not hold within its timeout; the message says what was awaited."""


def poll_until(
    predicate: Callable[[], T],
    timeout_s: float,
    interval_s: float,
    *,
    what: str,
    clock_s: Callable[[], float] = time.monotonic,
    sleep_s: Callable[[float], object] = time.sleep,
) -> T:
    """The first truthy value of ``predicate()``; :class:`WaitTimeout` when none came within ``timeout_s``.

    ``sleep_s`` is ``time.sleep`` (gevent-patched in Locust processes); tests pass a fake clock and sleep.
    """
    if interval_s <= 0:
        raise ValueError(f"interval_s must be > 0, got {interval_s}")
    deadline_s = clock_s() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        remaining_s = deadline_s - clock_s()
        if remaining_s <= 0:
            raise WaitTimeout(f"{what} not within {timeout_s:g} s")
        sleep_s(min(interval_s, remaining_s))
