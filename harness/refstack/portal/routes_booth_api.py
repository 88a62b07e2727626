"""The booth JSON API (contract 3.5, 4.2, 4.4, 5.2, 5.5).

Owns ``require_access`` (VoxBento's ``_require_access``, the guard of everything under ``/api/events/...``),
``POST /api/auth/token``, ``GET /api/interpreter/status/{channel_id:path}`` (never guarded), the JSON
provisioning shortcut ``POST /api/events/{slug}/booths`` with its quirks, the booth state and list routes,
the whip-url gate for scripted publishers and the JSON booth delete. Transcription start/stop live in
``transcription``; the booth WebSockets in ``routes_ws``.
"""

from __future__ import annotations

import hmac
import json
from typing import Any
from urllib.parse import urlparse

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from . import tokens
from ...contract import languages
from ...contract import routes
from .booth_state import ParticipantMissing, PublishForbidden
from .models import Booth, Event, InviteToken, Room
from .roles import is_listener_payload

router = APIRouter()

# Contract 4.2: room created when an event has none and no room_id is sent.
DEFAULT_ROOM_NAME = "Main Room"
INSTANCES = ("primary", "backup")


async def require_access(request: Request) -> None:
    """Contract 3.5: open when BOOTH_ACCESS_TOKEN is empty; otherwise a decodable non-listener Bearer JWT,
    ``?token=`` equal to BOOTH_ACCESS_TOKEN, or a decodable non-listener cookie; listener tokens get 403."""
    settings = request.app.state.settings
    if not settings.booth_access_token:
        return
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        payload = tokens.decode(settings, auth[7:].strip())
        if payload is not None:
            if is_listener_payload(payload):
                raise HTTPException(403, "Listener tokens cannot access booth controls.")
            return
    query_token = request.query_params.get("token", "")
    if query_token and hmac.compare_digest(query_token, settings.booth_access_token):
        return
    found = tokens.cookie_payload(settings, request)
    if found is not None:
        if is_listener_payload(found[1]):
            raise HTTPException(403, "Listener tokens cannot access booth controls.")
        return
    raise HTTPException(403, "Invalid or missing auth token.")


def _route_era(multiroom: bool):
    async def check(request: Request) -> None:
        if request.app.state.settings.timeline.naming.multiroom is not multiroom:
            raise HTTPException(404, "Not Found")

    return check


# Contract 2 (d2bee53, 2026-08-14): route shapes with a /rooms/{room_id} (or booth-page room) segment exist
# only from that date; the shapes without it only before. Outside its era a shape answers 404 like any
# unknown path, before the access guard runs.
MULTIROOM_ROUTE = Depends(_route_era(True))
SINGLE_ROOM_ROUTE = Depends(_route_era(False))


@router.post(routes.API_AUTH_TOKEN.server())
async def issue_token(request: Request):
    """Contract 3.5: body optional; 401 when BOOTH_ACCESS_TOKEN is set and differs; the JWT carries no role."""
    settings = request.app.state.settings
    body = await _json_body(request)
    given = str(body.get("token") or "")
    if settings.booth_access_token and not hmac.compare_digest(given, settings.booth_access_token):
        return JSONResponse({"detail": "Invalid access token."}, status_code=401)
    return {"access_token": tokens.encode(settings, {}), "token_type": "bearer"}


@router.get(routes.API_INTERPRETER_STATUS.server("channel_id:path"))
async def interpreter_status(channel_id: str, request: Request):
    # Contract 3.5, 5.2: never guarded; reachability is the cached MediaMTX health (12.2).
    return {"channel_id": channel_id, "state": "mediamtx", "reachable": await request.app.state.media.healthy()}


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise HTTPException(400, "Invalid JSON body.") from None
    if not isinstance(body, dict):
        raise HTTPException(400, "Invalid JSON body.")
    return body


async def _resolve_room(session, event: Event, room_id: int | None, room_name: str | None) -> Room:
    """Contract 4.2 room rules, quirks included."""
    if room_id is None:
        rooms = (await session.scalars(select(Room).where(Room.event_id == event.id).order_by(Room.id))).all()
        if len(rooms) > 1:
            raise HTTPException(400, "Event has multiple rooms. room_id is required.")
        if not rooms:
            room = Room(event_id=event.id, display_name=room_name or DEFAULT_ROOM_NAME)
            session.add(room)
            await session.flush()
            return room
        room = rooms[0]
        if room_name:
            room.display_name = room_name
        return room
    room = await session.get(Room, room_id)
    if room is None or room.event_id != event.id:
        # Contract 4.2 [V]: an unknown room_id creates a NEW room with an auto-increment id,
        # so the id in the response may differ from the one sent.
        room = Room(event_id=event.id, display_name=room_name or f"Room {room_id}")
        session.add(room)
        await session.flush()
        return room
    # Contract 4.2 [V]: an existing room is renamed to "Room {room_id}" when no room_name is sent.
    room.display_name = room_name or f"Room {room_id}"
    return room


