"""Registered users: registration, login, email links, account, Mission Control (contract 3.3, 4.5, 9.1, 10).

Owns ``/register``, ``/login``, ``/auth/verify/{token}``, ``/auth/magic/{token}``, ``/auth/reset/{token}``,
``POST /api/auth/magic-link``, ``POST /api/auth/check-email``, ``POST /api/auth/forgot-password``,
``/account`` and ``GET /mission-control/{slug}/``, plus the portal's outgoing email.

Two VoxBento costs are reproduced on purpose: bcrypt (cost ``REFSTACK_BCRYPT_ROUNDS``, default 12) runs
directly on the event loop, blocking every other request while it hashes (contract 3.3, 14.5); and the
email is sent inside the request's DB transaction (contract 9.1), so a slow SMTP server holds a pooled
connection and, on SQLite, the write lock (contract 9.3). With ``SMTP_HOST`` empty the link is logged at
WARNING instead, through Python's last-resort handler to stderr, exactly where VoxBento logs it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import logging

import bcrypt
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ...contract import routes
from . import timeline, tokens
from .config import Settings
from .models import AuthToken, Booth, Event, Membership, Room, User, utcnow
from .database import LIST_CAP
from .rendering import db_of, redirect, render, settings_of
from .timeline import BoothNaming

log = logging.getLogger(__name__)
router = APIRouter()

# Contract 3.3: verification links live 15 minutes (magic and reset links use the same lifetime here).
EMAIL_LINK_LIFETIME = dt.timedelta(minutes=15)
TOO_MANY_ATTEMPTS = "Too many attempts. Try again later."  # contract 10, /login
TOO_MANY_REQUESTS = "Too many requests"  # contract 10, magic-link / forgot-password
LINK_SENT_MESSAGE = "If an account exists for that email, a link has been sent."
# Contract 15: the register rule before 2026-07-10.
LEGACY_MIN_PASSWORD_LEN = 8


class AuthTokenType(enum.Enum):
    VERIFICATION = "verification"
    MAGIC_LINK = "magic_link"
    PASSWORD_RESET = "password_reset"


# Contract 3.3: the path each link type points at.
_LINK_PATHS = {
    AuthTokenType.VERIFICATION: "/auth/verify/",
    AuthTokenType.MAGIC_LINK: "/auth/magic/",
    AuthTokenType.PASSWORD_RESET: "/auth/reset/",
}


class EmailDeliveryError(RuntimeError):
    """The SMTP server refused, broke the exchange or did not answer in time."""


class EmailBody(BaseModel):
    email: str


# --- password hashing: deliberately on the event loop (contract 3.3 / 14.5) ---
def hash_password(settings: Settings, password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=settings.bcrypt_rounds)).decode()


def check_password(password: str, password_hash: str) -> bool:
    return bcrypt.checkpw(password.encode(), password_hash.encode())


# --- outgoing email ---
async def _smtp_reply(reader: asyncio.StreamReader, expected: tuple[int, ...]) -> None:
    """Read one (possibly multi-line) SMTP reply and check its code."""
    while True:
        line = await reader.readline()
        if not line:
            raise EmailDeliveryError("SMTP server closed the connection")
        if line[3:4] != b"-":
            break
    code = int(line[:3]) if line[:3].isdigit() else 0
    if code not in expected:
        raise EmailDeliveryError(f"SMTP server answered {line[:3].decode(errors='replace')}")


async def _smtp_send(settings: Settings, to: str, subject: str, body: str) -> None:
    """Plain SMTP (no STARTTLS, no AUTH): enough for a local sink or a black hole."""
    reader, writer = await asyncio.open_connection(settings.smtp_host, settings.smtp_port)
    try:
        await _smtp_reply(reader, (220,))
        for command, expected in (
            (b"EHLO voxload-refstack", (250,)),
            (f"MAIL FROM:<{settings.smtp_from_email}>".encode(), (250,)),
            (f"RCPT TO:<{to}>".encode(), (250, 251)),
            (b"DATA", (354,)),
        ):
            writer.write(command + b"\r\n")
            await _smtp_reply(reader, expected)
        message = f"From: {settings.smtp_from_email}\r\nTo: {to}\r\nSubject: {subject}\r\n\r\n{body}"
        # RFC 5321 4.5.2: lines starting with "." are dot-stuffed.
        stuffed = "\r\n".join("." + line if line.startswith(".") else line for line in message.splitlines())
        writer.write(stuffed.encode() + b"\r\n.\r\n")
        await _smtp_reply(reader, (250,))
        writer.write(b"QUIT\r\n")
    finally:
        writer.close()


async def send_link_email(settings: Settings, to: str, kind: AuthTokenType, token: str) -> None:
    """Send (or, with SMTP_HOST empty, log at WARNING) a link email. Failures are logged, never raised:
    VoxBento's /register answered 200 after its SMTP timeout (contract 9.3)."""
    link = f"{settings.public_base_url}{_LINK_PATHS[kind]}{token}"
    if not settings.smtp_host:
        # Contract 3.3: the would-be link is logged at WARNING (scripted users read it from stderr).
        log.warning("SMTP is not configured; %s email to %s not sent. Link: %s", kind.value, to, link)
        return
    try:
        await asyncio.wait_for(_smtp_send(settings, to, f"VoxBento {kind.value.replace('_', ' ')}", link), settings.smtp_timeout_s)
    except (EmailDeliveryError, OSError, TimeoutError) as exc:
        log.error("Sending %s email to %s failed: %s", kind.value, to, exc.__class__.__name__)


