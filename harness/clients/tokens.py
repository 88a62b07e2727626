"""Minting VoxBento JWTs directly when the operator gives the harness the target's secret (contract 3.1).

Every VoxBento credential is an HS256 JWT signed with ``JWT_SECRET`` or, when that is empty,
``SECRET_KEY``. A harness that knows it can skip the login endpoints, their bcrypt cost (contract 3.3)
and their rate limits (contract 10). The secret is read from ``VOXLOAD_TARGET_SECRET_KEY`` (the
operator's copy of the target's effective JWT secret) and is never logged or shown in a repr.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Mapping
from typing import Any

import jwt

from ..contract import credentials
from ..contract.credentials import JWT_ALGORITHM
from ..contract.roles import INVITE_ROLES
from .errors import CredentialsUnavailable

SECRET_ENV_VAR = "VOXLOAD_TARGET_SECRET_KEY"
# The operator's copy of the target's ADMIN_PASSWORD (contract 3.2), for rehearsals and probes against --host.
ADMIN_PASSWORD_ENV_VAR = "VOXLOAD_ADMIN_PASSWORD"
# Contract 1.2 defaults: JWT_EXPIRY_SECONDS (admin/user/session), LISTENER_TOKEN_EXPIRY_SECONDS, EMBED_TOKEN_EXPIRY_SECONDS.
DEFAULT_EXPIRY_S = 86400
LISTENER_EXPIRY_S = 14400
EMBED_EXPIRY_S = 1800


class TokenMinter:
    """Mints the claim shapes of contract 3.1 with the target's secret."""

    def __init__(self, secret: str, *, clock_s=time.time) -> None:
        if not secret:
            raise CredentialsUnavailable(f"no target JWT secret given (set {SECRET_ENV_VAR})")
        self.__secret = secret
        self._clock_s = clock_s

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TokenMinter:
        env = os.environ if environ is None else environ
        return cls(env.get(SECRET_ENV_VAR, ""))

    def __repr__(self) -> str:
        return "TokenMinter(secret=<redacted>)"

    def _encode(self, claims: Mapping[str, Any], expiry_s: int) -> str:
        now = int(self._clock_s())
        return jwt.encode({**claims, "iat": now, "exp": now + expiry_s}, self.__secret, algorithm=JWT_ALGORITHM)

    def decode(self, token: str) -> dict[str, Any]:
        """Verify and decode a token the target issued (tests use it to check claim shapes)."""
        return jwt.decode(token, self.__secret, algorithms=[JWT_ALGORITHM])

    def admin(self, expiry_s: int = DEFAULT_EXPIRY_S) -> str:
        """Contract 3.1 `admin_token`: `admin: true`."""
        return self._encode(credentials.admin_claims(), expiry_s)

    def user(self, user_id: int, email: str, display_name: str = "", is_admin: bool = False, expiry_s: int = DEFAULT_EXPIRY_S) -> str:
        """Contract 3.1 `user_token`: `sub` (user id as string), `email`, `display_name`, `is_admin`, `user: true`."""
        return self._encode(credentials.user_claims(user_id, email, display_name, is_admin), expiry_s)

    def session(
        self,
        booth_db_id: int,
        event_slug: str,
        room_id: int,
        language_code: str,
        role: str = "interpreter",
        sub: str | None = None,
        expiry_s: int = DEFAULT_EXPIRY_S,
    ) -> str:
        """Contract 3.1 `session_token` (what GET /join/{token} sets): `sub` random uuid4, `booth_id` = DB integer."""
        if role not in INVITE_ROLES:
            raise ValueError(f"role {role!r} is not an invite role {INVITE_ROLES}")
        claims = credentials.session_claims(sub or uuid.uuid4().hex, booth_db_id, role, event_slug, room_id, language_code)
        return self._encode(claims, expiry_s)

    def listener(self, event_slug: str, sub: str | None = None, embed: bool = False) -> str:
        """Contract 3.1 listener JWT (`sub`, `role: "listener"`, `event_slug`; 4 h) or embed JWT (+ `purpose: "embed"`, 30 min).

        Contract 3.6: accepted on `/ws/captions/{booth_id}?token=` when the booth id starts with `{event_slug}-`.
        """
        claims = credentials.listener_claims(sub or uuid.uuid4().hex, event_slug, embed)
        return self._encode(claims, EMBED_EXPIRY_S if embed else LISTENER_EXPIRY_S)

    def bearer(self, expiry_s: int = DEFAULT_EXPIRY_S) -> str:
        """Contract 3.5: the `/api/auth/token` JWT (only `iat`, `exp`), accepted as Bearer by the booth JSON API."""
        return self._encode({}, expiry_s)
