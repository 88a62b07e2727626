"""The booth JSON API under `/api/...` (contract 3.5, 4.2, 4.4, 5.2, 5.5, 7.1, 7.2).

Guarded by `BOOTH_ACCESS_TOKEN` (contract 3.5): open when it is empty; otherwise a request passes with a
decodable non-listener Bearer JWT (e.g. from :meth:`BoothApi.fetch_bearer`), ``?token=`` equal to the
access token, or a decodable non-listener cookie in the session's jar. `GET /api/interpreter/status/*`
is never guarded.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from ..contract import routes
from ..contract.credentials import INVITE_TOKEN_HEX
from .booth_state import BoothState
from .errors import MalformedResponse
from .http import PortalHttp
from .media_urls import encode_uri_component

# Contract 4.2: `interpreter_invite_url` is `{PUBLIC_BASE_URL}/join/{token}`, token 64 hex (contract 2).
_INVITE_URL_TOKEN = re.compile(routes.JOIN.regex({"token": INVITE_TOKEN_HEX}) + "$")


@dataclasses.dataclass(frozen=True)
class CreatedBooth:
    """Contract 4.2: the 201 body (state object plus four URLs); a new single-use invite on every call."""

    state: BoothState
    whip_url: str
    whep_url: str
    interpreter_invite_url: str
    invite_token: str
    caption_url: str


@dataclasses.dataclass(frozen=True)
class WhipGrant:
    whip_url: str
    channel_id: str
    booth_id: str


class BoothApi:
    def __init__(self, http: PortalHttp, *, bearer: str | None = None, query_token: str | None = None, room_scoped: bool = True) -> None:
        """`room_scoped`: the target's layout (contract 15, ``BoothRef.room_scoped``), as recognised at provisioning."""
        self.http = http
        self.room_scoped = room_scoped
        self._bearer = bearer
        self._query_token = query_token

    def __repr__(self) -> str:
        return f"BoothApi({self.http!r}, bearer={'set' if self._bearer else 'none'}, query_token={'set' if self._query_token else 'none'})"

    def with_layout(self, room_scoped: bool) -> BoothApi:
        """The same credentials on a target of the given layout (contract 15)."""
        api = BoothApi(self.http, bearer=self._bearer, query_token=self._query_token, room_scoped=room_scoped)
        return api

    def _booth_route(self, route: routes.Route, event_slug: str, room_id: int, language_code: str) -> str:
        if not self.room_scoped:
            return route.single_room().path(slug=event_slug, lang=language_code)
        return route.path(slug=event_slug, room_id=room_id, lang=language_code)

    def transcription_start_path(self, event_slug: str, room_id: int, language_code: str) -> str:
        """The start route on this target's layout, for findings that name it."""
        return self._booth_route(routes.API_TRANSCRIPTION_START, event_slug, room_id, language_code)

    def _auth(self, params: Mapping[str, Any] | None = None) -> tuple[dict[str, str], dict[str, Any]]:
        headers = {"Authorization": f"Bearer {self._bearer}"} if self._bearer else {}
        merged = {k: v for k, v in (params or {}).items() if v is not None}
        if self._query_token:
            merged["token"] = self._query_token
        return headers, merged

    # --- contract 3.5 ---
    def fetch_bearer(self, access_token: str = "") -> str:
        """`POST /api/auth/token {"token": ...}` -> `access_token`; also used for later calls. 401 when wrong."""
        response = self.http.request("POST", routes.API_AUTH_TOKEN.path(), name=routes.API_AUTH_TOKEN.name, expected=(200,), json={"token": access_token})
        return self._keep_bearer(response)

    def try_fetch_bearer(self, access_token: str = "") -> str | None:
        """What the interpreter page does (contract 5.2 step 4): keep the JWT on 200; 401 (auth mode, wrong or
        empty token, contract 3.5) is a listed outcome, not an error, and leaves the page on its cookie."""
        response = self.http.request("POST", routes.API_AUTH_TOKEN.path(), name=routes.API_AUTH_TOKEN.name, expected=(200, 401), json={"token": access_token})
        return None if response.status_code == 401 else self._keep_bearer(response)

    def _keep_bearer(self, response) -> str:
        body = self.http.json_body(response)
        if not isinstance(body, Mapping) or not body.get("access_token") or body.get("token_type") != "bearer":
            raise MalformedResponse(response.url, "expected {access_token, token_type: bearer} (contract 3.5)")
        self._bearer = str(body["access_token"])
        return self._bearer

    # --- contract 4.2 ---
    def create_booth(
        self,
        event_slug: str,
        language_code: str,
        *,
        language: str | None = None,
        room_id: int | None = None,
        room_name: str | None = None,
        instance: str | None = None,
    ) -> CreatedBooth:
        body: dict[str, Any] = {"language_code": language_code}
        body.update({k: v for k, v in {"language": language, "room_id": room_id, "room_name": room_name, "instance": instance}.items()
                     if v is not None})
        headers, params = self._auth()
        response = self.http.request("POST", routes.API_BOOTHS.path(slug=event_slug), name=routes.API_BOOTHS.name,
                                     expected=(201,), json=body, headers=headers, params=params)
        data = self.http.json_body(response)
        state = BoothState.from_json(data, response.url)
        try:
            invite_url = str(data["interpreter_invite_url"])
            urls = {k: str(data[k]) for k in ("whip_url", "whep_url", "caption_url")}
        except KeyError as exc:
            raise MalformedResponse(response.url, f"missing contract 4.2 field {exc}") from exc
        match = _INVITE_URL_TOKEN.search(invite_url)
        if not match:
            raise MalformedResponse(response.url, "interpreter_invite_url does not end in /join/<64 hex> (contract 4.2)")
        return CreatedBooth(state=state, interpreter_invite_url=invite_url, invite_token=match.group(1), **urls)

    # --- contract 5.2 / 6.2 ---
    def state(self, event_slug: str, language_code: str, room_id: int | None = None) -> BoothState:
        headers, params = self._auth({"room_id": room_id})
        response = self.http.request("GET", routes.API_BOOTH_STATE.path(slug=event_slug, lang=language_code),
                                     name=routes.API_BOOTH_STATE.name, expected=(200,), headers=headers, params=params)
        return BoothState.from_json(self.http.json_body(response), response.url)

    # --- contract 5.5 ---
    def whip_url(self, event_slug: str, language_code: str, participant_id: str, room_id: int) -> WhipGrant:
        """404 `Participant does not exist in booth.`; 403 `Only the active interpreter can publish audio.`"""
        headers, params = self._auth({"participant_id": participant_id, "room_id": room_id})
        response = self.http.request("GET", routes.API_WHIP_URL.path(slug=event_slug, lang=language_code),
                                     name=routes.API_WHIP_URL.name, expected=(200,), headers=headers, params=params)
        data = self.http.json_body(response)
        try:
            return WhipGrant(whip_url=str(data["whip_url"]), channel_id=str(data["channel_id"]), booth_id=str(data["booth_id"]))
        except (KeyError, TypeError) as exc:
            raise MalformedResponse(response.url, f"expected whip_url, channel_id, booth_id (contract 5.5): {exc!r}") from exc

    # --- contract 7.1 / 7.2 ---
    def transcription_start(self, event_slug: str, room_id: int, language_code: str) -> Mapping[str, Any]:
        """200 `{"status": "started"|"disabled", ...}`; 429 at the worker cap (raised as RateLimited)."""
        headers, params = self._auth()
        response = self.http.request("POST", self._booth_route(routes.API_TRANSCRIPTION_START, event_slug, room_id, language_code),
                                     name=routes.API_TRANSCRIPTION_START.name,
                                     expected=(200,), json={}, headers=headers, params=params)
        return self.http.json_body(response)

    def transcription_stop(self, event_slug: str, room_id: int, language_code: str) -> Mapping[str, Any]:
        headers, params = self._auth()
        response = self.http.request("POST", self._booth_route(routes.API_TRANSCRIPTION_STOP, event_slug, room_id, language_code),
                                     name=routes.API_TRANSCRIPTION_STOP.name,
                                     expected=(200,), json={}, headers=headers, params=params)
        return self.http.json_body(response)

    # --- contract 4.4 ---
    def delete_booth(self, event_slug: str, room_id: int, language_code: str) -> None:
        headers, params = self._auth()
        self.http.request("DELETE", self._booth_route(routes.API_DELETE_BOOTH, event_slug, room_id, language_code),
                          name=routes.API_DELETE_BOOTH.name, expected=(204,), headers=headers, params=params)

    # --- contract 5.2 step 2 (never guarded) ---
    def interpreter_status(self, channel: str) -> Mapping[str, Any]:
        response = self.http.request("GET", routes.API_INTERPRETER_STATUS.path(channel=encode_uri_component(channel)),
                                     name=routes.API_INTERPRETER_STATUS.name, expected=(200,))
        data = self.http.json_body(response)
        if not isinstance(data, Mapping) or "reachable" not in data:
            raise MalformedResponse(response.url, "expected {channel_id, state, reachable} (contract 5.2)")
        return data