async def issue_link(session: AsyncSession, settings: Settings, user: User, kind: AuthTokenType) -> None:
    """Contract 9.1: the token row is written and the email sent inside the caller's transaction."""
    auth = AuthToken(user_id=user.id, token_type=kind.value, expires_at=utcnow() + EMAIL_LINK_LIFETIME)
    session.add(auth)
    await session.flush()
    await send_link_email(settings, user.email, kind, auth.token)


async def _consume_link(session: AsyncSession, token: str, kind: AuthTokenType) -> User | None:
    auth = await session.scalar(select(AuthToken).where(AuthToken.token == token, AuthToken.token_type == kind.value))
    if auth is None or auth.used or auth.expires_at < utcnow():
        return None
    auth.used = True
    return await session.get(User, auth.user_id)


def _login_response(settings: Settings, user: User, target: str) -> Response:
    response = redirect(target)
    claims = tokens.user_claims(user.id, user.email, user.display_name, user.is_admin)
    tokens.set_cookie(settings, response, tokens.USER_COOKIE, tokens.encode(settings, claims))
    return response


def _local_path(target: str | None, default: str) -> str:
    """Only same-site paths are followed after login (no open redirect)."""
    return target if target and target.startswith("/") and not target.startswith("//") else default


def _user_payload(request: Request) -> dict | None:
    payload = tokens.decode(settings_of(request), request.cookies.get(tokens.USER_COOKIE))
    if payload is None or not payload.get("user") or not str(payload.get("sub", "")).isdigit():
        return None
    return payload


# --- registration and login ---
@router.get(routes.USER_REGISTER.server())
async def register_form(request: Request) -> Response:
    legacy = not settings_of(request).timeline.has(timeline.EMAIL_VERIFICATION)
    return render(request, "register.html", {"error": None, "email": "", "display_name": "", "legacy_register": legacy})


@router.post(routes.USER_REGISTER.server())
async def register(request: Request) -> Response:
    settings = settings_of(request)
    form = await request.form()
    email = str(form.get("email") or "").strip().lower()
    display_name = str(form.get("display_name") or "").strip()
    password = str(form.get("password") or "")
    verification = settings.timeline.has(timeline.EMAIL_VERIFICATION)
    context = {"email": email, "display_name": display_name, "legacy_register": not verification}
    # Contract 3.3: missing fields or a duplicate email -> 422 HTML; the password is optional, no length rule.
    if not email or not display_name:
        return render(request, "register.html", {**context, "error": "Email and display name are required."}, status_code=422)
    if not verification:
        # Contract 15: before f11389f/36754dd (2026-07-10) register took password + password_confirm (>= 8 chars).
        # The contract does not give the failure status; it is the 422 HTML page of the other register failures.
        if len(password) < LEGACY_MIN_PASSWORD_LEN:
            return render(request, "register.html", {**context, "error": "Password must be at least 8 characters."}, status_code=422)
        if password != str(form.get("password_confirm") or ""):
            return render(request, "register.html", {**context, "error": "Passwords do not match."}, status_code=422)
    async with db_of(request).get_session() as session:
        if await session.scalar(select(User.id).where(User.email == email)) is not None:
            return render(request, "register.html", {**context, "error": "An account with this email already exists."}, status_code=422)
        user = User(
            email=email,
            display_name=display_name,
            password_hash=hash_password(settings, password) if password else None,
            # Before 2026-07-10 there was nothing to verify (the column came with migration 018).
            email_verified=not verification,
        )
        session.add(user)
        await session.flush()
        if verification:
            await issue_link(session, settings, user, AuthTokenType.VERIFICATION)
    if not verification:
        # Contract 15: before 2026-07-10 a registration logged the user in immediately (the redirect target is
        # not in the contract; /account is where every other login lands).
        return _login_response(settings, user, "/account")
    # Contract 3.3: 200 "check your email", no cookie.
    return render(request, "register_done.html", {"email": email})


