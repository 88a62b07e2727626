"""The admin panel as a scripted admin sees it (contract 3.2, 4.1, 4.3, 4.4, 4.5, Appendix B).

All writes are form posts answered with **303**; ids are never in bodies, so they are learned from the
`Location` header (wizard event) or read back from the HTML pages with the shapes of contract
Appendix B, through the HTML parser of :mod:`harness.clients.html` (any quote style, attribute order,
entities, extra attributes). The page shapes live here and nowhere else. Page GETs for read-load scenarios are grouped
under ``[id]`` names so Locust stats do not grow per id.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping

import requests

from ..contract import routes
from ..contract.roles import INVITE_ROLES
from ..contract.credentials import INVITE_TOKEN_HEX, JOIN_CODE_PATTERN
from .cookies import ADMIN_COOKIE, jar_value
from .errors import AuthRejected, MalformedResponse, ReadBackError
from .html import Document, Element, parse
from .http import HTML_ACCEPT, PortalHttp
from .identifiers import recognise_room_scoped
from .interpreter import BOOTH_PAGE_HREF

# --- read-back shapes (contract Appendix B), matched on parsed elements; regexes below see URLs and text only ---
# App. B event id (wizard): `Location: /admin/events/{id}/setup/rooms`.
WIZARD_EVENT_LOCATION = re.compile(routes.ADMIN_SETUP_ROOMS.regex() + "/?$")
# App. B event id (list, 20 per page, oldest first): a `<tr>` with `<a href="/admin/events/{id}/">{name}</a>` and `<code>{slug}</code>`.
EVENT_HREF = re.compile(f"^{routes.ADMIN_EVENT.regex()}$")
# The same row links the interpreter page (`Open Booth`); its shape shows the version's layout (contract 5.1, 15).
INTERPRETER_HREF = BOOTH_PAGE_HREF
# App. B invite token: the `<tr>` holding `<td>{label}</td>` also holds `/join/{64 hex}` (in `<code id="tok-...">`).
INVITE_LINK = re.compile(routes.JOIN.regex({"token": INVITE_TOKEN_HEX}) + r"\b")
# App. B / 4.1 join code: `<span class="join-code">{CODE}</span>`.
JOIN_CODE = re.compile(rf"^{JOIN_CODE_PATTERN}$")
JOIN_CODE_CLASS = "join-code"


@dataclasses.dataclass(frozen=True)
class EventRow:
    event_id: int
    display_name: str
    slug: str


@dataclasses.dataclass(frozen=True)
class RoomSetup:
    room_id: int
    display_name: str
    booth_ids: Mapping[str, int]  # language code -> booth DB id


@dataclasses.dataclass(frozen=True)
class EventSetup:
    """What :meth:`AdminClient.setup_event` created, with every id read back."""

    event_id: int
    slug: str
    join_code: str
    rooms: tuple[RoomSetup, ...]
    room_scoped: bool = True  # the target's booth-id layout (contract 15), recognised from its booth pages


@dataclasses.dataclass(frozen=True)
class BoothRow:
    """One row of a room's booths page: the booth's DB id and, when the row links it, its interpreter page."""

    booth_db_id: int
    interpreter_path: str | None


def _links(scope: Element, href: re.Pattern[str]) -> list[tuple[re.Match[str], Element]]:
    return [(m, a) for a in scope.iter("a") if (m := href.match(a.get("href") or "")) is not None]


def event_rows(doc: Document) -> list[EventRow]:
    """App. B: every `<tr>` of the event list holding an event link and a `<code>` slug."""
    rows = []
    for tr in doc.iter("tr"):
        links, code = _links(tr, EVENT_HREF), tr.find("code")
        if links and code is not None:
            match, anchor = links[0]
            rows.append(EventRow(int(match.group(1)), anchor.text(), code.text()))
    return rows


def room_links(doc: Document, event_id: int) -> dict[int, str]:
    """App. B: room id -> display name: per `<tr>`, the first room link (the name; the `View` button follows it)."""
    # App. B room id: `<a href="/admin/events/{e}/rooms/{room_id}/">{room display name}</a>`.
    href = re.compile(f"^{routes.ADMIN_ROOM.regex(e=event_id)}$")
    named: dict[int, str] = {}
    for tr in doc.iter("tr"):
        links = _links(tr, href)
        if links:
            match, anchor = links[0]
            named.setdefault(int(match.group(1)), anchor.text())
    return named


def booth_rows(doc: Document, event_id: int, room_id: int, language_code: str) -> list[BoothRow]:
    """App. B: the rows holding `<code>{lang}</code>`, each with its booth link (and interpreter link)."""
    # App. B booth DB id: the `<tr>` holding `<code>{lang}</code>` also links `/admin/events/{e}/rooms/{r}/booths/{booth_id}/`.
    href = re.compile(f"^{routes.ADMIN_BOOTH.regex(e=event_id, r=room_id)}$")
    rows = []
    for tr in doc.iter("tr"):
        if not any(code.text() == language_code for code in tr.iter("code")):
            continue
        ids = {int(m.group(1)) for m, _ in _links(tr, href)}
        pages = [m.group(0) for m, _ in _links(tr, INTERPRETER_HREF)]
        rows.extend(BoothRow(i, pages[0] if pages else None) for i in sorted(ids))
    return rows


def invite_tokens(doc: Document, label: str) -> set[str]:
    """App. B: the invite tokens in rows that hold a `<td>` whose text is the label."""
    tokens: set[str] = set()
    for tr in doc.iter("tr"):
        if any(td.text() == " ".join(label.split()) for td in tr.find_all("td")):
            tokens.update(INVITE_LINK.findall(tr.raw_text()))
            tokens.update(t for a in tr.iter("a") for t in INVITE_LINK.findall(a.get("href") or ""))
    return tokens


def join_code(doc: Document) -> str:
    """App. B: `<span class="join-code">CODE</span>` (any element carrying the class; extra classes allowed)."""
    codes = {el.text() for el in doc.find_all(class_=JOIN_CODE_CLASS)}
    valid = {c for c in codes if JOIN_CODE.match(c)}
    if len(valid) != 1:
        raise ReadBackError(doc.url, f'one <span class="{JOIN_CODE_CLASS}"> holding 6 characters of the join-code alphabet',
                            # Codes are credentials: counted, never shown.
                            "not found" if not codes else f"{len(codes)} such elements, {len(valid)} holding a valid code")
    return valid.pop()


class AdminClient:
    """A scripted admin (one PortalHttp = one admin cookie jar)."""

    def __init__(self, http: PortalHttp) -> None:
        self.http = http

    def __repr__(self) -> str:
        return f"AdminClient({self.http!r})"

    # --- plumbing ---
    def _form(self, path: str, name: str, data: Mapping[str, object], expected: Iterable[int] = (303,)) -> requests.Response:
        form = {k: ("" if v is None else str(v)) for k, v in data.items()}
        return self.http.request("POST", path, name=name, expected=tuple(expected), data=form, headers=HTML_ACCEPT)

    def _get(self, path: str, name: str, params: Mapping[str, object] | None = None) -> requests.Response:
        return self.http.request("GET", path, name=name, expected=(200,), params=params, headers=HTML_ACCEPT)

    # --- contract 3.2 ---
    @property
    def admin_cookie(self) -> str | None:
        return jar_value(self.http.cookies, ADMIN_COOKIE)

    def login(self, password: str) -> None:
        """303 `/admin/` + `admin_token` cookie; 403 `Invalid password.` (also when ADMIN_PASSWORD is empty)."""
        response = self._form(routes.ADMIN_LOGIN.path(), routes.ADMIN_LOGIN.name, {"password": password})
        if not self.admin_cookie:
            raise AuthRejected(response.url, 303, (303,), f"login redirected to {response.headers.get('Location')} without {ADMIN_COOKIE}")

    def login_attempt(self, password: str) -> int:
        """One `POST /admin/login` whose outcome is counted, not raised: 303 accepted, 403 refused, 429 limited.

        Contract 10: VoxBento has no limiter on this route; a 429 here means the deployment added one.
        """
        response = self._form(routes.ADMIN_LOGIN.path(), routes.ADMIN_LOGIN.name, {"password": password}, expected=(303, 403, 429))
        return response.status_code

    def logout(self) -> None:
        self.http.request("GET", routes.ADMIN_LOGOUT.path(), name=routes.ADMIN_LOGOUT.name, expected=(303,), headers=HTML_ACCEPT)

    # --- contract 4.1: wizard ---
    def create_event_wizard(self, display_name: str, slug: str | None = None) -> int:
        """`POST /admin/setup` -> 303 `/admin/events/{id}/setup/rooms`; 400 on empty name, bad or duplicate slug."""
        response = self._form(routes.ADMIN_SETUP.path(), routes.ADMIN_SETUP.name, {"display_name": display_name, "slug": slug or ""})
        location = self.http.location(response)
        match = WIZARD_EVENT_LOCATION.search(location.split("?")[0])
        if not match:
            raise MalformedResponse(response.url, f"Location {location!r} does not match {WIZARD_EVENT_LOCATION.pattern}")
        return int(match.group(1))

    def add_room_wizard(self, event_id: int, display_name: str) -> int:
        """`POST .../setup/rooms` (303 same URL); the id is read back from the rooms page (newest room of that name)."""
        self._form(routes.ADMIN_SETUP_ROOMS.path(e=event_id), routes.ADMIN_SETUP_ROOMS.name, {"display_name": display_name})
        return self.room_id(event_id, display_name)

    def add_booth_wizard(self, event_id: int, room_id: int, language_code: str, language_name: str | None = None) -> int:
        """`POST .../setup/booths` (303 even for duplicates); the id is read back from the room's booths page."""
        self._form(routes.ADMIN_SETUP_BOOTHS.path(e=event_id), routes.ADMIN_SETUP_BOOTHS.name,
                   {"room_id": room_id, "language_code": language_code, "language_name": language_name or ""})
        return self.booth_id(event_id, room_id, language_code)

    def join_code(self, event_id: int) -> str:
        """`GET .../setup/invite` generates the code if missing (contract 4.1) and shows it."""
        response = self._get(routes.ADMIN_SETUP_INVITE.path(e=event_id), routes.ADMIN_SETUP_INVITE.name)
        return self._join_code_of(response)

    def setup_event(self, display_name: str, slug: str, rooms: Mapping[str, Iterable[str]]) -> EventSetup:
        """Contract Appendix A1 via the wizard: event, rooms (name -> language codes), booths, join code."""
        event_id = self.create_event_wizard(display_name, slug)
        created = []
        for room_name, languages in rooms.items():
            room_id = self.add_room_wizard(event_id, room_name)
            booth_ids = {lang: self.add_booth_wizard(event_id, room_id, lang) for lang in languages}
            created.append(RoomSetup(room_id, room_name, booth_ids))
        first = next(((r.room_id, lang) for r in created for lang in r.booth_ids), None)
        scoped = self.room_scoped(event_id, first[0], first[1], slug) if first else True
        return EventSetup(event_id, slug, self.join_code(event_id), tuple(created), scoped)

    # --- contract 4.1: classic forms ---
    def create_event(self, slug: str, display_name: str) -> int:
        """`POST /admin/events/` (303 even on failure); the id is read back from the event list pages."""
        self._form(routes.ADMIN_EVENTS.path(), routes.ADMIN_EVENTS.name, {"slug": slug, "display_name": display_name})
        return self.event_id(slug)

    def create_room(self, event_id: int, display_name: str) -> int:
        self._form(routes.ADMIN_ROOMS.path(e=event_id), routes.ADMIN_ROOMS.name, {"display_name": display_name})
        return self.room_id(event_id, display_name)

    def create_booth(self, event_id: int, room_id: int, language_code: str, language_name: str) -> int:
        self._form(routes.ADMIN_BOOTHS.path(e=event_id, r=room_id), routes.ADMIN_BOOTHS.name,
                   {"language_code": language_code, "language_name": language_name})
        return self.booth_id(event_id, room_id, language_code)

    def create_invite(
        self, event_id: int, room_id: int, booth_id: int, label: str, role: str = "interpreter", expires_hours: int | None = None
    ) -> str:
        """`POST .../tokens/` then read the token back by its label; labels must be unique per booth."""
        if role not in INVITE_ROLES:
            raise ValueError(f"role {role!r} not in {INVITE_ROLES} (contract 4.1: unknown roles are a server 500)")
        self._form(routes.ADMIN_TOKENS.path(e=event_id, r=room_id, b=booth_id), routes.ADMIN_TOKENS.name,
                   {"role": role, "label": label, "expires_hours": "" if expires_hours is None else expires_hours})
        return self.invite_token(event_id, room_id, booth_id, label)

    def regenerate_join_code(self, event_id: int) -> str:
        """`POST .../regenerate_join_code/` -> 303 `/admin/events/{e}/`; the new code is read from the event page."""
        self._form(routes.ADMIN_REGENERATE_JOIN_CODE.path(e=event_id), routes.ADMIN_REGENERATE_JOIN_CODE.name, {})
        return self._join_code_of(self._get(routes.ADMIN_EVENT.path(e=event_id), routes.ADMIN_EVENT.name))

    # --- contract 4.3 ---
    def set_transcription(
        self, event_id: int, room_id: int, booth_id: int, enabled: bool, provider: str = "local", model: str = "tiny"
    ) -> None:
        """Absent `transcription_enabled` means false; 400 on bad provider/model; 500 at the worker cap (contract 7.2)."""
        data: dict[str, object] = {"transcription_provider": provider, "transcription_model": model}
        if enabled:
            data["transcription_enabled"] = "true"
        self._form(routes.ADMIN_TRANSCRIPTION_SETTINGS.path(e=event_id, r=room_id, b=booth_id),
                   routes.ADMIN_TRANSCRIPTION_SETTINGS.name, data)

    # --- contract 4.4 ---
    def delete_event(self, event_id: int) -> None:
        self._form(routes.ADMIN_DELETE_EVENT.path(e=event_id), routes.ADMIN_DELETE_EVENT.name, {})

    def delete_room(self, event_id: int, room_id: int) -> None:
        self._form(routes.ADMIN_DELETE_ROOM.path(e=event_id, r=room_id), routes.ADMIN_DELETE_ROOM.name, {})

    def delete_booth(self, event_id: int, room_id: int, booth_id: int) -> None:
        """Contract 4.4: does not stop the booth's worker nor drop the in-memory booth."""
        self._form(routes.ADMIN_DELETE_BOOTH.path(e=event_id, r=room_id, b=booth_id), routes.ADMIN_DELETE_BOOTH.name, {})

    def revoke_invite(self, event_id: int, room_id: int, booth_id: int, token: str) -> None:
        self._form(routes.ADMIN_REVOKE_TOKEN.path(e=event_id, r=room_id, b=booth_id, token=token),
                   routes.ADMIN_REVOKE_TOKEN.name, {})

    # --- read-backs (contract Appendix B) ---
    def _doc(self, path: str, name: str, params: Mapping[str, object] | None = None) -> Document:
        response = self._get(path, name, params)
        return parse(response.text, response.url)

    def events_on_page(self, page: int = 1) -> list[EventRow]:
        return event_rows(self._doc(routes.ADMIN_EVENTS.path(), routes.ADMIN_EVENTS.name, {"page": page}))

    def event_id(self, slug: str, max_pages: int = 1000) -> int:
        """Scan `/admin/events/?page=N` (20 per page, oldest first) until the slug's row appears."""
        for page in range(1, max_pages + 1):
            rows = self.events_on_page(page)
            for row in rows:
                if row.slug == slug:
                    return row.event_id
            if not rows:
                break
        raise ReadBackError(self.http.url(routes.ADMIN_EVENTS.path()), f"a <tr> with an /admin/events/<id>/ link and <code>{slug}</code>")

    def room_id(self, event_id: int, display_name: str) -> int:
        doc = self._doc(routes.ADMIN_ROOMS.path(e=event_id), routes.ADMIN_ROOMS.name)
        ids = [i for i, name in room_links(doc, event_id).items() if name == display_name.strip()]
        if not ids:
            raise ReadBackError(doc.url, f"a link /admin/events/{event_id}/rooms/<id>/ named {display_name!r}")
        return max(ids)  # ids are auto-increment: the newest room of that name is the one just created

    def room_ids(self, event_id: int) -> dict[int, str]:
        return room_links(self._doc(routes.ADMIN_ROOMS.path(e=event_id), routes.ADMIN_ROOMS.name), event_id)

    def booth_row(self, event_id: int, room_id: int, language_code: str) -> BoothRow:
        doc = self._doc(routes.ADMIN_BOOTHS.path(e=event_id, r=room_id), routes.ADMIN_BOOTHS.name)
        rows = booth_rows(doc, event_id, room_id, language_code)
        if len(rows) != 1:
            raise ReadBackError(doc.url, f"a <tr> with <code>{language_code}</code> and a link "
                                f"/admin/events/{event_id}/rooms/{room_id}/booths/<id>/", "not found" if not rows else f"{len(rows)} rows")
        return rows[0]

    def booth_id(self, event_id: int, room_id: int, language_code: str) -> int:
        return self.booth_row(event_id, room_id, language_code).booth_db_id

    def room_scoped(self, event_id: int, room_id: int, language_code: str, slug: str) -> bool:
        """Contract 15 (d2bee53): whether this target puts the room id in booth ids, recognised from the booth
        row's interpreter link (`/interpreter/{slug}/{room_id}/{lang}` or, before, `/interpreter/{slug}/{lang}`)."""
        row = self.booth_row(event_id, room_id, language_code)
        url = self.http.url(routes.ADMIN_BOOTHS.path(e=event_id, r=room_id))
        if row.interpreter_path is None:
            raise ReadBackError(url, f"an /interpreter/... link in the row of <code>{language_code}</code>")
        match = INTERPRETER_HREF.match(row.interpreter_path)
        server_id = f"{match.group(1)}-{match.group(2)}-{match.group(3)}" if match.group(2) else f"{match.group(1)}-{match.group(3)}"
        try:
            return recognise_room_scoped(server_id, slug, room_id, language_code)
        except ValueError as exc:
            raise ReadBackError(url, f"an interpreter link for {slug}/{room_id}/{language_code}", str(exc)) from None

    def invite_token(self, event_id: int, room_id: int, booth_id: int, label: str) -> str:
        doc = self._doc(routes.ADMIN_BOOTH.path(e=event_id, r=room_id, b=booth_id), routes.ADMIN_BOOTH.name)
        tokens = invite_tokens(doc, label)
        if len(tokens) != 1:
            raise ReadBackError(doc.url, f"a <tr> with <td>{label}</td> and /join/<64 hex>",
                                "not found" if not tokens else f"{len(tokens)} tokens")
        return tokens.pop()

    def _join_code_of(self, response: requests.Response) -> str:
        return join_code(parse(response.text, response.url))

    # --- pages for read load (contract 4.5); each returns the HTML ---
    def dashboard(self) -> str:
        return self._get(routes.ADMIN_DASHBOARD.path(), routes.ADMIN_DASHBOARD.name).text

    def events_page(self, page: int = 1) -> str:
        return self._get(routes.ADMIN_EVENTS.path(), routes.ADMIN_EVENTS.name, {"page": page}).text

    def event_page(self, event_id: int) -> str:
        return self._get(routes.ADMIN_EVENT.path(e=event_id), routes.ADMIN_EVENT.name).text

    def rooms_page(self, event_id: int) -> str:
        return self._get(routes.ADMIN_ROOMS.path(e=event_id), routes.ADMIN_ROOMS.name).text

    def room_page(self, event_id: int, room_id: int) -> str:
        return self._get(routes.ADMIN_ROOM.path(e=event_id, r=room_id), routes.ADMIN_ROOM.name).text

    def booths_page(self, event_id: int, room_id: int) -> str:
        return self._get(routes.ADMIN_BOOTHS.path(e=event_id, r=room_id), routes.ADMIN_BOOTHS.name).text

    def booth_page(self, event_id: int, room_id: int, booth_id: int) -> str:
        return self._get(routes.ADMIN_BOOTH.path(e=event_id, r=room_id, b=booth_id), routes.ADMIN_BOOTH.name).text

    def members_page(self, event_id: int) -> str:
        return self._get(routes.ADMIN_MEMBERS.path(e=event_id), routes.ADMIN_MEMBERS.name).text

    def setup_booths_page(self, event_id: int) -> str:
        return self._get(routes.ADMIN_SETUP_BOOTHS.path(e=event_id), routes.ADMIN_SETUP_BOOTHS.name).text
