"""Roles of a booth session and how a JWT payload resolves to one (contract 3.1, 3.6, 5.3, 5.5).

Owns the role ladder, the role set that may manage the broadcast lock (who may go live is harness.contract.roles), and
:func:`resolve_role`, used by the booth WebSocket handshake and the interpreter pages: the token/cookie
``role`` claim, plus DB memberships for a payload whose ``sub`` is a user id (booth, then room, then event
membership), plus ``super_admin`` for admin payloads; the highest rank wins (contract 3.6).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import or_, select

from .models import Booth, Event, Membership, User

log = logging.getLogger(__name__)

# Rank order used to compare a requested role against the granted one (contract 5.3:
# "requested role above granted rank"). `support` is an invite role (contract 4.1) that cannot go live.
ROLE_RANK: dict[str, int] = {
    "listener": 0,
    "support": 1,
    "interpreter": 2,
    "room_coordinator": 3,
    "event_owner": 4,
    "super_admin": 5,
}
# Contract 5.3: granted roles allowed to send booth:set-broadcast-unlocked and to set-active anyone.
MANAGER_ROLES = frozenset({"room_coordinator", "event_owner", "super_admin"})


def is_admin_payload(payload: Mapping[str, Any]) -> bool:
    """The admin-password cookie (``admin: true``) or an is_admin user token (contract 3.1, 3.2)."""
    return payload.get("admin") is True or payload.get("is_admin") is True


def is_listener_payload(payload: Mapping[str, Any]) -> bool:
    return payload.get("role") == "listener"


def rank(role: str | None) -> int:
    return ROLE_RANK.get(role or "", -1)


def highest(roles: Iterable[str | None]) -> str | None:
    known = [r for r in roles if r in ROLE_RANK]
    return max(known, key=rank) if known else None


async def _membership_roles(app, sub: str, event_slug: str, room_id: int | None, language_code: str) -> list[str]:
    """One DB session (contract 9.2). Invite-token subs (uuid4) stop after the booth query."""
    roles: list[str] = []
    async with app.state.db.get_session() as session:
        query = (
            select(Booth)
            .join(Event, Event.id == Booth.event_id)
            .where(Event.slug == event_slug, Booth.language_code == language_code)
            .order_by(Booth.id)
            .limit(1)
        )
        # Before d2bee53 a booth id names no room (room_id None): the event's first booth of that language.
        if room_id is not None:
            query = query.where(Booth.room_id == room_id)
        booth = (await session.execute(query)).scalars().first()
        if not sub.isdigit():
            return roles
        user_id = int(sub)
        user = await session.get(User, user_id)
        if user is None or not user.is_active:
            return roles
        if user.is_admin:
            roles.append("super_admin")
        event_id = (await session.execute(select(Event.id).where(Event.slug == event_slug))).scalar_one_or_none()
        if event_id is None:
            return roles
        scopes = [(Membership.event_id == event_id) & Membership.room_id.is_(None) & Membership.booth_id.is_(None)]
        if room_id is not None:
            scopes.append((Membership.room_id == room_id) & Membership.booth_id.is_(None))
        if booth is not None:
            scopes.append(Membership.booth_id == booth.id)
        rows = await session.execute(select(Membership.role).where(Membership.user_id == user_id, or_(*scopes)))
        roles.extend(rows.scalars())
    return roles


async def resolve_role(
    app, payload: Mapping[str, Any], *, event_slug: str, room_id: int | None, language_code: str
) -> str | None:
    """The highest of: role claim, DB memberships (numeric ``sub``), ``super_admin`` for admin payloads."""
    candidates: list[str | None] = []
    claim = payload.get("role")
    if isinstance(claim, str) and claim != "listener":
        candidates.append(claim)
    if is_admin_payload(payload):
        candidates.append("super_admin")
    sub = payload.get("sub")
    if sub is not None:
        try:
            candidates.extend(await _membership_roles(app, str(sub), event_slug, room_id, language_code))
        except Exception:
            # Contract 9.3: the WS role lookup catches and logs DB errors; the role then comes from the token only.
            log.exception("role lookup failed for booth %s-%s-%s", event_slug, room_id, language_code)
    return highest(candidates)
