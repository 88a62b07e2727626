"""Reading VoxBento's cookies (contract section 3.1) out of a requests-style cookie jar.

The portal sets every cookie HttpOnly with Path=/ (no Secure), so a `requests.Session` jar keeps them
for the target host; WebSocket clients need them copied into a `Cookie` header, which this module builds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

# The names are the contract's (harness.contract.credentials); clients import them from here with the jar helpers.
from ..contract.credentials import (  # noqa: F401
    ADMIN_COOKIE,
    JWT_COOKIE_ORDER,
    SESSION_COOKIE,
    USER_COOKIE,
    listener_code_cookie,
)


def jar_value(cookies: Any, name: str) -> str | None:
    """One cookie's value from a requests cookie jar (or a plain mapping); None when absent.

    The jar may hold the same name for several domains/paths after redirects; any value will do because
    the portal sets each name once per host.
    """
    if cookies is None:
        return None
    if isinstance(cookies, Mapping):
        value = cookies.get(name)
        return str(value) if value else None
    for cookie in cookies:
        if cookie.name == name and cookie.value:
            return cookie.value
    return None


def cookie_header(cookies: Any, names: Iterable[str] | None = None) -> str:
    """A `Cookie:` header value from a jar or mapping; restricted to `names` when given."""
    wanted = set(names) if names is not None else None
    pairs: dict[str, str] = {}
    items = cookies.items() if isinstance(cookies, Mapping) else ((c.name, c.value) for c in cookies or ())
    for name, value in items:
        if value and (wanted is None or name in wanted):
            pairs[name] = value
    return "; ".join(f"{k}={v}" for k, v in pairs.items())
