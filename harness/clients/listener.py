"""The listener's HTTP surface: event page with join code and the audio-delay poll (contract 6.1, 6.2, 10).

Access (contract 6.1): a `user_token` cookie, or `?code=` / the `listener_code_{slug}` cookie equal to the
event's join code. Without access the portal serves the join form with **200** and counts a failure for
the client IP; the 11th failure in 60 s is **429** (contract 10), so load tests give each simulated
listener its own ``X-Forwarded-For`` (contract 1.1) or carry the cookie.

Page data (read with :mod:`harness.clients.html`): since 2026-08-17 (6134303) JSON in
`<script id="listener-data" type="application/json">`; before, inline script arrays `var boothsData = [...]`
and `var roomsData = [...]` (contract 15). Either is read; a page with neither is the join form.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from typing import Any

from ..contract import routes
from .cookies import jar_value, listener_code_cookie
from .errors import AuthRejected, MalformedResponse
from .html import parse
from .http import PortalHttp
from .identifiers import BoothRef


# Contract 6.1 / App. B: page data is JSON in `<script id="listener-data" type="application/json">`.
LISTENER_DATA_ID = "listener-data"
# Before 6134303 (contract 15): inline `var boothsData = [...];` and `var roomsData = [...];` in a page script.
INLINE_ARRAY = re.compile(r"\bvar\s+(boothsData|roomsData)\s*=\s*")


@dataclasses.dataclass(frozen=True)
class ListenerBooth:
    """Contract 6.1: one entry of `booths` (`id`, `room_id`, `language_code`, `language_name`, `channel_id`, `whep_url`, ...)."""

    id: Any
    room_id: int
    language_code: str
    language_name: str
    channel_id: str
    whep_url: str
    audio_delay_ms: int
    raw: Mapping[str, Any]

    def ref(self, event_slug: str) -> BoothRef:
        """Contract 6.2 step 1: the captions socket is `/ws/captions/{slug}-{room_id}-{lang}`, built by the JS
        (`{slug}-{lang}` before d2bee53); the layout is recognised from the server's `channel_id`."""
        scoped = self.channel_id != f"{event_slug}/{self.language_code}"
        return BoothRef(event_slug, self.room_id, self.language_code, room_scoped=scoped)


@dataclasses.dataclass(frozen=True)
class ListenerPage:
    event_slug: str
    booths: tuple[ListenerBooth, ...]
    rooms: tuple[Mapping[str, Any], ...]
    raw: Mapping[str, Any]

    def booth(self, room_id: int, language_code: str) -> ListenerBooth | None:
        return next((b for b in self.booths if b.room_id == room_id and b.language_code == language_code), None)


def _inline_arrays(doc_scripts: list[str], url: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    decoder = json.JSONDecoder()
    for code in doc_scripts:
        for match in INLINE_ARRAY.finditer(code):
            try:
                found.setdefault(match.group(1), decoder.raw_decode(code, match.end())[0])
            except ValueError as exc:
                raise MalformedResponse(url, f"var {match.group(1)} is not a JSON array: {exc}") from exc
    return found


def parse_listener_data(text: str, url: str, event_slug: str | None = None) -> ListenerPage | None:
    """The page's booth data; None when the page has none (the join form).

    `event_slug` names the page's event when the page itself does not (inline arrays carry no `eventSlug`).
    """
    doc = parse(text, url)
    holder = doc.find("script", id_=LISTENER_DATA_ID)
    try:
        if holder is not None:
            data = json.loads(holder.raw_text())
        else:
            arrays = _inline_arrays([s.raw_text() for s in doc.iter("script")], url)
            if "boothsData" not in arrays:
                return None
            data = {"eventSlug": event_slug, "booths": arrays["boothsData"], "rooms": arrays.get("roomsData", [])}
        booths = tuple(
            ListenerBooth(
                id=b["id"],
                room_id=int(b["room_id"]),
                language_code=str(b["language_code"]),
                language_name=str(b.get("language_name", "")),
                channel_id=str(b["channel_id"]),
                whep_url=str(b["whep_url"]),
                audio_delay_ms=int(b.get("audio_delay_ms") or 0),
                raw=b,
            )
            for b in data["booths"]
        )
        slug = data.get("eventSlug") or event_slug
        if not slug:
            raise KeyError("eventSlug")
        return ListenerPage(event_slug=str(slug), booths=booths, rooms=tuple(data.get("rooms", ())), raw=data)
    except (ValueError, KeyError, TypeError) as exc:
        raise MalformedResponse(url, f"listener page data does not match contract 6.1: {exc!r}") from exc


class ListenerClient:
    """One listener browser's HTTP side; pass `forwarded_for` on its PortalHttp to give it its own IP."""

    def __init__(self, http: PortalHttp) -> None:
        self.http = http

    def __repr__(self) -> str:
        return f"ListenerClient({self.http!r})"

    def code_cookie(self, event_slug: str) -> str | None:
        return jar_value(self.http.cookies, listener_code_cookie(event_slug))

    def open_page(self, event_slug: str, code: str | None = None) -> ListenerPage:
        """Contract 6.1: `GET /listener/{slug}[?code=]`. Join form (no access) -> AuthRejected; 429 -> RateLimited."""
        params = {"code": code} if code else None
        response = self.http.request("GET", routes.LISTENER_PAGE.path(slug=event_slug), name=routes.LISTENER_PAGE.name, expected=(200,), params=params)
        page = parse_listener_data(response.text, response.url, event_slug)
        if page is None:
            raise AuthRejected(response.url, 200, (200,), "join form served: no access (wrong or missing code, contract 6.1)")
        return page

    def audio_delay_ms(self, event_slug: str, room_id: int) -> int:
        """Contract 6.2 step 4: `{"audio_delay_ms": n}`; 403 without access, 429 from the join-code limiter."""
        response = self.http.request("GET", routes.LISTENER_AUDIO_DELAY.path(slug=event_slug, room_id=room_id),
                                     name=routes.LISTENER_AUDIO_DELAY.name, expected=(200,))
        data = self.http.json_body(response)
        if not isinstance(data, Mapping) or not isinstance(data.get("audio_delay_ms"), int):
            raise MalformedResponse(response.url, 'expected {"audio_delay_ms": <int>} (contract 6.2)')
        return data["audio_delay_ms"]
