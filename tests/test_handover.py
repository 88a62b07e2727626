"""Who does what in a handover, decided from the booth state each interpreter sees (harness/rehearsal/handover.py)."""

from __future__ import annotations

from harness.clients.booth_state import BoothState
from harness.rehearsal.handover import Method, Part, part_of


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
