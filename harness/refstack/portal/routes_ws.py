"""The booth and caption WebSockets: handshake auth, the nine booth messages, caption push (contract 3.6, 5.3, 6.3).

Owns ``/ws/booth/{booth_id}`` and ``/ws/captions/{booth_id}``. Handshake rejections close BEFORE accept,
so real clients see the HTTP handshake fail with 403 (contract 3.6 [V]). Each booth socket is served by
one :class:`BoothSocketSession`, whose handler per client message type enforces contract 5.3's
preconditions (via ``booth_state``) and fans the result out through ``ws_manager`` in this socket's own
task, so a stalled recipient stalls this handler too (contract 8.3). DB sessions follow contract 9.2:
a language-name lookup on every booth connect, a role lookup for payloads with ``sub``, a webhook enqueue
on interpreter join and on broadcast lock changes.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlparse

from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnected
from sqlalchemy import select

from ...contract import routes
from . import timeline, tokens, webhooks
from .booth_state import BoothError, BoothIdentity
from .models import Booth, Event
from .roles import MANAGER_ROLES, is_admin_payload, is_listener_payload, rank, resolve_role

log = logging.getLogger(__name__)

router = APIRouter()

# Contract 3.6: VoxBento closes with these before accept; clients only see HTTP 403.
CLOSE_UNAUTHENTICATED = 4001
CLOSE_FORBIDDEN = 4003
# Contract 9.3: the language-name lookup degrades to this name.
DEFAULT_LANGUAGE_NAME = "English"


class HandshakeRejected(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code


def _scope_matches(payload: dict[str, Any], identity: BoothIdentity) -> bool:
    """A participant (invite) payload names exactly this booth's event, room and language
    (the room only where the booth id carries one, i.e. since d2bee53)."""
    return (
        payload.get("event_slug") == identity.event_slug
        and (identity.room_id is None or str(payload.get("room_id")) == str(identity.room_id))
        and payload.get("language_code") == identity.language_code
    )


def _is_participant_payload(payload: dict[str, Any]) -> bool:
    return "event_slug" in payload and "language_code" in payload


def _netloc(url: str) -> str:
    return urlparse(url).netloc.lower()


def authenticate(ws: WebSocket, identity: BoothIdentity) -> dict[str, Any]:
    """Contract 3.6 (`resolve_ws_auth`): the payload the socket acts with, or :class:`HandshakeRejected`."""
    settings = ws.app.state.settings
    token = ws.query_params.get("token")
    if settings.booth_access_token and not settings.timeline.has(timeline.WS_TOKEN_OR_COOKIE):
        return _authenticate_token_only(ws, token)
    if token:
        payload = tokens.decode(settings, token)
        if payload is None:
            raise HandshakeRejected(CLOSE_UNAUTHENTICATED, "token does not decode")
        if is_admin_payload(payload):
            return payload
        if is_listener_payload(payload):
            if not identity.booth_id.startswith(f"{payload.get('event_slug')}-"):
                raise HandshakeRejected(CLOSE_FORBIDDEN, "listener token for another event")
            return payload
        if _is_participant_payload(payload):
            if not _scope_matches(payload, identity):
                raise HandshakeRejected(CLOSE_FORBIDDEN, "token scope does not match booth")
            return payload
        # Contract 3.6: a token with none of those claims falls through to the cookie rules.
    found = tokens.cookie_payload(settings, ws)
    if not settings.booth_access_token:
        # Contract 3.6, 14.24: open mode accepts the cookie payload (or {}) as is, unscoped.
        return found[1] if found else {}
    origin = ws.headers.get("origin")
    if origin is not None and _netloc(origin) not in {_netloc(settings.public_base_url), ws.headers.get("host", "").lower()}:
        raise HandshakeRejected(CLOSE_FORBIDDEN, "origin not allowed")
    if found is None:
        raise HandshakeRejected(CLOSE_UNAUTHENTICATED, "no auth cookie")
    payload = found[1]
    if _is_participant_payload(payload) and not _scope_matches(payload, identity):
        raise HandshakeRejected(CLOSE_FORBIDDEN, "cookie scope does not match booth")
    return payload


def _authenticate_token_only(ws: WebSocket, token: str | None) -> dict[str, Any]:
    """Contract 3.5 history: before 913da47 (2026-08-09) the WS check with BOOTH_ACCESS_TOKEN set was
    `?token=`-only: no cookie, no Origin and no scope rule could admit or refuse a socket. The contract does
    not spell the old rule out; here the token passes when it equals BOOTH_ACCESS_TOKEN or decodes as one of
    our JWTs (what /api/auth/token hands the booth page, contract 5.2 steps 4-5). The role still comes from
    the token's claims, or else from the first decodable cookie, as the role lookup reads both (3.6)."""
    settings = ws.app.state.settings
    if not token:
        raise HandshakeRejected(CLOSE_UNAUTHENTICATED, "no ?token= (token-only WS check before 913da47)")
    payload = tokens.decode(settings, token)
    if payload is None and not hmac.compare_digest(token, settings.booth_access_token):
        raise HandshakeRejected(CLOSE_UNAUTHENTICATED, "token does not decode")
    if payload and (is_admin_payload(payload) or is_listener_payload(payload) or _is_participant_payload(payload)):
        return payload
    found = tokens.cookie_payload(settings, ws)
    return found[1] if found else {}


