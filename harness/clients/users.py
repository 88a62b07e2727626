"""Registered users' forms: `POST /register` and `POST /login` (contract 3.3, 10).

Both are plain form posts that answer with HTML. The outcome of each attempt is returned as an Enum
rather than raised, because callers (the security probe, login-load scenarios) count outcomes: a 403
for a wrong password or unverified email is an expected answer, a 429 is the limiter.
"""

from __future__ import annotations

import enum

from ..contract import routes
from .http import HTML_ACCEPT, PortalHttp


class LoginOutcome(enum.Enum):
    ACCEPTED = "accepted"  # 303 to next_url or /account with user_token
    REJECTED = "rejected"  # 403: unknown user, wrong password, disabled or unverified
    RATE_LIMITED = "rate_limited"  # 429: contract 10, 10 attempts per lower-cased email per sliding hour


class RegisterOutcome(enum.Enum):
    CREATED = "created"  # 200 "check your email", no cookie
    REJECTED = "rejected"  # 422: duplicate email or missing fields
    RATE_LIMITED = "rate_limited"  # 429: VoxBento HEAD has no limiter here (contract 10)


_LOGIN_STATUS = {303: LoginOutcome.ACCEPTED, 403: LoginOutcome.REJECTED, 429: LoginOutcome.RATE_LIMITED}
_REGISTER_STATUS = {200: RegisterOutcome.CREATED, 422: RegisterOutcome.REJECTED, 429: RegisterOutcome.RATE_LIMITED}


class UserClient:
    """One visitor's browser on the user forms (one PortalHttp = one cookie jar)."""

    def __init__(self, http: PortalHttp) -> None:
        self.http = http

    def __repr__(self) -> str:
        return f"UserClient({self.http!r})"

    def login(self, email: str, password: str, next_url: str | None = None) -> LoginOutcome:
        data = {"email": email, "password": password}
        if next_url:
            data["next_url"] = next_url
        response = self.http.request("POST", routes.USER_LOGIN.path(), name=routes.USER_LOGIN.name, expected=tuple(_LOGIN_STATUS), data=data, headers=HTML_ACCEPT)
        return _LOGIN_STATUS[response.status_code]

    def register(self, email: str, display_name: str, password: str | None = None) -> RegisterOutcome:
        """Contract 3.3: the password is optional; the verification email is sent inside the DB transaction."""
        data = {"email": email, "display_name": display_name}
        if password is not None:
            data["password"] = password
        response = self.http.request("POST", routes.USER_REGISTER.path(), name=routes.USER_REGISTER.name, expected=tuple(_REGISTER_STATUS), data=data, headers=HTML_ACCEPT)
        return _REGISTER_STATUS[response.status_code]
