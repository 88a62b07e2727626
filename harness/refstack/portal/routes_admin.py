"""Admin pages and forms (contract sections 3.2, 4.1, 4.3, 4.4, 4.5, 7.5 and Appendix B).

Owns ``/admin/login``, the admin guards (``require_admin``, ``require_super_admin``), the dashboard, the
setup wizard, the classic event/room/booth/invite pages and forms, the event members page and form,
deletes, the room audio-delay form, the booth transcription-settings form and the admin transcript
read-back API. The HTML keeps the
read-back shapes of contract Appendix B so one scraping client works here and against VoxBento.

VoxBento's page costs are reproduced on purpose (contract 4.5): the rooms list and the wizard booth page
run one booth query per room (N+1), the room page opens two sessions and rebuilds the language list,
the booth page loads every token of the booth. All form successes are 303; there is no CSRF (3.9).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import enum
import hmac
import logging
import math

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from . import tokens
from ...contract import languages
from ...contract import routes
from ...contract.roles import INVITE_ROLES
from .models import (
    Booth,
    Event,
    InviteToken,
    Membership,
    Room,
    TranscriptSegment,
    TranslationLanguage,
    User,
    generate_join_code,
    utcnow,
)
from .database import LIST_CAP
from .rendering import db_of, redirect, render, settings_of
from .routes_users import AuthTokenType, issue_link

log = logging.getLogger(__name__)
router = APIRouter()

ADMIN_REQUIRED = "Admin access required."  # contract 3.2
EVENTS_PER_PAGE = 20  # contract Appendix B / 4.5: classic list and dashboard show 20 events
MAX_AUDIO_DELAY_MS = 10000  # contract 6.2: rooms.audio_delay_ms is 0-10000
# Contract 4.3: providers and their model allow-lists.
PROVIDER_MODELS: dict[str, tuple[str, ...]] = {
    "local": ("tiny", "base", "small", "medium", "large-v2", "large-v3"),
    "openai": ("whisper-1", "gpt-4o-realtime-preview", "gpt-4o-mini-realtime-preview"),
    "deepgram": ("nova-2",),
    "nvidia": ("parakeet-rnnt", "parakeet-ctc"),
    "elevenlabs": ("scribe_v2_realtime",),
}
TRUTHY_FORM_VALUES = frozenset({"true", "on", "1", "yes"})
# Contract 4.3: "enabling or changing provider/model stops, waits 0.1 s and starts a worker".
WORKER_RESTART_PAUSE_S = 0.1


# Contract 4.1: roles an invite token may carry (shared with the clients); anything else makes token creation
# fail with 500 (the ValueError of the lookup).
InviteRole = enum.Enum("InviteRole", {role.upper(): role for role in INVITE_ROLES})


class MemberRole(enum.Enum):
    """Contract 3.2: scoped roles a registered user can hold through a membership."""

    EVENT_OWNER = "event_owner"
    ROOM_COORDINATOR = "room_coordinator"
    INTERPRETER = "interpreter"


@dataclasses.dataclass(frozen=True)
class AdminPrincipal:
    """Who passed the guard: the admin-password cookie or an is_admin user (super admin), or a scoped user."""

    super_admin: bool
    user_id: int | None = None
    event_ids: frozenset[int] = frozenset()  # events a scoped admin may see (ignored for super admins)


# --- guards ---
def _path_int(request: Request, name: str) -> int | None:
    raw = request.path_params.get(name)
    return int(raw) if raw is not None and str(raw).isdigit() else None


async def _principal(request: Request, allow_scoped: bool) -> AdminPrincipal:
    settings = settings_of(request)
    admin = tokens.decode(settings, request.cookies.get(tokens.ADMIN_COOKIE))
    if admin is not None and admin.get("admin") is True:
        return AdminPrincipal(super_admin=True)
    user = tokens.decode(settings, request.cookies.get(tokens.USER_COOKIE))
    if user is None or not user.get("user") or not str(user.get("sub", "")).isdigit():
        raise HTTPException(status_code=403, detail=ADMIN_REQUIRED)
    user_id = int(user["sub"])
    if user.get("is_admin") is True:
        return AdminPrincipal(super_admin=True, user_id=user_id)
    async with db_of(request).get_session() as session:
        row = await session.get(User, user_id)
        if row is not None and row.is_admin:
            return AdminPrincipal(super_admin=True, user_id=user_id)
        if not allow_scoped or row is None:
            raise HTTPException(status_code=403, detail=ADMIN_REQUIRED)
        # Contract 3.2: event_owner / room_coordinator memberships grant admin access scoped by the path.
        memberships = (
            await session.scalars(
                select(Membership).where(
                    Membership.user_id == user_id, Membership.role.in_(("event_owner", "room_coordinator"))
                )
            )
        ).all()
    event_id, room_id = _path_int(request, "event_id"), _path_int(request, "room_id")
    allowed = False
    for m in memberships:
        if event_id is None:
            allowed = True
        elif m.role == "event_owner" and m.event_id == event_id:
            allowed = True
        elif m.role == "room_coordinator" and m.event_id == event_id and (room_id is None or m.room_id == room_id):
            allowed = True
    if not allowed:
        raise HTTPException(status_code=403, detail=ADMIN_REQUIRED)
    return AdminPrincipal(super_admin=False, user_id=user_id, event_ids=frozenset(m.event_id for m in memberships if m.event_id))


async def require_admin(request: Request) -> AdminPrincipal:
    """Contract 3.2: admin cookie, is_admin user, or a membership scoped to the path's event/room."""
    return await _principal(request, allow_scoped=True)


