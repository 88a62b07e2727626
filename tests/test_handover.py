"""Who does what in a handover, decided from the booth state each interpreter sees (harness/rehearsal/handover.py)."""

from __future__ import annotations

import logging

import pytest

from harness.clients.booth_state import BoothState
from harness.clients.errors import SocketClosed
from harness.rehearsal.handover import (
    HANDOVER_TIMEOUT_S,
    DutyState,
    HandoverDuty,
    HandoverOrder,
    InvalidDutyTransition,
    Method,
    Part,
    part_of,
)


def _state(active: str | None, participants: list[tuple[str, str]], handoff: str = "idle") -> BoothState:
    # The contract 5.4 state object, as the portal sends it.
    return BoothState.from_json({
        "booth_id": "ev-1-es", "event_slug": "ev", "language_code": "es", "instance": "primary", "mediamtx_path": "ev/1/es",
        "room_id": 1, "language": "Spanish", "channel_id": "ev/1/es", "active_interpreter_id": active,
        "handoff_state": handoff, "handoff_initiator_id": None, "broadcast_unlocked": True, "ingest_status": "connected",
        "participants": [{"participant_id": pid, "display_name": pid, "role": role, "language": "es", "channel_id": "c",
                          "mic_active": False, "ingest_connected": False, "connected": True, "joined_at": 0, "updated_at": 0}
                         for pid, role in participants],
        "chat_messages": [],
    }, "test")


CREW = [("a", "interpreter"), ("b", "interpreter"), ("c", "interpreter")]


def test_offer_active_initiates_first_backup_accepts():
    state = _state("a", CREW)
    assert part_of(Method.OFFER, state, "a") == (Part.INITIATOR, "b")
    assert part_of(Method.OFFER, state, "b") == (Part.ACCEPTOR, "b")
    assert part_of(Method.OFFER, state, "c") == (Part.NONE, "b")  # only the first backup in join order accepts


def test_request_first_backup_initiates_active_accepts():
    state = _state("b", CREW)
    assert part_of(Method.REQUEST, state, "a") == (Part.INITIATOR, "a")
    assert part_of(Method.REQUEST, state, "b") == (Part.ACCEPTOR, "a")


def test_no_backup_or_no_active_means_nobody_acts():
    assert part_of(Method.OFFER, _state("a", [("a", "interpreter")]), "a") == (Part.NONE, None)
    assert part_of(Method.OFFER, _state(None, CREW), "a") == (Part.NONE, None)
    # Contract 5.5: a support member is not eligible to go live, so never the backup.
    assert part_of(Method.OFFER, _state("a", [("a", "interpreter"), ("s", "support")]), "s") == (Part.NONE, None)


class _Socket:
    """What HandoverDuty uses of a joined BoothSocket: its participant id and the two handoff sends, recorded.
    (The duty on real sockets runs in every rehearsal test: smoke's summary counts its handovers.)"""

    def __init__(self, participant_id: str, fail_with: Exception | None = None) -> None:
        self.participant_id = participant_id
        self.sent: list[str] = []
        self.fail_with = fail_with

    def initiate_handoff(self) -> None:
        self.sent.append("initiate")
        if self.fail_with is not None:
            raise self.fail_with

    def accept_handoff(self) -> None:
        self.sent.append("accept")


class _Clock:
    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


def _transitions(caplog) -> list[str]:
    return [r.getMessage().split(": ", 1)[1] for r in caplog.records if r.getMessage().startswith("handover duty of")]


def _order(order_id: int, method: str = "offer") -> HandoverOrder:
    return HandoverOrder(order_id, "ev-1-es", method, 0.0)


def test_initiator_duty_goes_idle_awaiting_flip_idle_and_times_the_flip(caplog):
    caplog.set_level(logging.DEBUG, logger="harness.rehearsal.handover")
    clock, sock = _Clock(), _Socket("a")
    duty = HandoverDuty(sock, clock_s=clock)
    assert duty.state is DutyState.IDLE
    assert duty.step(None, _state("a", CREW)) is None
    assert duty.step(_order(1), _state("a", CREW)) is None
    assert duty.state is DutyState.AWAITING_FLIP and sock.sent == ["initiate"]
    clock.now_s += 0.4
    assert duty.step(_order(1), _state("a", CREW, "offered")) is None  # still waiting for the flip
    clock.now_s += 0.2
    record = duty.step(_order(1), _state("b", CREW))
    assert record.ok and record.order_id == 1 and abs(record.duration_ms - 600.0) < 1e-6
    assert duty.state is DutyState.IDLE
    assert duty.step(_order(1), _state("b", CREW)) is None and sock.sent == ["initiate"]  # an order is acted on once
    # The second order: the flip never comes, the duty times out and is free again.
    assert duty.step(_order(2), _state("a", CREW)) is None
    clock.now_s += HANDOVER_TIMEOUT_S + 0.1
    record = duty.step(_order(2), _state("a", CREW, "offered"))
    assert not record.ok and record.duration_ms is None and "not completed within" in record.error
    assert _transitions(caplog) == ["idle -> awaiting-flip", "awaiting-flip -> idle"] * 2


def test_acceptor_and_failed_initiate_never_leave_idle(caplog):
    caplog.set_level(logging.DEBUG, logger="harness.rehearsal.handover")
    acceptor = HandoverDuty(_Socket("b"), clock_s=_Clock())
    assert acceptor.step(_order(1), _state("a", CREW)) is None  # nothing offered yet
    assert acceptor.step(_order(1), _state("a", CREW, "offered")) is None
    assert acceptor.socket.sent == ["accept"] and acceptor.state is DutyState.IDLE
    failing = HandoverDuty(_Socket("a", fail_with=SocketClosed("ws://127.0.0.1/ws/booth", 1011, "closed")), clock_s=_Clock())
    record = failing.step(_order(1), _state("a", CREW))
    assert not record.ok and "closed" in record.error and failing.state is DutyState.IDLE
    assert _transitions(caplog) == []


def test_invalid_duty_transition_raises():
    duty = HandoverDuty(_Socket("a"), clock_s=_Clock())
    with pytest.raises(InvalidDutyTransition, match="idle -> idle"):
        duty._set_state(DutyState.IDLE)
