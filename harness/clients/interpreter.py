"""The interpreter's HTTP surface: invite join, landing page (lobby) and booth page (contract 3.4, 5.1, App. B).

`GET /join/{token}` exchanges a single-use invite for the `session_token` cookie; the landing page lists
the booth link(s); the booth page carries everything the interpreter JS needs in `data-*` attributes
(VoxBento writes them in single quotes; pages are read with :mod:`harness.clients.html`). Identifiers are
taken from the server (lobby links, `data-booth-id`, `data-default-channel`), never rebuilt, because their
layout changed on 2026-08-14 (contract 2, 15). The socket itself is :class:`harness.clients.booth_ws.BoothSocket`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping

import requests

from ..contract import routes
from ..contract.languages import BOOTH_LANGUAGE_PATTERN, SLUG_PATTERN
from ..contract.credentials import INVITE_TOKEN_HEX
from .cookies import SESSION_COOKIE, jar_value
from .errors import AuthRejected, BoothMismatch, MalformedResponse, ReadBackError
from .html import parse
from .http import PortalHttp
from .identifiers import BoothRef
from .media_urls import browser_whip_url


# Contract 2: invite tokens are 64 hex characters; accepts a bare token or any URL ending in /join/<token>.
INVITE_TOKEN = re.compile(rf"(?:^|{re.escape(routes.JOIN.path(token=''))})({INVITE_TOKEN_HEX})/?$")
# Contract App. B / 5.1: booth page links `/interpreter/{slug}/{room_id}/{lang}`; before d2bee53 (contract 2, 15)
# `/interpreter/{slug}/{lang}`. Matched on parsed `href` values.
BOOTH_PAGE_HREF = re.compile(rf"^/interpreter/({SLUG_PATTERN})/(?:(\d+)/)?({BOOTH_LANGUAGE_PATTERN})$")
# Contract App. B / 5.1: the booth page's element carrying the `data-*` attributes.
BOOTH_PAGE_ELEMENT_ID = "interpreter-portal"
REQUIRED_BOOTH_ATTRIBUTES = ("booth-id", "granted-role", "whep-url", "default-channel")


def invite_token_of(invite: str) -> str:
    match = INVITE_TOKEN.search(invite.strip())
    if not match:
        raise ValueError("not an invite token or /join/<64 hex> URL")
    return match.group(1)


@dataclasses.dataclass(frozen=True)
class LobbyBooth:
    """One booth link on the lobby, as served."""

    path: str
    event_slug: str
    room_id: int | None  # None on targets before d2bee53, whose links have no room segment
    language_code: str

    @property
    def room_scoped(self) -> bool:
        return self.room_id is not None


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

    @property
    def room_id(self) -> int | None:
        """`data-room-id` (absent before d2bee53, contract 15)."""
        value = self.attributes.get("room-id", "")
        return int(value) if value.isdigit() else None

    @property
    def event_slug(self) -> str | None:
        return self.attributes.get("event-slug") or None


def lobby_booths(text: str, url: str) -> list[LobbyBooth]:
    """Contract 5.1 / App. B: every booth page link on the lobby, in order, without repeats."""
    found: dict[str, LobbyBooth] = {}
    for anchor in parse(text, url).iter("a"):
        href = anchor.get("href") or ""
        match = BOOTH_PAGE_HREF.match(href)
        if match and href not in found:
            slug, room, lang = match.groups()
            found[href] = LobbyBooth(href, slug, int(room) if room else None, lang)
    if not found:
        raise ReadBackError(url, "a link /interpreter/{slug}/{room_id}/{lang} (or /interpreter/{slug}/{lang})")
    return list(found.values())


def booth_page_data(text: str, url: str) -> BoothPage:
    """Contract 5.1 / App. B: the `data-*` attributes of `<div id="interpreter-portal">` (any quote style)."""
    doc = parse(text, url)
    holder = doc.find(id_=BOOTH_PAGE_ELEMENT_ID) or doc.find(where=lambda e: "data-booth-id" in e.attrs)
    attributes = holder.data() if holder is not None else {}
    missing = [a for a in REQUIRED_BOOTH_ATTRIBUTES if not attributes.get(a)]
    if missing:
        raise ReadBackError(url, "booth page attributes data-" + ", data-".join(missing))
    return BoothPage(
        booth_id=attributes["booth-id"],
        granted_role=attributes["granted-role"],
        default_channel=attributes["default-channel"],
        whep_url=attributes["whep-url"],
        whip_base=attributes.get("whip-base") or None,
        whip_url_attr=attributes.get("whip-url") or None,
        booth_token=attributes.get("booth-token", ""),
        attributes=attributes,
    )


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
        response = self.http.request("GET", routes.JOIN.path(token=token), name=routes.JOIN.name, expected=(303,))
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

    def lobby(self) -> list[LobbyBooth]:
        """Contract 5.1 / App. B: the booth links on `GET /interpreter`."""
        response = self._page(routes.INTERPRETER_LOBBY.path(), routes.INTERPRETER_LOBBY.name)
        return lobby_booths(response.text, response.url)

    def booth_page(self, booth: BoothRef | LobbyBooth, *, token: str | None = None, language: str | None = None) -> BoothPage:
        """Contract 5.1: `GET /interpreter/{slug}/{room_id}/{lang}` (or a lobby link as served); 403 when no role
        resolves (AuthRejected). A page for another booth than asked raises BoothMismatch."""
        params = {k: v for k, v in {"token": token, "language": language}.items() if v is not None}
        path = booth.path if isinstance(booth, LobbyBooth) else booth.page_path
        response = self._page(path, routes.INTERPRETER_BOOTH_PAGE.name, params or None)
        page = booth_page_data(response.text, response.url)
        if isinstance(booth, BoothRef) and page.booth_id != booth.booth_id:
            raise BoothMismatch(response.url, booth.booth_id, f"a page for booth {page.booth_id}")
        return page