async def require_super_admin(request: Request) -> AdminPrincipal:
    """Contract 3.2: only the admin-password cookie or an is_admin user."""
    return await _principal(request, allow_scoped=False)


# --- loaders (404 on anything that is not in the path's event/room) ---
async def _event(session: AsyncSession, event_id: int) -> Event:
    event = await session.get(Event, event_id)
    if event is None or event.is_deleted:
        raise HTTPException(status_code=404, detail="Event not found.")
    return event


async def _room(session: AsyncSession, event_id: int, room_id: int) -> Room:
    room = await session.get(Room, room_id)
    if room is None or room.event_id != event_id:
        raise HTTPException(status_code=404, detail="Room not found.")
    return room


async def _booth(session: AsyncSession, event_id: int, room_id: int, booth_id: int) -> Booth:
    booth = await session.get(Booth, booth_id)
    if booth is None or booth.room_id != room_id or booth.event_id != event_id:
        raise HTTPException(status_code=404, detail="Booth not found.")
    return booth


def _form_str(form, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _invite_expiry(expires_hours: str) -> dt.datetime | None:
    """Contract 4.1: ``expires_hours`` is an integer; blank means the invite never expires."""
    return utcnow() + dt.timedelta(hours=int(expires_hours)) if expires_hours else None


# --- login ---
@router.get(routes.ADMIN_LOGIN.server())
async def admin_login_form(request: Request) -> Response:
    return render(request, "admin_login.html", {"error": None})


@router.post(routes.ADMIN_LOGIN.server())
async def admin_login(request: Request) -> Response:
    settings = settings_of(request)
    password = _form_str(await request.form(), "password")
    # Contract 3.2: no rate limit; an empty ADMIN_PASSWORD makes every attempt fail.
    if not settings.admin_password or not hmac.compare_digest(password.encode(), settings.admin_password.encode()):
        return render(request, "admin_login.html", {"error": "Invalid password."}, status_code=403)
    response = redirect(routes.ADMIN_DASHBOARD.path())
    tokens.set_cookie(settings, response, tokens.ADMIN_COOKIE, tokens.encode(settings, tokens.admin_claims()))
    return response


# --- dashboard ---
@router.get(routes.ADMIN_DASHBOARD.server())
async def dashboard(request: Request, who: AdminPrincipal = Depends(require_admin)) -> Response:
    async with db_of(request).get_session() as session:
        visible = Event.is_deleted.is_(False)
        if not who.super_admin:
            visible = visible & Event.id.in_(who.event_ids)
        event_count = await session.scalar(select(func.count()).select_from(Event).where(visible))
        events = (await session.scalars(select(Event).where(visible).order_by(Event.id.desc()).limit(EVENTS_PER_PAGE))).all()
        # Contract 4.5: one booth query for all shown events (VoxBento fixed this N+1 on 2026-06-14).
        booths_by_event: dict[int, list[Booth]] = {}
        if events:
            for booth in await session.scalars(select(Booth).where(Booth.event_id.in_([e.id for e in events])).order_by(Booth.id)):
                booths_by_event.setdefault(booth.event_id, []).append(booth)
    mediamtx_ok = await request.app.state.media.healthy()
    return render(
        request,
        "admin_dashboard.html",
        {"event_count": event_count, "events": events, "booths_by_event": booths_by_event, "mediamtx_ok": mediamtx_ok},
    )


# --- wizard ---
@router.get(routes.ADMIN_SETUP.server())
async def setup_form(request: Request, who: AdminPrincipal = Depends(require_super_admin)) -> Response:
    return render(request, "admin_setup_event.html", {"error": None, "display_name": "", "slug": ""})


@router.post(routes.ADMIN_SETUP.server())
async def setup_create_event(request: Request, who: AdminPrincipal = Depends(require_super_admin)) -> Response:
    form = await request.form()
    display_name, slug = _form_str(form, "display_name"), _form_str(form, "slug").lower()
    slug = slug or languages.slugify(display_name)
    context = {"display_name": display_name, "slug": slug}
    # Contract 4.1: 400 HTML on empty name, invalid slug, duplicate slug.
    if not display_name:
        return render(request, "admin_setup_event.html", {**context, "error": "Event name is required."}, status_code=400)
    if not languages.is_valid_slug(slug):
        return render(request, "admin_setup_event.html", {**context, "error": f"Invalid slug '{slug}'."}, status_code=400)
    async with db_of(request).get_session() as session:
        if await session.scalar(select(Event.id).where(Event.slug == slug)) is not None:
            return render(
                request, "admin_setup_event.html", {**context, "error": f"An event with slug '{slug}' already exists."}, status_code=400
            )
        event = Event(slug=slug, display_name=display_name)
        session.add(event)
        await session.flush()
        event_id = event.id
    return redirect(routes.ADMIN_SETUP_ROOMS.path(e=event_id))


@router.get(routes.ADMIN_SETUP_ROOMS.server("event_id"))
async def setup_rooms_form(request: Request, event_id: int, who: AdminPrincipal = Depends(require_admin)) -> Response:
    async with db_of(request).get_session() as session:
        event = await _event(session, event_id)
        rooms = (await session.scalars(select(Room).where(Room.event_id == event_id).order_by(Room.id))).all()
    return render(request, "admin_setup_rooms.html", {"event": event, "rooms": rooms})


@router.post(routes.ADMIN_SETUP_ROOMS.server("event_id"))
async def setup_add_room(request: Request, event_id: int, who: AdminPrincipal = Depends(require_admin)) -> Response:
    await _add_room(request, event_id)
    return redirect(routes.ADMIN_SETUP_ROOMS.path(e=event_id))


async def _add_room(request: Request, event_id: int) -> None:
    """Contract 4.1: the wizard and the classic form add a room the same way; an empty name is ignored."""
    display_name = _form_str(await request.form(), "display_name")
    async with db_of(request).get_session() as session:
        await _event(session, event_id)
        if display_name:
            session.add(Room(event_id=event_id, display_name=display_name))


async def _rooms_with_booths_n_plus_1(session: AsyncSession, event_id: int) -> list[tuple[Room, list[Booth]]]:
    """Contract 4.5: VoxBento's N+1 on the rooms list and wizard booth page: one booth query (plus a
    selectin of the tokens) per room."""
    rooms = (await session.scalars(select(Room).where(Room.event_id == event_id).order_by(Room.id))).all()
    out = []
    for room in rooms:
        booths = (
            await session.scalars(select(Booth).where(Booth.room_id == room.id).order_by(Booth.id).options(selectinload(Booth.tokens)))
        ).all()
        out.append((room, list(booths)))
    return out


@router.get(routes.ADMIN_SETUP_BOOTHS.server("event_id"))
async def setup_booths_form(request: Request, event_id: int, who: AdminPrincipal = Depends(require_admin)) -> Response:
    async with db_of(request).get_session() as session:
        event = await _event(session, event_id)
        rooms = await _rooms_with_booths_n_plus_1(session, event_id)
    selected = request.query_params.get("room_id", "")
    return render(
        request,
        "admin_setup_booths.html",
        {"event": event, "rooms": rooms, "selected_room_id": selected, "language_choices": languages.language_choices()},
    )


async def _create_booth(session: AsyncSession, event_id: int, room_id: int, language_code: str, language_name: str) -> Booth | None:
    """Shared by the wizard and the classic form: both answer 303 even when nothing was created (contract 4.1)."""
    if not languages.is_valid_language_code(language_code):
        log.warning("Booth not created: invalid language code %r", language_code)
        return None
    existing = await session.scalar(select(Booth.id).where(Booth.room_id == room_id, Booth.language_code == language_code))
    if existing is not None:
        log.warning("Booth not created: room %d already has a %r booth", room_id, language_code)
        return None
    booth = Booth(
        event_id=event_id,
        room_id=room_id,
        language_code=language_code,
        language_name=language_name or languages.language_name(language_code),
    )
    session.add(booth)
    await session.flush()
    return booth


@router.post(routes.ADMIN_SETUP_BOOTHS.server("event_id"))
async def setup_add_booth(request: Request, event_id: int, who: AdminPrincipal = Depends(require_admin)) -> Response:
    form = await request.form()
    room_raw = _form_str(form, "room_id")
    language_code = _form_str(form, "language_code").lower()
    async with db_of(request).get_session() as session:
        await _event(session, event_id)
        room = await session.get(Room, int(room_raw)) if room_raw.isdigit() else None
        if room is None or room.event_id != event_id:
            log.warning("Booth not created: room %r is not in event %d", room_raw, event_id)
        else:
            await _create_booth(session, event_id, room.id, language_code, _form_str(form, "language_name"))
    return redirect(routes.ADMIN_SETUP_BOOTHS.path(e=event_id) + f"?room_id={room_raw}")


def _ensure_join_code(event: Event) -> str:
    if not event.join_code:
        event.join_code = generate_join_code()
    return event.join_code


@router.get(routes.ADMIN_SETUP_INVITE.server("event_id"))
async def setup_invite(request: Request, event_id: int, who: AdminPrincipal = Depends(require_admin)) -> Response:
    async with db_of(request).get_session() as session:
        event = await _event(session, event_id)
        # Contract 4.1: the invite page generates the listener join code if the event has none.
        join_code = _ensure_join_code(event)
    listener_url = f"{settings_of(request).public_base_url}/listener/{event.slug}"
    return render(request, "admin_setup_invite.html", {"event": event, "join_code": join_code, "listener_url": listener_url})


# --- classic events ---
@router.get(routes.ADMIN_EVENTS.server())
async def events_list(request: Request, page: int = 1, who: AdminPrincipal = Depends(require_admin)) -> Response:
    page = max(page, 1)
    async with db_of(request).get_session() as session:
        visible = Event.is_deleted.is_(False)
        if not who.super_admin:
            visible = visible & Event.id.in_(who.event_ids)
        total = await session.scalar(select(func.count()).select_from(Event).where(visible)) or 0
        # Contract Appendix B: 20 per page, oldest first.
        events = (
            await session.scalars(select(Event).where(visible).order_by(Event.id).offset((page - 1) * EVENTS_PER_PAGE).limit(EVENTS_PER_PAGE))
        ).all()
    pages = max(1, math.ceil(total / EVENTS_PER_PAGE))
    return render(request, "admin_events.html", {"events": events, "page": page, "pages": pages, "total": total})


@router.post(routes.ADMIN_EVENTS.server())
async def events_create(request: Request, who: AdminPrincipal = Depends(require_super_admin)) -> Response:
    form = await request.form()
    slug, display_name = _form_str(form, "slug").lower(), _form_str(form, "display_name")
    # Contract 4.1: every failure of the classic form is a silent 303 back to the list.
    if display_name and languages.is_valid_slug(slug):
        async with db_of(request).get_session() as session:
            if await session.scalar(select(Event.id).where(Event.slug == slug)) is None:
                session.add(Event(slug=slug, display_name=display_name))
            else:
                log.warning("Event not created: slug %r exists", slug)
    else:
        log.warning("Event not created: missing name or invalid slug %r", slug)
    return redirect(routes.ADMIN_EVENTS.path())


@router.get(routes.ADMIN_EVENT.server("event_id"))
async def event_detail(request: Request, event_id: int, who: AdminPrincipal = Depends(require_admin)) -> Response:
    async with db_of(request).get_session() as session:
        event = await _event(session, event_id)
        rooms = (await session.scalars(select(Room).where(Room.event_id == event_id).order_by(Room.id))).all()
    listener_url = f"{settings_of(request).public_base_url}/listener/{event.slug}"
    return render(request, "admin_event_detail.html", {"event": event, "rooms": rooms, "listener_url": listener_url})


@router.post(routes.ADMIN_REGENERATE_JOIN_CODE.server("event_id"))
async def regenerate_join_code(request: Request, event_id: int, who: AdminPrincipal = Depends(require_admin)) -> Response:
    async with db_of(request).get_session() as session:
        event = await _event(session, event_id)
        event.join_code = generate_join_code()
    return redirect(routes.ADMIN_EVENT.path(e=event_id))


@router.post(routes.ADMIN_DELETE_EVENT.server("event_id"))
async def event_delete(request: Request, event_id: int, who: AdminPrincipal = Depends(require_super_admin)) -> Response:
    async with db_of(request).get_session() as session:
        event = await _event(session, event_id)
        # Contract 4.4: hard ORM delete with cascades; in-memory booths and workers are left alone.
        await session.execute(delete(Membership).where(Membership.event_id == event_id))
        booth_ids = select(Booth.id).where(Booth.event_id == event_id).scalar_subquery()
        await session.execute(delete(TranslationLanguage).where(TranslationLanguage.booth_id.in_(booth_ids)))
        await session.delete(event)
    return redirect(routes.ADMIN_EVENTS.path())


# --- members (contract 3.3 item 4, 4.5, 9.1) ---
@router.get(routes.ADMIN_MEMBERS.server("event_id"))
async def members_page(request: Request, event_id: int, who: AdminPrincipal = Depends(require_admin)) -> Response:
    async with db_of(request).get_session() as session:
        event = await _event(session, event_id)
        # Contract 4.5: the event's memberships plus the first 100 users.
        members = (
            await session.execute(
                select(Membership, User).join(User, User.id == Membership.user_id).where(Membership.event_id == event_id).order_by(Membership.id)
            )
        ).all()
        users = (await session.scalars(select(User).order_by(User.id).limit(LIST_CAP))).all()
        rooms = (await session.scalars(select(Room).where(Room.event_id == event_id).order_by(Room.id))).all()
    return render(
        request,
        "admin_members.html",
        {"event": event, "members": members, "users": users, "rooms": rooms, "roles": [r.value for r in MemberRole]},
    )


@router.post(routes.ADMIN_MEMBERS.server("event_id"))
async def members_add(request: Request, event_id: int, who: AdminPrincipal = Depends(require_admin)) -> Response:
    """Fields (ours; the contract names only the behaviour): ``email``, ``role``, optional ``room_id`` and
    ``booth_id``. Unknown emails become unverified users and get a magic-link invite; the email is sent
    inside the transaction (contract 9.1), so a slow SMTP server holds the session and the write lock."""
    form = await request.form()
    email = _form_str(form, "email").lower()
    try:
        role = MemberRole(_form_str(form, "role"))
    except ValueError:
        raise HTTPException(status_code=400, detail="Unknown membership role.") from None
    if "@" not in email:
        raise HTTPException(status_code=400, detail="A valid email is required.")
    room_raw, booth_raw = _form_str(form, "room_id"), _form_str(form, "booth_id")
    async with db_of(request).get_session() as session:
        await _event(session, event_id)
        room_id = (await _room(session, event_id, int(room_raw))).id if room_raw.isdigit() else None
        booth_id = (await _booth(session, event_id, room_id, int(booth_raw))).id if booth_raw.isdigit() and room_id else None
        user = await session.scalar(select(User).where(User.email == email))
        invited = user is None
        if user is None:
            user = User(email=email, display_name=email.split("@")[0])
            session.add(user)
            await session.flush()
        session.add(Membership(user_id=user.id, role=role.value, event_id=event_id, room_id=room_id, booth_id=booth_id))
        if invited:
            await issue_link(session, settings_of(request), user, AuthTokenType.MAGIC_LINK)
    return redirect(routes.ADMIN_MEMBERS.path(e=event_id))


@router.post("/admin/events/{event_id}/members/{membership_id}/delete")
async def members_remove(request: Request, event_id: int, membership_id: int, who: AdminPrincipal = Depends(require_admin)) -> Response:
    async with db_of(request).get_session() as session:
        await session.execute(delete(Membership).where(Membership.id == membership_id, Membership.event_id == event_id))
    return redirect(routes.ADMIN_MEMBERS.path(e=event_id))


# --- rooms ---
@router.get(routes.ADMIN_ROOMS.server("event_id"))
async def rooms_list(request: Request, event_id: int, who: AdminPrincipal = Depends(require_admin)) -> Response:
    async with db_of(request).get_session() as session:
        event = await _event(session, event_id)
        rooms = await _rooms_with_booths_n_plus_1(session, event_id)
    return render(request, "admin_rooms.html", {"event": event, "rooms": rooms})


@router.post(routes.ADMIN_ROOMS.server("event_id"))
async def rooms_create(request: Request, event_id: int, who: AdminPrincipal = Depends(require_admin)) -> Response:
    await _add_room(request, event_id)
    return redirect(routes.ADMIN_ROOMS.path(e=event_id))


@router.get(routes.ADMIN_ROOM.server("event_id", "room_id"))
async def room_detail(request: Request, event_id: int, room_id: int, who: AdminPrincipal = Depends(require_admin)) -> Response:
    # Contract 4.5: two sessions, and the full language list rebuilt and sorted per request.
    async with db_of(request).get_session() as session:
        event = await _event(session, event_id)
        room = await _room(session, event_id, room_id)
    async with db_of(request).get_session() as session:
        booths = (await session.scalars(select(Booth).where(Booth.room_id == room_id).order_by(Booth.id))).all()
    return render(
        request,
        "admin_room_detail.html",
        {"event": event, "room": room, "booths": booths, "language_choices": languages.language_choices(), "max_delay_ms": MAX_AUDIO_DELAY_MS},
    )


@router.post("/admin/events/{event_id}/rooms/{room_id}/audio-delay")
async def room_audio_delay(request: Request, event_id: int, room_id: int, who: AdminPrincipal = Depends(require_admin)) -> Response:
    """Not named by the contract: VoxBento sets rooms.audio_delay_ms from the room page; this is our route for it."""
    raw = _form_str(await request.form(), "audio_delay_ms")
    # Contract 6.2: the delay is 0-10000 ms.
    if not raw.isdigit() or int(raw) > MAX_AUDIO_DELAY_MS:
        raise HTTPException(status_code=400, detail=f"audio_delay_ms must be an integer from 0 to {MAX_AUDIO_DELAY_MS}.")
    async with db_of(request).get_session() as session:
        room = await _room(session, event_id, room_id)
        room.audio_delay_ms = int(raw)
    return redirect(routes.ADMIN_ROOM.path(e=event_id, r=room_id))


@router.post(routes.ADMIN_DELETE_ROOM.server("event_id", "room_id"))
async def room_delete(request: Request, event_id: int, room_id: int, who: AdminPrincipal = Depends(require_admin)) -> Response:
    async with db_of(request).get_session() as session:
        await _room(session, event_id, room_id)
        # Contract 4.4: bulk deletes that bypass ORM cascades (translation-language rows may be orphaned).
        booth_ids = select(Booth.id).where(Booth.room_id == room_id).scalar_subquery()
        await session.execute(delete(Membership).where(Membership.booth_id.in_(booth_ids)))
        await session.execute(delete(InviteToken).where(InviteToken.booth_id.in_(booth_ids)))
        await session.execute(delete(Booth).where(Booth.room_id == room_id))
        await session.execute(delete(Room).where(Room.id == room_id))
    return redirect(routes.ADMIN_ROOMS.path(e=event_id))


# --- booths ---
@router.get(routes.ADMIN_BOOTHS.server("event_id", "room_id"))
async def booths_list(request: Request, event_id: int, room_id: int, who: AdminPrincipal = Depends(require_admin)) -> Response:
    async with db_of(request).get_session() as session:
        event = await _event(session, event_id)
        room = await _room(session, event_id, room_id)
        booths = (await session.scalars(select(Booth).where(Booth.room_id == room_id).order_by(Booth.id))).all()
    naming = settings_of(request).timeline.naming
    # VoxBento's row links each booth's interpreter page (in the era's layout) and the event's listener page.
    pages = {booth.id: naming.booth_page(event.slug, room.id, booth.language_code) for booth in booths}
    return render(
        request, "admin_booths.html",
        {"event": event, "room": room, "booths": booths, "booth_pages": pages, "language_choices": languages.language_choices()},
    )


@router.post(routes.ADMIN_BOOTHS.server("event_id", "room_id"))
async def booths_create(request: Request, event_id: int, room_id: int, who: AdminPrincipal = Depends(require_admin)) -> Response:
    form = await request.form()
    language_code, language_name = _form_str(form, "language_code").lower(), _form_str(form, "language_name")
    async with db_of(request).get_session() as session:
        await _room(session, event_id, room_id)
        # Contract 4.1: both fields required on the classic form; failures are a silent 303.
        if language_code and language_name:
            await _create_booth(session, event_id, room_id, language_code, language_name)
        else:
            log.warning("Booth not created: language_code and language_name are required")
    return redirect(routes.ADMIN_BOOTHS.path(e=event_id, r=room_id))


@router.get(routes.ADMIN_BOOTH.server("event_id", "room_id", "booth_id"))
async def booth_detail(
    request: Request, event_id: int, room_id: int, booth_id: int, who: AdminPrincipal = Depends(require_admin)
) -> Response:
    async with db_of(request).get_session() as session:
        event = await _event(session, event_id)
        room = await _room(session, event_id, room_id)
        booth = await _booth(session, event_id, room_id, booth_id)
        # Contract 4.5: every token of the booth (unbounded), the first 100 users, the booth's memberships.
        invite_tokens = (await session.scalars(select(InviteToken).where(InviteToken.booth_id == booth_id).order_by(InviteToken.id))).all()
        users = (await session.scalars(select(User).order_by(User.id).limit(LIST_CAP))).all()
        memberships = (await session.scalars(select(Membership).where(Membership.booth_id == booth_id))).all()
    return render(
        request,
        "admin_booth_detail.html",
        {
            "event": event,
            "room": room,
            "booth": booth,
            "booth_key": settings_of(request).timeline.naming.booth_id(event.slug, room.id, booth.language_code),
            "booth_page": settings_of(request).timeline.naming.booth_page(event.slug, room.id, booth.language_code),
            "tokens": invite_tokens,
            "users": users,
            "memberships": memberships,
            "roles": [r.value for r in InviteRole],
            "provider_models": PROVIDER_MODELS,
            "language_choices": languages.language_choices(),
            "public_base_url": settings_of(request).public_base_url,
            "now": utcnow(),
        },
    )


@router.post(routes.ADMIN_TOKENS.server("event_id", "room_id", "booth_id"))
async def token_create(
    request: Request, event_id: int, room_id: int, booth_id: int, who: AdminPrincipal = Depends(require_admin)
) -> Response:
    form = await request.form()
    role_raw = _form_str(form, "role")
    back = routes.ADMIN_BOOTH.path(e=event_id, r=room_id, b=booth_id)
    if not role_raw:  # contract 4.1: a missing role is a no-op 303
        return redirect(back)
    # Contract 4.1: an unknown role raises here and the generic handler answers 500.
    role = InviteRole(role_raw)
    expires_at = _invite_expiry(_form_str(form, "expires_hours"))
    async with db_of(request).get_session() as session:
        await _booth(session, event_id, room_id, booth_id)
        session.add(InviteToken(booth_id=booth_id, role=role.value, label=_form_str(form, "label"), expires_at=expires_at))
    return redirect(back)


@router.post(routes.ADMIN_REVOKE_TOKEN.server("event_id", "room_id", "booth_id", "token"))
async def token_revoke(
    request: Request, event_id: int, room_id: int, booth_id: int, token: str, who: AdminPrincipal = Depends(require_admin)
) -> Response:
    async with db_of(request).get_session() as session:
        await _booth(session, event_id, room_id, booth_id)
        invite = await session.scalar(select(InviteToken).where(InviteToken.token == token, InviteToken.booth_id == booth_id))
        if invite is not None:  # contract 4.4: revoking marks the token used
            invite.used = True
    return redirect(routes.ADMIN_BOOTH.path(e=event_id, r=room_id, b=booth_id))


@router.post(routes.ADMIN_TRANSCRIPTION_SETTINGS.server("event_id", "room_id", "booth_id"))
async def booth_transcription_settings(
    request: Request, event_id: int, room_id: int, booth_id: int, who: AdminPrincipal = Depends(require_admin)
) -> Response:
    form = await request.form()
    enabled = _form_str(form, "transcription_enabled").lower() in TRUTHY_FORM_VALUES  # absent = false
    provider = _form_str(form, "transcription_provider") or "local"
    model = _form_str(form, "transcription_model") or "tiny"
    # Contract 4.3: provider and model allow-lists, 400 otherwise.
    if provider not in PROVIDER_MODELS:
        raise HTTPException(status_code=400, detail=f"Invalid provider '{provider}'")
    if model not in PROVIDER_MODELS[provider]:
        raise HTTPException(status_code=400, detail=f"Invalid model '{model}' for provider '{provider}'")
    state = request.app.state
    async with db_of(request).get_session() as session:
        event = await _event(session, event_id)
        booth = await _booth(session, event_id, room_id, booth_id)
        if provider != "local":
            # Contract 4.3: external providers need the event flag and a stored key; the reference portal
            # stores no provider keys (no API_KEY_ENCRYPTION_KEY surface), so they always stop here.
            if not event.transcription_api_enabled:
                raise HTTPException(status_code=400, detail="External API transcription is disabled for this event.")
            raise HTTPException(status_code=400, detail=f"No API key configured for provider '{provider}'.")
        changed = (booth.transcription_provider, booth.transcription_model) != (provider, model)
        was_enabled = booth.transcription_enabled
        booth.transcription_enabled, booth.transcription_provider, booth.transcription_model = enabled, provider, model
        await session.flush()
        booth_key = settings_of(request).timeline.naming.booth_id(event.slug, room_id, booth.language_code)
        live = state.booths.get_sync(booth_key)
        # Contract 4.3 / 7.2: workers are touched only when the in-memory booth has an active interpreter,
        # and inside this transaction: a WorkerCapacityError at the cap propagates, the generic handler
        # answers 500 and the DB change is rolled back.
        if live is not None and live.active_interpreter_id:
            if not enabled:
                await state.workers.stop(booth_key)
                await state.workers.push_settings_changed(booth_key)  # contract 6.3: the empty final caption
            elif changed or not was_enabled:
                await state.workers.stop(booth_key)
                if was_enabled:
                    await state.workers.push_settings_changed(booth_key)
                await asyncio.sleep(WORKER_RESTART_PAUSE_S)
                await state.workers.start(
                    booth_key, event_slug=event.slug, room_id=room_id, language_code=booth.language_code, provider=provider, model=model
                )
    return redirect(routes.ADMIN_BOOTH.path(e=event_id, r=room_id, b=booth_id))


@router.post(routes.ADMIN_DELETE_BOOTH.server("event_id", "room_id", "booth_id"))
async def booth_delete(
    request: Request, event_id: int, room_id: int, booth_id: int, who: AdminPrincipal = Depends(require_admin)
) -> Response:
    async with db_of(request).get_session() as session:
        booth = await _booth(session, event_id, room_id, booth_id)
        # Contract 4.4 / 14.3: an ORM delete only; the booth's worker keeps running and its in-memory
        # booth stays in the registry.
        await session.delete(booth)
    return redirect(routes.ADMIN_BOOTHS.path(e=event_id, r=room_id))


# --- transcripts (contract 7.5) ---
@router.get("/api/admin/events/{event_id}/rooms/{room_id}/transcripts/{language_code}")
async def room_transcripts(
    request: Request, event_id: int, room_id: int, language_code: str, who: AdminPrincipal = Depends(require_admin)
) -> dict:
    """Persisted final segments of one booth, oldest first:
    ``{"event_id", "room_id", "language_code", "booth_id", "count", "segments": [{"segment_id", "seq", "text", "created_at"}]}``.
    ``?target_lang=`` (translations) is refused with 400: the reference portal does not persist translations."""
    if request.query_params.get("target_lang"):
        raise HTTPException(status_code=400, detail="Translated transcripts are not stored by the reference portal.")
    async with db_of(request).get_session() as session:
        event = await _event(session, event_id)
        await _room(session, event_id, room_id)
        booth_key = settings_of(request).timeline.naming.booth_id(event.slug, room_id, language_code)
        segments = (
            await session.scalars(select(TranscriptSegment).where(TranscriptSegment.booth_id == booth_key).order_by(TranscriptSegment.id))
        ).all()
    return {
        "event_id": event_id,
        "room_id": room_id,
        "language_code": language_code,
        "booth_id": booth_key,
        "count": len(segments),
        "segments": [
            {"segment_id": s.segment_id, "seq": s.seq, "text": s.text, "created_at": s.created_at.isoformat() + "Z"} for s in segments
        ],
    }
