"""Public pages (contract sections 3.2, 3.4, 4.5, 9.2).

Routes: ``GET /healthz`` (no DB session: not a DB health signal), ``GET /`` (home: events and their
booths; DB errors are swallowed and the page still answers 200), ``GET /join/{token}`` (single-use
invite -> ``session_token``), ``GET /logout`` and ``GET /admin/logout``.

The HTML helpers these pages share with the other page modules live in ``rendering``.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from ...contract import routes
from . import tokens
from .database import LIST_CAP
from .models import Booth, Event, InviteToken, Membership, Room, utcnow
from .rendering import db_of, redirect, render, settings_of

log = logging.getLogger(__name__)
router = APIRouter()


@router.get(routes.HEALTHZ.server())
async def healthz(request: Request) -> dict[str, Any]:
    # Contract 9.2: no DB session here; only MediaMTX health (cached 5 s, contract 12.2). VoxBento's exact body.
    return {"ok": True, "server": "fastapi", "mediamtx_ok": await request.app.state.media.healthy()}


@router.get("/")
async def home(request: Request) -> Response:
    payload = tokens.decode(settings_of(request), request.cookies.get(tokens.USER_COOKIE))
    events: list[Event] = []
    booths_by_event: dict[int, list[Booth]] = {}
    memberships: list[Membership] = []
    try:
        async with db_of(request).get_session() as session:
            events = list(
                (await session.scalars(select(Event).where(Event.is_deleted.is_(False)).order_by(Event.id).limit(LIST_CAP))).all()
            )
            if events:
                booths = await session.scalars(
                    select(Booth).where(Booth.event_id.in_([e.id for e in events])).order_by(Booth.room_id, Booth.id)
                )
                for booth in booths:
                    booths_by_event.setdefault(booth.event_id, []).append(booth)
            if payload and payload.get("user") and str(payload.get("sub", "")).isdigit():
                memberships = list((await session.scalars(select(Membership).where(Membership.user_id == int(payload["sub"])))).all())
    except Exception:
        # Contract 4.5 / 9.3: DB errors are swallowed; the page answers 200 with no events.
        log.exception("Home page: event query failed")
        events, booths_by_event, memberships = [], {}, []
    return render(
        request, "home.html", {"events": events, "booths_by_event": booths_by_event, "memberships": memberships, "user": payload}
    )


@router.get(routes.JOIN.server("token"))
async def join(request: Request, token: str) -> Response:
    settings = settings_of(request)
    async with db_of(request).get_session() as session:
        invite = await session.scalar(
            select(InviteToken)
            .where(InviteToken.token == token)
            .options(selectinload(InviteToken.booth).selectinload(Booth.room).selectinload(Room.event))
        )
        # Contract 3.4: unknown 404, used 403, expired 403; tokens are single use.
        if invite is None:
            raise HTTPException(status_code=404, detail="Invalid invite token.")
        if invite.used:
            raise HTTPException(status_code=403, detail="Token has already been used.")
        if invite.expires_at is not None and invite.expires_at < utcnow():
            raise HTTPException(status_code=403, detail="Token has expired.")
        invite.used = True
        booth = invite.booth
        event_slug = booth.room.event.slug
        claims = tokens.session_claims(uuid.uuid4().hex, booth.id, invite.role, event_slug, booth.room_id, booth.language_code)
        role = invite.role
    # Contract 3.4: the landing page, not the booth (listener invites cannot be created at HEAD).
    response = redirect(routes.LISTENER_PAGE.path(slug=event_slug) if role == "listener" else routes.INTERPRETER_LOBBY.path())
    tokens.set_cookie(settings, response, tokens.SESSION_COOKIE, tokens.encode(settings, claims))
    return response


@router.get("/logout")
async def logout() -> Response:
    response = redirect("/")
    tokens.delete_auth_cookies(response)
    return response


@router.get(routes.ADMIN_LOGOUT.server())
async def admin_logout() -> Response:
    response = redirect(routes.ADMIN_LOGIN.path())
    tokens.delete_auth_cookies(response)
    return response

