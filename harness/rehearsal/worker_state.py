"""What the master knows of each worker of a distributed rehearsal, as one WorkerState Enum per worker.

Kept apart from ``distributed.py`` (which imports Locust) so it can be tested without Locust's monkey-patching;
the master's hub (``distributed.MasterHub``) is its only user. Rows of workers.json come from :meth:`WorkerInfo.as_report`.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import time

from ..errors import VoxloadError

logger = logging.getLogger(__name__)


class WorkerState(enum.Enum):
    JOINED = "joined"  # said hello (or first heard of by its done message)
    LOST = "lost"  # Locust marked it missing, or it never said done: its last second may be missing
    DONE = "done"  # stopped, flushed and said done


class InvalidWorkerTransition(VoxloadError, RuntimeError):
    """A worker state change the master's bookkeeping does not allow (a harness bug)."""


# LOST -> DONE: a worker whose heartbeats came back said goodbye; when it was lost stays noted.
_WORKER_TRANSITIONS = {
    WorkerState.JOINED: {WorkerState.LOST, WorkerState.DONE},
    WorkerState.LOST: {WorkerState.DONE},
    WorkerState.DONE: set(),
}


@dataclasses.dataclass
class WorkerInfo:
    """What the master knows of one worker; ``state`` changes only through :meth:`_set_state`."""

    name: str
    client_id: str
    joined_at: float | None
    state: WorkerState = WorkerState.JOINED
    lost_at: float | None = None
    clock_offset_ms: float | None = None
    rtt_ms: float | None = None

    def _set_state(self, new: WorkerState, at_s: float | None = None) -> None:
        if new not in _WORKER_TRANSITIONS[self.state]:
            raise InvalidWorkerTransition(f"worker {self.name} {self.state.value} -> {new.value}")
        logger.debug("worker %s: %s -> %s", self.name, self.state.value, new.value)
        self.state = new
        if new is WorkerState.LOST:
            self.lost_at = at_s if at_s is not None else time.time()

    def mark_lost(self, at_s: float | None = None) -> None:
        self._set_state(WorkerState.LOST, at_s)

    def mark_done(self, clock_offset_ms: float | None, rtt_ms: float | None) -> None:
        self._set_state(WorkerState.DONE)
        self.clock_offset_ms, self.rtt_ms = clock_offset_ms, rtt_ms

    @property
    def settled(self) -> bool:
        """Nothing more to wait for: done, or lost."""
        return self.state is not WorkerState.JOINED

    def as_report(self) -> dict:
        """A row of workers.json (the keys it always had)."""
        row = {"worker": self.name, "joined_at": self.joined_at, "lost_at": self.lost_at,
               "done": self.state is WorkerState.DONE, "state": self.state.value}
        if self.state is WorkerState.DONE:
            row.update(clock_offset_ms=self.clock_offset_ms, rtt_ms=self.rtt_ms)
        return row
