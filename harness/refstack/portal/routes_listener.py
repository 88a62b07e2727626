"""The listener page and its audio-delay poll (contract sections 6.1, 6.2, 10, 14.7, 14.11).

Owns ``GET /listener/{event_slug}`` and ``GET /listener/{event_slug}/rooms/{room_id}/audio-delay``: the
access rule (a ``user_token`` that is the first decodable cookie, or the event's join code from
``?code=`` or the ``listener_code_{slug}`` cookie), the per-IP join-code failure limiter, the page's
single DB session (rooms and booths each capped at 100), the concurrent MediaMTX path-ensure per booth,
and the ``<script id="listener-data">`` JSON the listener JS reads.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from . import timeline, tokens
from ...contract import routes
from ...contract.languages import FLOOR
from .models import Booth, Event, Room
from .database import LIST_CAP
from .rendering import client_ip, db_of, error_response, render, settings_of, wants_html

router = APIRouter()

# Contract 10: the listener limiter's 429 text (an HTML page for Accept: text/html).
TOO_MANY_JOIN_ATTEMPTS = "Too many join attempts. Please try again later."
INVALID_JOIN_CODE = "Invalid join code."
NO_LISTENER_ACCESS = "Listener access requires a valid join code."


def _has_access(request: Request, event: Event, code: str | None) -> tuple[bool, bool]:
    """Contract 6.1: returns (access, granted by ?code=). Only the *first* decodable cookie in the order
    admin, user, session counts, and only if it is a user_token: an admin_token masks a user_token."""
    first = tokens.cookie_payload(settings_of(request), request)
    if first is not None and first[0] == tokens.USER_COOKIE:
        return True, False
    if not event.join_code:  # contract 6.1: no code configured -> only logged-in users
        return False, False
    if code is not None and code == event.join_code:
        return True, True
    return request.cookies.get(tokens.listener_code_cookie(event.slug)) == event.join_code, False


def _refuse(request: Request, denied: Response) -> Response:
    """Contract 10: a refused request is a failure for the client IP; the 11th in the window gets 429."""
    limiter = request.app.state.limiters.listener
    ip = client_ip(request)
    if limiter.blocked(ip):
        if wants_html(request):
            return render(request, "rate_limited.html", {"detail": TOO_MANY_JOIN_ATTEMPTS}, status_code=429)
        return error_response(request, 429, TOO_MANY_JOIN_ATTEMPTS)
    limiter.record_failure(ip)
    return denied


def _translation_languages(rows) -> list[dict[str, str]]:
    return [{"language_code": t.language_code, "language_name": t.language_name} for t in rows]


@router.get(routes.LISTENER_PAGE.server("event_slug"))
async def listener_page(request: Request, event_slug: str, code: str | None = None) -> Response:
    media = request.app.state.media
    naming = settings_of(request).timeline.naming
    # Contract 9.2: one session (event, rooms with translation languages, booths with room/translation languages).
    async with db_of(request).get_session() as session:
        event = await session.scalar(select(Event).where(Event.slug == event_slug))
        if event is None or event.is_deleted:
            raise HTTPException(status_code=404, detail="Event not found.")
        access, via_code = _has_access(request, event, code)
        if not access:
            form = render(request, "listener_join.html", {"event": event, "error": INVALID_JOIN_CODE if code else None})
            return _refuse(request, form)
        # Contract 14.22: rooms and booths are each capped at the first 100.
        rooms = (
            await session.scalars(
                select(Room).where(Room.event_id == event.id).order_by(Room.id).limit(LIST_CAP).options(selectinload(Room.translation_languages))
            )
        ).all()
        booths = (
            await session.scalars(
                select(Booth)
                .where(Booth.event_id == event.id)
                .order_by(Booth.id)
                .limit(LIST_CAP)
                .options(selectinload(Booth.room), selectinload(Booth.translation_languages))
            )
        ).all()
        data: dict[str, Any] = {
            "eventSlug": event.slug,
            "booths": [
                {
                    "id": b.id,
                    "room_id": b.room_id,
                    "language_code": b.language_code,
                    "language_name": b.language_name,
                    "channel_id": naming.mediamtx_path(event.slug, b.room_id, b.language_code),
                    "whep_url": media.whep_url(naming.mediamtx_path(event.slug, b.room_id, b.language_code)),
                    "audio_delay_ms": b.room.audio_delay_ms,
                    "translation_enabled": b.translation_enabled,
                    "translation_languages": _translation_languages(b.translation_languages),
                }
                for b in booths
            ],
            "rooms": [
                {
                    "id": r.id,
                    "audio_delay_ms": r.audio_delay_ms,
                    "floor_translation_enabled": r.floor_translation_enabled,
                    "floor_tts_enabled": r.floor_tts_enabled,
                    "translation_languages": _translation_languages(r.translation_languages),
                }
                for r in rooms
            ],
        }
        room_names = [(r.id, r.display_name) for r in rooms]
        floor_paths = [naming.mediamtx_path(event.slug, r.id, FLOOR) for r in rooms if r.floor_transcription_enabled]
    # Contract 10: a success (code or cookie) resets the client's failure window.
    request.app.state.limiters.listener.reset(client_ip(request))
    # Contract 6.1: one path-ensure per booth (and per floor path), concurrently, before rendering.
    await media.ensure_paths([b["channel_id"] for b in data["booths"]] + floor_paths)
    response = render(request, "listener.html", {"event": event, "data": data, "room_names": room_names,
                                                  "data_script": settings_of(request).timeline.has(timeline.LISTENER_DATA_SCRIPT)})
    if via_code:
        settings = settings_of(request)
        tokens.set_cookie(settings, response, tokens.listener_code_cookie(event.slug), code or "", max_age_s=tokens.LISTENER_CODE_MAX_AGE_S)
    return response


@router.get(routes.LISTENER_AUDIO_DELAY.server("event_slug", "room_id"))
async def listener_audio_delay(request: Request, event_slug: str, room_id: int, code: str | None = None) -> Response:
    """Contract 6.2: polled every 3 s per listener; same access rule and limiter as the page; one session."""
    if not settings_of(request).timeline.has(timeline.AUDIO_DELAY_ROUTE):
        raise HTTPException(status_code=404, detail="Not Found")  # Contract 15: the route arrived with ec2eefa (2026-06-21).
    async with db_of(request).get_session() as session:
        event = await session.scalar(select(Event).where(Event.slug == event_slug))
        if event is None or event.is_deleted:
            raise HTTPException(status_code=404, detail="Event not found.")
        access, _ = _has_access(request, event, code)
        if not access:
            return _refuse(request, error_response(request, 403, NO_LISTENER_ACCESS))
        room = await session.get(Room, room_id)
        if room is None or room.event_id != event.id:
            raise HTTPException(status_code=404, detail="Room not found.")
        delay_ms = room.audio_delay_ms
    request.app.state.limiters.listener.reset(client_ip(request))
    return JSONResponse({"audio_delay_ms": delay_ms})
