"""Interpreter pages: the landing page and the booth page (contract 5.1, Appendix B).

Owns ``GET /interpreter`` (lists ``href="/interpreter/{slug}/{room_id}/{lang}"`` links for the invite's
booth or the user's booth memberships) and ``GET /interpreter/{slug}/{room_id}/{lang}`` (the ``data-*``
attributes the interpreter JS boots from); before d2bee53 (``REFSTACK_VOXBENTO_DATE`` < 2026-08-14) the
booth page is ``/interpreter/{slug}/{lang}`` instead, and each shape answers 404 outside its era. The booth
page never creates an in-memory booth (contract 5.2); it ensures the MediaMTX path (12.2).
Templates: ``templates/interpreter_*.html``.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select

from . import tokens
from ...contract import languages
from ...contract import routes
from .models import Booth, Event, Membership, Room
from .rendering import render
from .routes_booth_api import MULTIROOM_ROUTE, SINGLE_ROOM_ROUTE
from .roles import resolve_role

router = APIRouter()

# Contract 1.2 defaults (JITSI_BASE_URL empty -> http://{JITSI_DOMAIN}); they only shape the iframe URL,
# which the portal itself never calls.
JITSI_BASE_URL = "http://jitsi.voxbento.com"
DEFAULT_JITSI_ROOM = "eventyay-stage-room"
NO_ROLE_MESSAGE = "You do not have a role assigned for this event. Ask an admin to assign you one."


def _login_redirect(next_path: str) -> RedirectResponse:
    return RedirectResponse(routes.USER_LOGIN.path() + f"?next={quote(next_path, safe='/')}", status_code=303)


@router.get(routes.INTERPRETER_LOBBY.server())
async def interpreter_lobby(request: Request):
    """Contract 5.1: any decodable cookie, else 303 /login?next=/interpreter; one DB session."""
    found = tokens.cookie_payload(request.app.state.settings, request)
    if found is None:
        return _login_redirect(routes.INTERPRETER_LOBBY.path())
    payload = found[1]
    booth_ids: list[int] = []
    async with request.app.state.db.get_session() as session:
        if isinstance(payload.get("booth_id"), int):
            booth_ids.append(payload["booth_id"])  # an invite's session_token names its DB booth
        sub = str(payload.get("sub", ""))
        if sub.isdigit():
            rows = await session.scalars(
                select(Membership.booth_id).where(Membership.user_id == int(sub), Membership.booth_id.is_not(None))
            )
            booth_ids.extend(b for b in rows if b not in booth_ids)
        rows = []
        if booth_ids:
            rows = (
                await session.execute(
                    select(Booth, Room.display_name, Event.slug, Event.display_name)
                    .join(Room, Room.id == Booth.room_id)
                    .join(Event, Event.id == Booth.event_id)
                    .where(Booth.id.in_(booth_ids))
                    .order_by(Booth.id)
                )
            ).all()
    naming = request.app.state.settings.timeline.naming
    booths = [
        {
            "page_url": naming.booth_page(slug, booth.room_id, booth.language_code),
            "event_slug": slug,
            "event_name": event_name,
            "room_id": booth.room_id,
            "room_name": room_name,
            "language_code": booth.language_code,
            "language_name": booth.language_name,
        }
        for booth, room_name, slug, event_name in rows
    ]
    return render(request, "interpreter_lobby.html", {"booths": booths})


@router.get(routes.INTERPRETER_BOOTH_PAGE.server("event_slug", "room_id", "language_code"), dependencies=[MULTIROOM_ROUTE])
async def interpreter_booth_page(
    event_slug: str, room_id: int, language_code: str, request: Request, token: str = "", language: str = ""
) -> Response:
    return await _booth_page(request, event_slug, room_id, language_code, token, language)


@router.get(routes.INTERPRETER_BOOTH_PAGE.single_room().server("event_slug", "language_code"), dependencies=[SINGLE_ROOM_ROUTE])
async def interpreter_booth_page_single_room(
    event_slug: str, language_code: str, request: Request, token: str = "", language: str = ""
) -> Response:
    """Contract 2, 5.1: the booth page before d2bee53; it no longer exists at HEAD."""
    return await _booth_page(request, event_slug, None, language_code, token, language)


async def _booth_page(
    request: Request, event_slug: str, room_id: int | None, language_code: str, token: str, language: str
) -> Response:
    settings = request.app.state.settings
    naming = settings.timeline.naming
    found = tokens.cookie_payload(settings, request)
    if found is None:
        return _login_redirect(request.url.path)
    if not (languages.is_valid_slug(event_slug) and languages.is_valid_language_code(language_code)):
        raise HTTPException(404, "Booth not found.")
    payload = found[1]
    # Contract 9.2: a role-lookup session for payloads with `sub`, then the page session.
    granted_role = await resolve_role(request.app, payload, event_slug=event_slug, room_id=room_id, language_code=language_code)
    if granted_role is None:
        return render(request, "interpreter_forbidden.html", {"message": NO_ROLE_MESSAGE}, status_code=403)
    path = naming.mediamtx_path(event_slug, room_id, language_code)
    media = request.app.state.media
    await media.ensure_path(path)  # Contract 5.1, 12.2: the page render ensures the path.
    query = (
        select(Booth.language_name, Booth.room_id)
        .join(Event, Event.id == Booth.event_id)
        .where(Event.slug == event_slug, Booth.language_code == language_code)
        .order_by(Booth.id)
        .limit(1)
    )
    if room_id is not None:
        query = query.where(Booth.room_id == room_id)
    async with request.app.state.db.get_session() as session:
        row = (await session.execute(query)).first()
    db_name, db_room_id = row if row is not None else (None, None)
    context = {
        "booth_id": naming.booth_id(event_slug, room_id, language_code),
        "channel": path,
        "whip_base": settings.mediamtx_whip_base,
        "whip_url": media.whip_url(path),
        "whep_url": media.whep_url(path),
        # No relay booth is modelled here (a room-level relay link in VoxBento); the JS treats "" as none.
        "relay_whep_url": "",
        "granted_role": granted_role,
        # Before d2bee53 the URL names no room and VoxBento's page has no data-room-id (7cc5f3e's template).
        "room_id": room_id if room_id is not None else (db_room_id if db_room_id is not None else ""),
        "multiroom": naming.multiroom,
        "event_slug": event_slug,
        "language_code": language_code,
        "language_name": language or db_name or languages.language_name(language_code),
        "jitsi_url": f"{JITSI_BASE_URL}/{DEFAULT_JITSI_ROOM}",
        "jitsi_domain": JITSI_BASE_URL.split("://", 1)[-1],
        "display_name": payload.get("display_name") or "Interpreter",
        "booth_token": token,
    }
    return render(request, "interpreter_booth.html", context)