async def _resolve_room_by_external_id(session, event: Event, room_id: int, room_name: str | None) -> Room:
    """Before d2bee53 (7cc5f3e's portal/routers/api.py): `room_id` is an external (eventyay) room id, matched against
    `rooms.eventyay_room_id`; a room made by the admin forms has none, so a new room is created; a match is renamed."""
    room = (await session.scalars(select(Room).where(Room.event_id == event.id, Room.eventyay_room_id == str(room_id)))).first()
    display_name = room_name or f"Room {room_id}"
    if room is None:
        room = Room(event_id=event.id, display_name=display_name, eventyay_room_id=str(room_id))
        session.add(room)
        await session.flush()
    else:
        room.display_name = display_name
    return room


@router.post(routes.API_BOOTHS.server("event_slug"), status_code=201, dependencies=[Depends(require_access)])
async def create_booth(event_slug: str, request: Request):
    """Contract 4.2: the JSON provisioning shortcut; a NEW single-use interpreter invite on every call."""
    settings = request.app.state.settings
    body = await _json_body(request)
    language_code = str(body.get("language_code") or "").strip().lower()
    if not languages.is_valid_slug(event_slug):
        raise HTTPException(400, "Invalid event slug.")
    if not languages.is_valid_language_code(language_code):
        raise HTTPException(400, "Invalid language code.")
    language = str(body.get("language") or language_code.upper())
    instance = body.get("instance") or "primary"
    if instance not in INSTANCES:
        raise HTTPException(400, "instance must be 'primary' or 'backup'.")
    raw_room_id = body.get("room_id")
    try:
        room_id = int(raw_room_id) if raw_room_id is not None else None
    except (TypeError, ValueError):
        raise HTTPException(400, "room_id must be an integer.") from None
    room_name = body.get("room_name") or None

    media = request.app.state.media
    async with request.app.state.db.get_session() as session:
        event = (await session.scalars(select(Event).where(Event.slug == event_slug))).one_or_none()
        if event is None:
            # Contract 4.2: an unknown slug creates the event, display name = the slug title-cased.
            event = Event(slug=event_slug, display_name=event_slug.title())
            session.add(event)
            await session.flush()
        naming = settings.timeline.naming
        if naming.multiroom or room_id is None:
            room = await _resolve_room(session, event, room_id, room_name)
        else:
            room = await _resolve_room_by_external_id(session, event, room_id, room_name)
        booth_id = naming.booth_id(event_slug, room.id, language_code)
        path = naming.mediamtx_path(event_slug, room.id, language_code)
        # Before d2bee53 the in-memory booth keeps the room id as sent (VoxBento passes body.room_id).
        state = await request.app.state.booths.get_or_create(
            booth_id, language=language, instance=instance, room_id=None if naming.multiroom else room_id)
        await media.ensure_path(path)
        # Before d2bee53 the DB booth is the event's booth of that language, whatever its room.
        booth_filter = Booth.room_id == room.id if naming.multiroom else Booth.event_id == event.id
        db_booth = (
            await session.scalars(select(Booth).where(booth_filter, Booth.language_code == language_code).order_by(Booth.id))
        ).first()
        if db_booth is None:
            db_booth = Booth(
                event_id=event.id, room_id=room.id, language_code=language_code, language_name=language, instance=instance
            )
            session.add(db_booth)
            await session.flush()
        invite = InviteToken(booth_id=db_booth.id, role="interpreter", label="API invite")
        session.add(invite)
        await session.flush()
        invite_token = invite.token
    public = urlparse(settings.public_base_url)
    return {
        **state,
        "whip_url": media.whip_url(path),
        "whep_url": media.whep_url(path),
        "interpreter_invite_url": f"{settings.public_base_url}/join/{invite_token}",
        # Contract 4.2: always wss://, whatever the scheme of PUBLIC_BASE_URL (VoxBento does so).
        "caption_url": f"wss://{public.netloc}/ws/captions/{booth_id}",
    }