@router.get(routes.USER_LOGIN.server())
async def login_form(request: Request) -> Response:
    return render(request, "login.html", {"error": None, "next_url": request.query_params.get("next", "")})


@router.post(routes.USER_LOGIN.server())
async def login(request: Request) -> Response:
    settings = settings_of(request)
    form = await request.form()
    email = str(form.get("email") or "").strip().lower()
    password = str(form.get("password") or "")
    next_url = str(form.get("next_url") or "")

    def fail(message: str, status_code: int) -> Response:
        return render(request, "login.html", {"error": message, "next_url": next_url}, status_code=status_code)

    # Contract 10: the per-email limiter runs first and counts every attempt, successes included.
    if not request.app.state.limiters.login.allow(request.app.state.limiters.login_key(email)):
        return fail(TOO_MANY_ATTEMPTS, 429)
    async with db_of(request).get_session() as session:
        user = await session.scalar(select(User).where(User.email == email))
        if user is None or not user.password_hash or not check_password(password, user.password_hash):
            return fail("Invalid email or password.", 403)
        if not user.is_active:
            return fail("This account is disabled.", 403)
        # Contract 3.3: verification required since f11389f (2026-07-10).
        if not user.email_verified and settings.timeline.has(timeline.EMAIL_VERIFICATION):
            return fail("Please verify your email address first.", 403)
    return _login_response(settings, user, _local_path(next_url, "/account"))


# --- email links ---
def _link_failed(request: Request) -> Response:
    return render(request, "error.html", {"status_code": 400, "detail": "This link is invalid or has expired."}, status_code=400)


@router.get("/auth/verify/{token}")
async def verify_email(request: Request, token: str) -> Response:
    async with db_of(request).get_session() as session:
        user = await _consume_link(session, token, AuthTokenType.VERIFICATION)
        if user is None:
            return _link_failed(request)
        user.email_verified = True
    return _login_response(settings_of(request), user, "/account")


@router.get("/auth/magic/{token}")
async def magic_login(request: Request, token: str) -> Response:
    async with db_of(request).get_session() as session:
        user = await _consume_link(session, token, AuthTokenType.MAGIC_LINK)
        if user is None:
            return _link_failed(request)
        user.email_verified = True  # contract 3.3: a magic link also verifies the address
    return _login_response(settings_of(request), user, _local_path(request.query_params.get("next"), "/account"))


@router.get("/auth/reset/{token}")
async def reset_form(request: Request, token: str) -> Response:
    return render(request, "reset_password.html", {"token": token, "error": None})


@router.post("/auth/reset/{token}")
async def reset_password(request: Request, token: str) -> Response:
    settings = settings_of(request)
    password = str((await request.form()).get("password") or "")
    if not password:
        return render(request, "reset_password.html", {"token": token, "error": "A password is required."}, status_code=422)
    async with db_of(request).get_session() as session:
        user = await _consume_link(session, token, AuthTokenType.PASSWORD_RESET)
        if user is None:
            return _link_failed(request)
        user.password_hash = hash_password(settings, password)
        user.email_verified = True
    return _login_response(settings, user, "/account")


async def _email_link_request(request: Request, body: EmailBody, kind: AuthTokenType) -> dict:
    limiters = request.app.state.limiters
    email = body.email.strip().lower()
    limiter, key = (
        (limiters.magic_link, limiters.magic_link_key(email))
        if kind is AuthTokenType.MAGIC_LINK
        else (limiters.forgot_password, limiters.forgot_password_key(email))
    )
    # Contract 10: 5 per email per sliding hour.
    if not limiter.allow(key):
        raise HTTPException(status_code=429, detail=TOO_MANY_REQUESTS)
    async with db_of(request).get_session() as session:
        user = await session.scalar(select(User).where(User.email == email))
        if user is not None and user.is_active:
            await issue_link(session, settings_of(request), user, kind)
    return {"message": LINK_SENT_MESSAGE}


