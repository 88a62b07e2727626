"""The interpreter's HTTP surface: invite join, landing page (lobby) and booth page (contract 3.4, 5.1, App. B).

`GET /join/{token}` exchanges a single-use invite for the `session_token` cookie; the landing page lists
the booth link(s); the booth page carries everything the interpreter JS needs in `data-*` attributes.
The socket itself is :class:`harness.clients.booth_ws.BoothSocket`.
"""

from __future__ import annotations

import dataclasses
import html
import re
from collections.abc import Mapping

import requests

from .cookies import SESSION_COOKIE, jar_value
from .errors import AuthRejected, MalformedResponse, ReadBackError
from .http import PortalHttp
from .identifiers import BoothRef
from .media_urls import browser_whip_url

JOIN = "/join/{token}"
LOBBY = "/interpreter"
BOOTH_PAGE = "/interpreter/{slug}/{room_id}/{lang}"
# Contract 5.1: without a cookie the pages redirect (303) to `/login?next=...`.
LOGIN_PREFIX = "/login"

# Contract 2: invite tokens are 64 hex characters; accepts a bare token or any URL ending in /join/<token>.
INVITE_TOKEN = re.compile(r"(?:^|/join/)([0-9a-f]{64})/?$")
# Contract App. B: `href="/interpreter/{slug}/{room_id}/{lang}"` on the landing page.
LOBBY_BOOTH_LINK = re.compile(r'href="/interpreter/([a-z0-9]+(?:-[a-z0-9]+)*)/(\d+)/([a-z]{2}|floor)"')
# Contract App. B / 5.1: the booth page's `data-*` attributes.
DATA_ATTRIBUTE = re.compile(r'\bdata-([a-z][a-z0-9-]*)\s*=\s*"([^"]*)"')
# Contract App. B lists these as the attributes to read back; 5.1 names the WHIP one `data-whip-base` (see BoothPage.whip_url).
REQUIRED_BOOTH_ATTRIBUTES = ("booth-id", "granted-role", "whep-url", "default-channel")


def invite_token_of(invite: str) -> str:
    match = INVITE_TOKEN.search(invite.strip())
    if not match:
        raise ValueError("not an invite token or /join/<64 hex> URL")
    return match.group(1)


@dataclasses.dataclass(frozen=True)
class BoothPage:
    booth_id: str
    granted_role: str
    default_channel: str
    whep_url: str
    whip_base: str | None
    whip_url_attr: str | None
    booth_token: str
    attributes: Mapping[str, str]

    @property
    def whip_url(self) -> str:
        """Contract 5.5: the URL the JS POSTs to, `{whip_base}/{encodeURIComponent(channel)}/whip`."""
        if self.whip_base:
            return browser_whip_url(self.whip_base, self.default_channel)
        if self.whip_url_attr:
            return self.whip_url_attr
        raise MalformedResponse("booth page", "neither data-whip-base nor data-whip-url present")


class InterpreterClient:
    """One interpreter browser's HTTP side (one PortalHttp = one cookie jar)."""

    def __init__(self, http: PortalHttp) -> None:
        self.http = http

    def __repr__(self) -> str:
        return f"InterpreterClient({self.http!r})"

    @property
    def session_cookie(self) -> str | None:
        return jar_value(self.http.cookies, SESSION_COOKIE)

    def join_invite(self, invite: str) -> str:
        """Contract 3.4: `GET /join/{token}` -> 303 + `session_token`; returns the redirect target (the landing page).

        404 unknown token (NotFound), 403 used or expired (AuthRejected).
        """
        token = invite_token_of(invite)
        response = self.http.request("GET", JOIN.format(token=token), name="/join/[token]", expected=(303,))
        location = self.http.location(response)
        if not self.session_cookie:
            raise MalformedResponse(response.url, f"303 to {location} without a {SESSION_COOKIE} cookie (contract 3.4)")
        return location

    def _page(self, path: str, name: str, params: Mapping[str, str] | None = None) -> requests.Response:
        response = self.http.request("GET", path, name=name, expected=(200, 303), params=params)
        if response.status_code == 303:
            location = response.headers.get("Location", "")
            # Contract 5.1: no (decodable) cookie -> 303 /login?next=...
            raise AuthRejected(response.url, 303, (200,), f"redirected to {location}")
        return response

    def lobby(self) -> list[BoothRef]:
        """Contract 5.1 / App. B: the booth links on `GET /interpreter`."""
        response = self._page(LOBBY, LOBBY)
        refs = [BoothRef(slug, int(room), lang) for slug, room, lang in LOBBY_BOOTH_LINK.findall(response.text)]
        if not refs:
            raise ReadBackError(response.url, LOBBY_BOOTH_LINK.pattern)
        return list(dict.fromkeys(refs))

    def booth_page(self, booth: BoothRef, *, token: str | None = None, language: str | None = None) -> BoothPage:
        """Contract 5.1: `GET /interpreter/{slug}/{room_id}/{lang}`; 403 when no role resolves (AuthRejected)."""
        params = {k: v for k, v in {"token": token, "language": language}.items() if v is not None}
        path = BOOTH_PAGE.format(slug=booth.event_slug, room_id=booth.room_id, lang=booth.language_code)
        response = self._page(path, "/interpreter/[slug]/[room_id]/[lang]", params or None)
        attributes: dict[str, str] = {}
        for key, value in DATA_ATTRIBUTE.findall(response.text):
            attributes.setdefault(key, html.unescape(value))
        missing = [a for a in REQUIRED_BOOTH_ATTRIBUTES if a not in attributes]
        if missing:
            raise ReadBackError(response.url, DATA_ATTRIBUTE.pattern, f"booth page lacks data-{', data-'.join(missing)}")
        return BoothPage(
            booth_id=attributes["booth-id"],
            granted_role=attributes["granted-role"],
            default_channel=attributes["default-channel"],
            whep_url=attributes["whep-url"],
            whip_base=attributes.get("whip-base"),
            whip_url_attr=attributes.get("whip-url"),
            booth_token=attributes.get("booth-token", ""),
            attributes=attributes,
        )
