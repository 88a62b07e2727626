"""VoxBento's credentials as a client sees them (contract 2, 3.1, 3.4, 4.1, 6.1): invite tokens, listener join
codes, cookie names, the JWT algorithm and the claim shapes of each token.

The clients (cookie jars, ``TokenMinter``) and the reference portal (which sets and decodes them) both build
on these, so the reference cannot accept a credential VoxBento would refuse without the differential test
(tests/test_differential_voxbento.py) noticing on the clients' side too.
"""

from __future__ import annotations

from typing import Any

# Contract 2: invite tokens are 64 lower-case hex characters (32 random bytes), single use,
# travelling in the path of `/join/{token}`.
INVITE_TOKEN_BYTES = 32
INVITE_TOKEN_HEX = rf"[0-9a-f]{{{2 * INVITE_TOKEN_BYTES}}}"
# Contract 4.1: an event's listener join code is 6 characters from this alphabet (no 0/O, 1/I).
JOIN_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
JOIN_CODE_LENGTH = 6
JOIN_CODE_PATTERN = rf"[{JOIN_CODE_ALPHABET}]{{{JOIN_CODE_LENGTH}}}"

# Contract 3.1: set by POST /admin/login.
ADMIN_COOKIE = "admin_token"
# Contract 3.1: set by POST /login and the verify/magic/reset links.
USER_COOKIE = "user_token"
# Contract 3.1 / 3.4: set by GET /join/{token}.
SESSION_COOKIE = "session_token"
# Contract 3.1: the order in which `get_booth_session` tries the JWT cookies.
JWT_COOKIE_ORDER = (ADMIN_COOKIE, USER_COOKIE, SESSION_COOKIE)
# Contract 3.1 / 6.1: set by GET /listener/{slug}?code=<correct code>; its value is the plain join code.
LISTENER_CODE_COOKIE_TEMPLATE = "listener_code_{event_slug}"
LISTENER_CODE_MAX_AGE_S = 31536000
# Contract 3.1: every JWT is HS256 (JWT_SECRET, or SECRET_KEY when that is empty).
JWT_ALGORITHM = "HS256"


def listener_code_cookie(event_slug: str) -> str:
    return LISTENER_CODE_COOKIE_TEMPLATE.format(event_slug=event_slug)


def admin_claims() -> dict[str, Any]:
    """Contract 3.1 `admin_token`."""
    return {"admin": True}


def user_claims(user_id: int, email: str, display_name: str, is_admin: bool) -> dict[str, Any]:
    """Contract 3.1 `user_token`: ``sub`` is the user id as a string."""
    return {"sub": str(user_id), "email": email, "display_name": display_name, "is_admin": is_admin, "user": True}


def session_claims(sub: str, booth_db_id: int, role: str, event_slug: str, room_id: int, language_code: str) -> dict[str, Any]:
    """Contract 3.1 / 3.4 `session_token` (what GET /join/{token} sets): ``sub`` a random uuid4 hex,
    ``booth_id`` the booth's integer DB id."""
    return {"sub": sub, "booth_id": booth_db_id, "role": role, "event_slug": event_slug, "room_id": room_id,
            "language_code": language_code}


def listener_claims(sub: str, event_slug: str, embed: bool = False) -> dict[str, Any]:
    """Contract 3.1 / 3.7 listener JWT; the embed variant adds ``purpose: "embed"``."""
    claims: dict[str, Any] = {"sub": sub, "role": "listener", "event_slug": event_slug}
    if embed:
        claims["purpose"] = "embed"
    return claims