@router.post("/api/auth/magic-link")
async def magic_link(request: Request, body: EmailBody) -> dict:
    return await _email_link_request(request, body, AuthTokenType.MAGIC_LINK)


@router.post("/api/auth/forgot-password")
async def forgot_password(request: Request, body: EmailBody) -> dict:
    return await _email_link_request(request, body, AuthTokenType.PASSWORD_RESET)


@router.post("/api/auth/check-email")
async def check_email(request: Request, body: EmailBody) -> dict:
    """Contract 3.3: no rate limit. Shape (ours): ``{"exists": bool, "has_password": bool}``."""
    async with db_of(request).get_session() as session:
        user = await session.scalar(select(User).where(User.email == body.email.strip().lower()))
    return {"exists": user is not None, "has_password": bool(user is not None and user.password_hash)}


# --- account ---
@router.get("/account")
async def account(request: Request) -> Response:
    payload = _user_payload(request)
    if payload is None:
        return redirect(routes.USER_LOGIN.path() + "?next=/account")
    user_id = int(payload["sub"])
    async with db_of(request).get_session() as session:
        user = await session.get(User, user_id)
        if user is None:
            return redirect(routes.USER_LOGIN.path() + "?next=/account")
        # Contract 3.3: three membership queries (event, room, booth scoped).
        event_roles = (await session.execute(
            select(Membership, Event).join(Event, Event.id == Membership.event_id)
            .where(Membership.user_id == user_id, Membership.room_id.is_(None), Membership.booth_id.is_(None))
        )).all()
        room_roles = (await session.execute(
            select(Membership, Room).join(Room, Room.id == Membership.room_id)
            .where(Membership.user_id == user_id, Membership.booth_id.is_(None))
        )).all()
        booth_roles = (await session.execute(
            select(Membership, Booth, Event).join(Booth, Booth.id == Membership.booth_id).join(Event, Event.id == Booth.event_id)
            .where(Membership.user_id == user_id)
        )).all()
    # Contract 2: /account still builds the pre-2026-08-14 two-segment booth URL (d2bee53 left it alone),
    # which 404s from that date on.
    single_room = BoothNaming(multiroom=False)
    booth_links = [
        (m.role, single_room.booth_page(event.slug, None, booth.language_code), booth.language_name) for m, booth, event in booth_roles
    ]
    return render(
        request,
        "account.html",
        {"user": user, "event_roles": event_roles, "room_roles": room_roles, "booth_links": booth_links},
    )


# --- Mission Control ---
@router.get("/mission-control/{event_slug}/")
async def mission_control(request: Request, event_slug: str) -> Response:
    # Contract 4.5: user_token only; an admin_token alone gets 403.
    payload = _user_payload(request)
    if payload is None:
        raise HTTPException(status_code=403, detail="Admin access required.")
    user_id = int(payload["sub"])
    async with db_of(request).get_session() as session:
        event = await session.scalar(select(Event).where(Event.slug == event_slug, Event.is_deleted.is_(False)))
        if event is None:
            raise HTTPException(status_code=404, detail="Event not found.")
        if not payload.get("is_admin"):
            user = await session.get(User, user_id)
            allowed = user is not None and user.is_admin
            if not allowed:
                role = await session.scalar(
                    select(Membership.id).where(
                        Membership.user_id == user_id,
                        Membership.event_id == event.id,
                        Membership.role.in_(("event_owner", "room_coordinator")),
                    )
                )
                allowed = role is not None
            if not allowed:
                raise HTTPException(status_code=403, detail="Admin access required.")
        # Contract 14.22: only the first 100 booths of the event.
        booths = (await session.scalars(select(Booth).where(Booth.event_id == event.id).order_by(Booth.id).limit(LIST_CAP))).all()
    media = request.app.state.media
    naming = settings_of(request).timeline.naming
    cells = [
        {
            "db_id": b.id,
            "booth_id": naming.booth_id(event.slug, b.room_id, b.language_code),
            "room_id": b.room_id,
            "language_code": b.language_code,
            "language_name": b.language_name,
            "whep_url": media.whep_url(naming.mediamtx_path(event.slug, b.room_id, b.language_code)),
        }
        for b in booths
    ]
    return render(request, "mission_control.html", {"event": event, "cells": cells})
