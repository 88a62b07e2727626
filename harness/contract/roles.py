"""Roles VoxBento gives a booth session (contract 3.4, 4.1, 5.5), shared by the clients, the rehearsal and
the reference portal, so that what the harness expects and what ``harness/refstack`` serves cannot drift
apart; tests/test_differential_voxbento.py checks both against the real VoxBento.
"""

from __future__ import annotations

# Contract 4.1: roles an invite token (and so a `session_token`, contract 3.4) may carry; any other role makes
# token creation fail with 500 on the server.
INVITE_ROLES = ("interpreter", "room_coordinator", "event_owner", "super_admin", "support")
# Contract 5.5: requested roles that make a joiner eligible to be the active interpreter (`support` is not).
ELIGIBLE_ROLES = frozenset({"interpreter", "room_coordinator", "event_owner", "super_admin"})
