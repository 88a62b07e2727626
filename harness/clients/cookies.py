"""Cookie names of VoxBento (contract section 3.1) and reading them out of a requests-style cookie jar.

The portal sets every cookie HttpOnly with Path=/ (no Secure), so a `requests.Session` jar keeps them
for the target host; WebSocket clients need them copied into a `Cookie` header, which this module builds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

# Contract 3.1: set by POST /admin/login.
ADMIN_COOKIE = "admin_token"
# Contract 3.1: set by POST /login and the verify/magic/reset links.
USER_COOKIE = "user_token"
# Contract 3.1 / 3.4: set by GET /join/{token}.
SESSION_COOKIE = "session_token"
# Contract 3.1 / 6.1: set by GET /listener/{slug}?code=<correct code>; its value is the plain join code.
LISTENER_CODE_COOKIE_TEMPLATE = "listener_code_{event_slug}"
# Contract 3.1: the order in which the portal tries the JWT cookies.
JWT_COOKIE_ORDER = (ADMIN_COOKIE, USER_COOKIE, SESSION_COOKIE)


def listener_code_cookie(event_slug: str) -> str:
    return LISTENER_CODE_COOKIE_TEMPLATE.format(event_slug=event_slug)


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