async def lookup_language_name(app, identity: BoothIdentity) -> str:
    """Contract 9.2: one DB session on every booth connect; errors are logged and degrade to English (9.3)."""
    try:
        async with app.state.db.get_session() as session:
            query = (
                select(Booth.language_name)
                .join(Event, Event.id == Booth.event_id)
                .where(Event.slug == identity.event_slug, Booth.language_code == identity.language_code)
                .order_by(Booth.id)
                .limit(1)
            )
            if identity.room_id is not None:  # before d2bee53 the id names no room: the first booth of the language
                query = query.where(Booth.room_id == identity.room_id)
            name = (await session.execute(query)).scalars().first()
        return name or DEFAULT_LANGUAGE_NAME
    except Exception:
        log.exception("language-name lookup failed for %s", identity.booth_id)
        return DEFAULT_LANGUAGE_NAME


async def _receive_text(ws: WebSocket) -> str | None:
    """The next client frame as text; None once the peer is gone."""
    message = await ws.receive()
    if message["type"] == "websocket.disconnect":
        return None
    if message.get("text") is not None:
        return message["text"]
    return (message.get("bytes") or b"").decode("utf-8", errors="replace")


def _optional_bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


class BoothSocketSession:
    """One accepted ``/ws/booth/{booth_id}`` connection and the participant it may have joined as."""

    def __init__(self, ws: WebSocket, identity: BoothIdentity, payload: dict[str, Any], granted_role: str | None, language_name: str):
        self.ws = ws
        self.app = ws.app
        self.identity = identity
        self.booth_id = identity.booth_id
        self.payload = payload
        self.granted_role = granted_role
        self.language_name = language_name
        # VoxBento's session channel (portal/websockets/handlers.py): `{booth_id}-audio` until a join names another.
        self.channel_id = f"{identity.booth_id}-audio"
        self.participant_id: str | None = None
        self._handlers: dict[str, Callable[[dict[str, Any]], Awaitable[None]]] = {
            "booth:join": self.on_join,
            "booth:leave": self.on_leave,
            "booth:chat": self.on_chat,
            "booth:set-active": self.on_set_active,
            "booth:update-state": self.on_update_state,
            "booth:set-broadcast-unlocked": self.on_set_broadcast_unlocked,
            "booth:initiate-handoff": self.on_initiate_handoff,
            "booth:accept-handoff": self.on_accept_handoff,
            "booth:cancel-handoff": self.on_cancel_handoff,
        }

    @property
    def booths(self):
        return self.app.state.booths

    @property
    def connections(self):
        return self.app.state.connections

    async def send(self, message: dict[str, Any]) -> None:
        try:
            await self.connections.send(self.ws, message)
        except (WebSocketDisconnected, OSError):
            # The peer left while we answered it; the receive loop sees the disconnect and cleans up.
            log.debug("reply to a closed booth socket of %s dropped", self.booth_id)

    async def error(self, text: str) -> None:
        await self.send({"type": "booth:error", "message": text})

    async def broadcast_state(self, state: dict[str, Any]) -> None:
        await self.connections.broadcast_booth(self.booth_id, {"type": "booth:state", "state": state})

    async def run(self) -> None:
        self.connections.add_booth_socket(self.booth_id, self.ws)
        try:
            while (text := await _receive_text(self.ws)) is not None:
                await self.dispatch(text)
        finally:
            self.connections.remove_booth_socket(self.booth_id, self.ws)
            # Contract 5.3, 8.4: closing removes the joined participant BY ID and broadcasts.
            if self.participant_id is not None:
                state = await self.booths.leave(self.booth_id, self.participant_id)
                if state is not None:
                    await self.broadcast_state(state)

    async def dispatch(self, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            message = None
        if not isinstance(message, dict):
            await self.error("Invalid JSON.")
            return
        handler = self._handlers.get(message.get("type"))
        if handler is None:
            await self.error(f"Unknown message type: {message.get('type')}")
            return
        try:
            await handler(message)
        except BoothError as exc:
            await self.error(str(exc))

    # --- contract 5.3, one handler per client message type ---
    async def on_join(self, message: dict[str, Any]) -> None:
        if self.granted_role is None:
            raise BoothError("No role assigned for this session.")
        role = message.get("role") or "interpreter"
        if rank(role) > rank(self.granted_role):
            raise BoothError(f"Your assigned role ({self.granted_role}) does not permit joining as {role}.")
        event_slug = message.get("event_slug")
        # VoxBento checks any event_slug sent, even "", with this text (portal/booth_state.py validate_booth_event).
        if event_slug is not None and event_slug != self.identity.event_slug:
            raise BoothError(f"Booth '{self.booth_id}' does not belong to event '{event_slug}'.")
        room_id = message.get("room_id")
        if room_id is not None:
            try:
                int(room_id)
            except (TypeError, ValueError):
                raise BoothError("room_id must be an integer.") from None
        raw_pid = message.get("participant_id")
        self.channel_id = message.get("channel_id") or self.channel_id
        participant_id, state = await self.booths.join(
            self.booth_id,
            participant_id=str(raw_pid) if raw_pid else None,
            display_name=message.get("display_name") or "Interpreter",
            role=role,
            language=message.get("language") or self.language_name,
            channel_id=self.channel_id,
            booth_language=self.language_name,
        )
        self.participant_id = participant_id
        phantom = self.app.state.settings.fault_joined_booth
        # The fault knob: the reply names another booth, as an old target does after parsing our id its own way.
        joined_state = {**state, "booth_id": phantom} if phantom else state
        await self.send({"type": "booth:joined", "participant_id": participant_id, "state": joined_state})
        await self.broadcast_state(state)
        if role == "interpreter":
            await webhooks.enqueue(
                self.app,
                "booth.interpreter.joined",
                {"booth_id": self.booth_id, "participant_id": participant_id, "display_name": message.get("display_name") or "Interpreter"},
            )

    async def on_leave(self, message: dict[str, Any]) -> None:
        if self.participant_id is None:
            return  # Contract 5.3: ignored if not joined.
        participant_id, self.participant_id = self.participant_id, None
        state = await self.booths.leave(self.booth_id, participant_id)
        if state is not None:
            await self.broadcast_state(state)

    async def on_chat(self, message: dict[str, Any]) -> None:
        chat, state = await self.booths.chat(self.booth_id, self.participant_id, str(message.get("body") or ""))
        # Contract 8.3: chat costs two broadcasts, the message and the whole state.
        await self.connections.broadcast_booth(self.booth_id, {"type": "booth:chat", "message": chat})
        await self.broadcast_state(state)

    async def on_set_active(self, message: dict[str, Any]) -> None:
        state = await self.booths.set_active(self.booth_id, self.participant_id, str(message.get("target_id") or ""))
        await self.broadcast_state(state)

    async def on_update_state(self, message: dict[str, Any]) -> None:
        state = await self.booths.update_state(
            self.booth_id,
            self.participant_id,
            mic_active=_optional_bool(message.get("mic_active")),
            ingest_connected=_optional_bool(message.get("ingest_connected")),
            connected=_optional_bool(message.get("connected")),
        )
        await self.broadcast_state(state)

    async def on_set_broadcast_unlocked(self, message: dict[str, Any]) -> None:
        # Contract 5.3: no join needed; the GRANTED role decides.
        if self.granted_role not in MANAGER_ROLES:
            raise BoothError("Only Room Coordinators can manage broadcast lock.")
        unlocked = bool(message.get("unlocked"))
        state = await self.booths.set_broadcast_unlocked(self.booth_id, unlocked, language=self.language_name,
                                                         channel_id=self.channel_id)
        if not unlocked:
            # Contract 5.3, 7.1: locking stops the booth's transcription worker.
            await self.app.state.workers.stop(self.booth_id)
        update = {"type": "booth:state", "state": state}
        await self.connections.broadcast_booth(self.booth_id, update)
        # Contract 6.3: lock/unlock is the only booth:state caption sockets ever get.
        await self.connections.broadcast_captions(self.booth_id, update)
        await webhooks.enqueue(self.app, "session.status_changed", {"booth_id": self.booth_id, "broadcast_unlocked": unlocked})

    async def on_initiate_handoff(self, message: dict[str, Any]) -> None:
        await self.broadcast_state(await self.booths.initiate_handoff(self.booth_id, self.participant_id))

    async def on_accept_handoff(self, message: dict[str, Any]) -> None:
        await self.broadcast_state(await self.booths.accept_handoff(self.booth_id, self.participant_id))

    async def on_cancel_handoff(self, message: dict[str, Any]) -> None:
        await self.broadcast_state(await self.booths.cancel_handoff(self.booth_id, self.participant_id))


async def _reject(ws: WebSocket, exc: HandshakeRejected, booth_id: str) -> None:
    log.info("ws handshake rejected for %s: %s", booth_id, exc)
    # Contract 3.6: close before accept -> the client sees HTTP 403 on the handshake.
    await ws.close(code=exc.code)


@router.websocket(routes.WS_BOOTH.server("booth_id"))
async def booth_socket(ws: WebSocket, booth_id: str) -> None:
    identity = BoothIdentity.parse(booth_id, ws.app.state.settings.timeline.naming)
    try:
        payload = authenticate(ws, identity)
        if is_listener_payload(payload):
            # Contract 3.6: listener payloads are refused on booth sockets.
            raise HandshakeRejected(CLOSE_FORBIDDEN, "listener payload on a booth socket")
    except HandshakeRejected as exc:
        await _reject(ws, exc, booth_id)
        return
    # Contract 9.2/9.3: both lookups run BEFORE accept, so a slow pool delays the handshake itself.
    language_name = await lookup_language_name(ws.app, identity)
    granted_role = await resolve_role(
        ws.app, payload, event_slug=identity.event_slug, room_id=identity.room_id, language_code=identity.language_code
    )
    # Contract 3.6: a connection with no role is still accepted; only booth:join fails.
    await ws.accept()
    await BoothSocketSession(ws, identity, payload, granted_role, language_name).run()


@router.websocket(routes.WS_CAPTIONS.server("booth_id"))
async def captions_socket(ws: WebSocket, booth_id: str) -> None:
    """Contract 6.3: server push only; client text is read and ignored except {"type": "ping"} -> "pong"."""
    try:
        authenticate(ws, BoothIdentity.parse(booth_id, ws.app.state.settings.timeline.naming))
    except HandshakeRejected as exc:
        await _reject(ws, exc, booth_id)
        return
    await ws.accept()
    connections = ws.app.state.connections
    connections.add_caption_socket(booth_id, ws)
    try:
        while (text := await _receive_text(ws)) is not None:
            try:
                message = json.loads(text)
            except ValueError:
                continue
            if isinstance(message, dict) and message.get("type") == "ping":
                await ws.send_text("pong")
    finally:
        connections.remove_caption_socket(booth_id, ws)