async def _booth_id_for(request: Request, event_slug: str, language_code: str, room_id: int | None) -> str | None:
    """With a room_id: no DB session. Without: one session to find the event's first room (contract 9.2).
    Before d2bee53 the booth id names no room, so ``room_id`` plays no part and no session is opened."""
    naming = request.app.state.settings.timeline.naming
    if not naming.multiroom:
        return naming.booth_id(event_slug, None, language_code)
    if room_id is not None:
        return naming.booth_id(event_slug, room_id, language_code)
    async with request.app.state.db.get_session() as session:
        first_room = (
            await session.execute(
                select(func.min(Room.id)).join(Event, Event.id == Room.event_id).where(Event.slug == event_slug)
            )
        ).scalar_one_or_none()
    return None if first_room is None else naming.booth_id(event_slug, first_room, language_code)


@router.get(routes.API_BOOTHS.server("event_slug"), dependencies=[Depends(require_access)])
async def list_booths(event_slug: str, request: Request):
    """The in-memory booths of an event (only booths the registry holds, contract 5.2)."""
    return await request.app.state.booths.snapshots(event_slug)


@router.get(routes.API_BOOTH_STATE.server("event_slug", "language_code"), dependencies=[Depends(require_access)])
async def booth_state(event_slug: str, language_code: str, request: Request, room_id: int | None = None):
    # Contract 5.2 [V]: never creates a booth; 404 until something put it into the registry.
    booth_id = await _booth_id_for(request, event_slug, language_code, room_id)
    state = None if booth_id is None else await request.app.state.booths.snapshot(booth_id)
    if state is None:
        raise HTTPException(404, "Booth not found.")
    return state


@router.get(routes.API_WHIP_URL.server("event_slug", "language_code"), dependencies=[Depends(require_access)])
async def whip_url(event_slug: str, language_code: str, request: Request, participant_id: str = "", room_id: int | None = None):
    """Contract 5.5: the gate for scripted publishers; auto-creates the in-memory booth."""
    booth_id = await _booth_id_for(request, event_slug, language_code, room_id)
    if booth_id is None:
        raise HTTPException(404, "Participant does not exist in booth.")
    try:
        state = await request.app.state.booths.can_publish(booth_id, participant_id)
    except ParticipantMissing as exc:
        raise HTTPException(404, str(exc)) from None
    except PublishForbidden as exc:
        raise HTTPException(403, str(exc)) from None
    path = state["mediamtx_path"]
    await request.app.state.media.ensure_path(path)
    # VoxBento answers with the MediaMTX path as channel_id, whatever channel the booth was created with.
    return {"whip_url": request.app.state.media.whip_url(path), "channel_id": path, "booth_id": booth_id}


@router.delete(routes.API_DELETE_BOOTH.server("event_slug", "room_id", "language_code"), dependencies=[MULTIROOM_ROUTE, Depends(require_access)])
async def delete_booth(event_slug: str, room_id: int, language_code: str, request: Request):
    """Contract 4.4: stops the worker, deletes the DB booth, drops the in-memory booth; sockets stay open."""
    return await _delete_booth(request, event_slug, room_id, language_code)


@router.delete(routes.API_DELETE_BOOTH.single_room().server("event_slug", "language_code"), dependencies=[SINGLE_ROOM_ROUTE, Depends(require_access)])
async def delete_booth_single_room(event_slug: str, language_code: str, request: Request):
    """Contract 2: the delete route before d2bee53 (2026-08-14), without a room segment; booth = the event's
    first booth of that language."""
    return await _delete_booth(request, event_slug, None, language_code)


async def _delete_booth(request: Request, event_slug: str, room_id: int | None, language_code: str) -> Response:
    booth_id = request.app.state.settings.timeline.naming.booth_id(event_slug, room_id, language_code)
    await request.app.state.workers.stop(booth_id)
    query = (
        select(Booth)
        .options(selectinload(Booth.tokens))
        .join(Event, Event.id == Booth.event_id)
        .where(Event.slug == event_slug, Booth.language_code == language_code)
        .order_by(Booth.id)
        .limit(1)
    )
    if room_id is not None:
        query = query.where(Booth.room_id == room_id)
    async with request.app.state.db.get_session() as session:
        db_booth = (await session.scalars(query)).first()
        if db_booth is not None:
            await session.delete(db_booth)
    await request.app.state.booths.delete(booth_id)
    return Response(status_code=204)
