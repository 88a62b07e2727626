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

from ...contract.credentials import (  # noqa: F401 (the routes read cookie names and claims through this module)
    ADMIN_COOKIE,
    JWT_ALGORITHM,
    JWT_COOKIE_ORDER,
    LISTENER_CODE_MAX_AGE_S,
    SESSION_COOKIE,
    USER_COOKIE,
    admin_claims,
    listener_code_cookie,
    session_claims,
    user_claims,
)
from .config import Settings

# Contract 3.1: cookie names, their order and the claim shapes are the clients' too (harness.contract.credentials).
COOKIE_ORDER = JWT_COOKIE_ORDER


def encode(settings: Settings, claims: dict[str, Any], expiry_s: int | None = None) -> str:
    now = int(time.time())
    payload = {**claims, "iat": now, "exp": now + (expiry_s or settings.jwt_expiry_seconds)}
    return jwt.encode(payload, settings.effective_jwt_secret, algorithm=JWT_ALGORITHM)


def decode(settings: Settings, token: str | None) -> dict[str, Any] | None:
    """The payload of a valid, unexpired token; None for anything else."""
    if not token:
        return None
    try:
        return jwt.decode(token, settings.effective_jwt_secret, algorithms=[JWT_ALGORITHM])
    except jwt.PyJWTError:
        return None


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
