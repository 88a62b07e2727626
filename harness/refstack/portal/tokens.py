"""JWTs and cookies of the reference portal (contract section 3.1).

All credentials are HS256 JWTs signed with ``Settings.effective_jwt_secret``; the claim shapes are
VoxBento's so a harness that knows the secret can mint them. Cookie flags are VoxBento's:
HttpOnly, Max-Age = JWT_EXPIRY_SECONDS, Path=/, SameSite=lax, no Secure.
"""

from __future__ import annotations

import time
from typing import Any

import jwt
from starlette.requests import HTTPConnection
from starlette.responses import Response

from .config import Settings

ADMIN_COOKIE = "admin_token"
USER_COOKIE = "user_token"
SESSION_COOKIE = "session_token"
# Contract 3.1: `get_booth_session` tries the cookies in this order.
COOKIE_ORDER = (ADMIN_COOKIE, USER_COOKIE, SESSION_COOKIE)
LISTENER_CODE_COOKIE = "listener_code_{event_slug}"
LISTENER_CODE_MAX_AGE_S = 31536000


def encode(settings: Settings, claims: dict[str, Any], expiry_s: int | None = None) -> str:
    now = int(time.time())
    payload = {**claims, "iat": now, "exp": now + (expiry_s or settings.jwt_expiry_seconds)}
    return jwt.encode(payload, settings.effective_jwt_secret, algorithm="HS256")


def decode(settings: Settings, token: str | None) -> dict[str, Any] | None:
    """The payload of a valid, unexpired token; None for anything else."""
    if not token:
        return None
    try:
        return jwt.decode(token, settings.effective_jwt_secret, algorithms=["HS256"])
    except jwt.PyJWTError:
        return None


def admin_claims() -> dict[str, Any]:
    return {"admin": True}


def user_claims(user_id: int, email: str, display_name: str, is_admin: bool) -> dict[str, Any]:
    """Contract 3.1: claims of the ``user_token`` cookie (``sub`` is the user id as a string)."""
    return {"sub": str(user_id), "email": email, "display_name": display_name, "is_admin": is_admin, "user": True}


def listener_code_cookie(event_slug: str) -> str:
    """Contract 3.1: the per-event cookie holding a listener join code."""
    return LISTENER_CODE_COOKIE.format(event_slug=event_slug)


def cookie_payload(settings: Settings, conn: HTTPConnection) -> tuple[str, dict[str, Any]] | None:
    """Contract 3.1: the first decodable cookie in the order admin, user, session, with its name."""
    for name in COOKIE_ORDER:
        payload = decode(settings, conn.cookies.get(name))
        if payload is not None:
            return name, payload
    return None


def set_cookie(settings: Settings, response: Response, name: str, value: str, max_age_s: int | None = None) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age_s if max_age_s is not None else settings.jwt_expiry_seconds,
        path="/",
        httponly=True,
        samesite="lax",
    )


def delete_auth_cookies(response: Response) -> None:
    for name in COOKIE_ORDER:
        response.delete_cookie(name, path="/")
