"""Handovers as interpreters carry them out (contract 5.3, 5.5), decided from the booth state each one sees.

A coordinator only *orders* a handover for a booth; every interpreter of that booth, wherever it runs (one
Locust process or several workers), decides its own part from its latest ``booth:state``: with ``offer`` the
active interpreter initiates and the first backup in join order accepts; with ``request`` the first backup
initiates and the active interpreter accepts. The initiator times it, from ``booth:initiate-handoff`` sent to
the state that shows the new active interpreter, and reports one :class:`HandoverRecord`. Nothing here knows
about Locust.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import time

from ..clients.booth_state import BoothState, HandoffState
from ..clients.errors import ClientError
from ..contract.roles import ELIGIBLE_ROLES
from ..errors import VoxloadError

logger = logging.getLogger(__name__)

# An order nobody completes within this time is a failed handover.
HANDOVER_TIMEOUT_S = 10.0


class Method(enum.Enum):
    OFFER = "offer"
    REQUEST = "request"


@dataclasses.dataclass(frozen=True)
class HandoverOrder:
    order_id: int
    booth_id: str
    method: str  # Method value
    ordered_epoch_s: float

    def as_wire(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_wire(cls, data: dict) -> HandoverOrder:
        return cls(**data)


@dataclasses.dataclass
class HandoverRecord:
    booth: str
    at_epoch_s: float
    ok: bool
    duration_ms: float | None
    error: str | None = None
    order_id: int | None = None

    def as_wire(self) -> dict:
        return dataclasses.asdict(self)


class Part(enum.Enum):
    NONE = "none"
    INITIATOR = "initiator"
    ACCEPTOR = "acceptor"


def part_of(method: Method, state: BoothState, me: str) -> tuple[Part, str | None]:
    """Our part in the handover and the participant expected to be active afterwards."""
    active = state.active_interpreter_id
    backups = [p.participant_id for p in state.participants if p.participant_id != active and p.role in ELIGIBLE_ROLES]
    if active is None or not backups:
        return Part.NONE, None
    backup = backups[0]
    initiator, acceptor = (active, backup) if method is Method.OFFER else (backup, active)
    if me == initiator:
        return Part.INITIATOR, backup
    if me == acceptor:
        return Part.ACCEPTOR, backup
    return Part.NONE, backup


class DutyState(enum.Enum):
    IDLE = "idle"  # waiting for an order that is ours to carry out
    AWAITING_FLIP = "awaiting-flip"  # we initiated; waiting for the state that shows the new active interpreter


class InvalidDutyTransition(VoxloadError, RuntimeError):
    """A duty change its state machine does not allow (a bug in the caller, never a target's fault)."""


# The only changes of DutyState; anything else raises.
_DUTY_TRANSITIONS = {
    DutyState.IDLE: {DutyState.AWAITING_FLIP},
    DutyState.AWAITING_FLIP: {DutyState.IDLE},
}


@dataclasses.dataclass(frozen=True)
class _Flight:
    """The handover we initiated and are timing."""

    order: HandoverOrder
    started_s: float  # on the duty's clock
    started_epoch_s: float
    new_active: str | None


class HandoverDuty:
    """One interpreter's handling of the orders for its booth; ``step()`` is called with each fresh state."""

    def __init__(self, socket, clock_s=time.perf_counter) -> None:
        self.socket = socket  # a joined harness.clients.booth_ws.BoothSocket
        self._clock_s = clock_s
        self._handled: set[int] = set()  # order ids we initiated or accepted: each is acted on once
        self.state = DutyState.IDLE
        self._flight: _Flight | None = None  # set exactly while AWAITING_FLIP

    def _set_state(self, new: DutyState, flight: _Flight | None = None) -> None:
        if new not in _DUTY_TRANSITIONS[self.state]:
            raise InvalidDutyTransition(f"handover duty {self.state.value} -> {new.value}")
        logger.debug("handover duty of %s: %s -> %s", getattr(self.socket, "participant_id", "?"), self.state.value, new.value)
        self.state, self._flight = new, flight

    def step(self, order: HandoverOrder | None, state: BoothState) -> HandoverRecord | None:
        """Act on ``order`` if it is ours to act on; returns a record when a handover we initiated ends."""
        me = self.socket.participant_id
        if self.state is DutyState.AWAITING_FLIP:
            return self._check_in_flight(state)
        if order is None or order.order_id in self._handled:
            return None
        part, new_active = part_of(Method(order.method), state, me)
        if part is Part.INITIATOR and state.handoff_state is HandoffState.IDLE:
            self._handled.add(order.order_id)
            started, started_epoch_s = self._clock_s(), time.time()
            try:
                self.socket.initiate_handoff()
            except ClientError as exc:
                return HandoverRecord(order.booth_id, started_epoch_s, False, None, str(exc), order.order_id)
            self._set_state(DutyState.AWAITING_FLIP, _Flight(order, started, started_epoch_s, new_active))
            return None
        if part is Part.ACCEPTOR and state.handoff_state in (HandoffState.OFFERED, HandoffState.REQUESTED) \
                and state.handoff_initiator_id != me:
            self._handled.add(order.order_id)
            try:
                self.socket.accept_handoff()
            except ClientError:
                pass  # the initiator reports the failure when the flip does not come
        return None

    def _check_in_flight(self, state: BoothState) -> HandoverRecord | None:
        flight = self._flight
        order = flight.order
        elapsed_s = self._clock_s() - flight.started_s
        if state.active_interpreter_id == flight.new_active and state.handoff_state is HandoffState.IDLE:
            self._set_state(DutyState.IDLE)
            return HandoverRecord(order.booth_id, flight.started_epoch_s, True, elapsed_s * 1000.0, None, order.order_id)
        if elapsed_s > HANDOVER_TIMEOUT_S:
            self._set_state(DutyState.IDLE)
            return HandoverRecord(order.booth_id, flight.started_epoch_s, False, None,
                                  f"not completed within {HANDOVER_TIMEOUT_S:.0f} s (handoff_state {state.handoff_state.value})",
                                  order.order_id)
        return None
