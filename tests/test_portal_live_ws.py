"""Booth WebSocket protocol against a real portal (contract 3.6, 5.3-5.5, 6.3): real uvicorn, real WS clients."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets
from test_portal_live_helpers import (
    connect,
    cookie_header,
    http,
    join,
    mint,
    provision,
    recv_json,
    recv_until,
    send,
    session_claims,
)

SLUG = "wsfest"


def _interpreter_headers(stack, room_id: int, lang: str = "es", role: str = "interpreter") -> dict[str, str]:
    return cookie_header("session_token", mint(stack, session_claims(SLUG, room_id, lang, role=role)))


def _admin_headers(stack) -> dict[str, str]:
    return cookie_header("admin_token", mint(stack, {"admin": True}))


def _assert_handshake_403(coro) -> None:
    with pytest.raises(websockets.exceptions.InvalidStatus) as info:
        asyncio.run(coro)
    assert info.value.response.status_code == 403


def test_join_sends_joined_then_state_and_first_eligible_joiner_is_active(portal):
    booth = provision(portal, SLUG, "es")
    booth_id, room_id = booth["booth_id"], booth["room_id"]

    async def scenario():
        headers = _interpreter_headers(portal, room_id)
        async with await connect(portal, booth_id, headers) as a, await connect(portal, booth_id, headers) as b:
            joined_a = await join(a, display_name="Ana")
            state_a = await recv_until(a, "booth:state")
            assert joined_a["state"]["active_interpreter_id"] == joined_a["participant_id"]
            assert state_a["state"]["participants"][0]["display_name"] == "Ana"
            assert set(state_a["state"]) == {
                "booth_id", "event_slug", "language_code", "instance", "mediamtx_path", "room_id", "language",
                "channel_id", "active_interpreter_id", "handoff_state", "handoff_initiator_id", "broadcast_unlocked",
                "ingest_status", "participants", "chat_messages",
            }
            joined_b = await join(b, display_name="Ben")
            # Contract 5.5: the second joiner is passive; the first stays active.
            assert joined_b["state"]["active_interpreter_id"] == joined_a["participant_id"]
            assert [p["display_name"] for p in joined_b["state"]["participants"]] == ["Ana", "Ben"]
            seen_by_a = await recv_until(a, "booth:state", where=lambda m: len(m["state"]["participants"]) == 2)
            assert seen_by_a["state"]["active_interpreter_id"] == joined_a["participant_id"]

    asyncio.run(scenario())


def test_handoff_offer_accept_then_stuck_pending_sequence(portal):
    booth = provision(portal, SLUG, "fr")
    booth_id, room_id = booth["booth_id"], booth["room_id"]
    handoff_states: list[str] = []

    async def scenario():
        headers = _interpreter_headers(portal, room_id, "fr")
        a = await connect(portal, booth_id, headers)
        b = await connect(portal, booth_id, headers)
        c = await connect(portal, booth_id, headers)
        pid_a = (await join(a, display_name="A"))["participant_id"]
        pid_b = (await join(b, display_name="B"))["participant_id"]
        pid_c = (await join(c, display_name="C"))["participant_id"]

        async def state_on(ws, predicate):
            message = await recv_until(ws, "booth:state", where=lambda m: predicate(m["state"]))
            handoff_states.append(message["state"]["handoff_state"])
            return message["state"]

        await state_on(c, lambda s: len(s["participants"]) == 3)
        # Offer by the active interpreter, accepted by a passive one: active flips, back to idle.
        await send(a, "booth:initiate-handoff")
        offered = await state_on(c, lambda s: s["handoff_state"] == "offered")
        assert offered["handoff_initiator_id"] == pid_a
        await send(b, "booth:accept-handoff")
        done = await state_on(c, lambda s: s["active_interpreter_id"] == pid_b)
        assert done["handoff_state"] == "idle" and done["handoff_initiator_id"] is None

        # Contract 5.5 [V]: the active interpreter leaves while others stay -> `pending`, a dead end.
        await b.close()
        pending = await state_on(c, lambda s: len(s["participants"]) == 2)
        assert pending["handoff_state"] == "pending"
        assert pending["active_interpreter_id"] == pid_a  # first remaining eligible, by join order
        await send(a, "booth:initiate-handoff")
        assert (await recv_until(a, "booth:error"))["message"] == "A handoff is already in progress."
        await send(c, "booth:initiate-handoff")
        assert (await recv_until(c, "booth:error"))["message"] == "A handoff is already in progress."
        await send(c, "booth:cancel-handoff")
        assert (await recv_until(c, "booth:error"))["message"] == "Only the handoff initiator can cancel."
        await send(c, "booth:accept-handoff")
        assert (await recv_until(c, "booth:error"))["message"]
        # Only emptying the booth clears it.
        await a.close()
        await c.close()
        d = await connect(portal, booth_id, headers)
        joined = await join(d, display_name="D")
        handoff_states.append(joined["state"]["handoff_state"])
        assert joined["state"]["active_interpreter_id"] == joined["participant_id"]
        await d.close()
        assert pid_c

    asyncio.run(scenario())
    assert handoff_states == ["idle", "offered", "idle", "pending", "idle"]


def test_set_active_leaves_handoff_completed_dead_end(portal):
    booth = provision(portal, SLUG, "de")
    booth_id, room_id = booth["booth_id"], booth["room_id"]

    async def scenario():
        headers = _interpreter_headers(portal, room_id, "de")
        async with await connect(portal, booth_id, headers) as a, await connect(portal, booth_id, headers) as b:
            await join(a)
            pid_b = (await join(b))["participant_id"]
            await send(b, "booth:set-active", target_id=pid_b)  # the target itself may ask
            state = (await recv_until(b, "booth:state", where=lambda m: m["state"]["active_interpreter_id"] == pid_b))["state"]
            assert state["handoff_state"] == "completed"
            await send(a, "booth:initiate-handoff")
            assert (await recv_until(a, "booth:error"))["message"] == "A handoff is already in progress."

    asyncio.run(scenario())


def test_chat_broadcasts_message_and_state_with_last_100(portal):
    booth = provision(portal, SLUG, "it")
    booth_id, room_id = booth["booth_id"], booth["room_id"]

    async def scenario():
        async with await connect(portal, booth_id, _interpreter_headers(portal, room_id, "it")) as ws:
            await join(ws)
            await send(ws, "booth:chat", body="")
            assert (await recv_until(ws, "booth:error"))["message"] == "Message body cannot be empty."
            for i in range(105):
                await send(ws, "booth:chat", body=f"msg {i}")
            last = await recv_until(ws, "booth:state", where=lambda m: m["state"]["chat_messages"][-1:] and m["state"]["chat_messages"][-1]["body"] == "msg 104")
            chat = last["state"]["chat_messages"]
            assert len(chat) == 100
            assert chat[0]["body"] == "msg 5"
            assert set(chat[0]) == {"message_id", "sender_id", "sender_name", "body", "sent_at"}

    asyncio.run(scenario())


def test_protocol_errors_and_missing_role(portal):
    booth = provision(portal, SLUG, "pt")
    booth_id, room_id = booth["booth_id"], booth["room_id"]

    async def scenario():
        # Open mode, no cookie: accepted, but booth:join fails (contract 3.6).
        async with await connect(portal, booth_id) as anon:
            await anon.send("{not json")
            assert await recv_json(anon) == {"type": "booth:error", "message": "Invalid JSON."}
            await send(anon, "booth:go-live")
            assert await recv_json(anon) == {"type": "booth:error", "message": "Unknown message type: booth:go-live"}
            await send(anon, "booth:join")
            assert await recv_json(anon) == {"type": "booth:error", "message": "No role assigned for this session."}
        async with await connect(portal, booth_id, _interpreter_headers(portal, room_id, "pt")) as ws:
            await send(ws, "booth:join", role="room_coordinator")
            error = await recv_json(ws)
            assert error["message"] == "Your assigned role (interpreter) does not permit joining as room_coordinator."
            await join(ws)
            # Contract 5.3 [V]: an interpreter cannot manage the broadcast lock.
            await send(ws, "booth:set-broadcast-unlocked", unlocked=True)
            assert (await recv_until(ws, "booth:error"))["message"] == "Only Room Coordinators can manage broadcast lock."
            await send(ws, "booth:initiate-handoff")
            assert (await recv_until(ws, "booth:error"))["message"] == "No other interpreter in the booth to hand off to."

    asyncio.run(scenario())


def test_unknown_booth_id_is_created_by_any_message(portal):
    async def scenario():
        async with await connect(portal, "ghost-77-es", _admin_headers(portal)) as ws:
            await send(ws, "booth:set-broadcast-unlocked", unlocked=True)
            state = (await recv_until(ws, "booth:state"))["state"]
            assert state["booth_id"] == "ghost-77-es" and state["room_id"] == 77 and state["broadcast_unlocked"] is True

    asyncio.run(scenario())
    with http(portal) as client:
        assert client.get("/api/events/ghost/booths/es/state", params={"room_id": 77}).status_code == 200


def test_coordinator_lock_clears_publisher_flags_and_reaches_caption_sockets(portal):
    booth = provision(portal, SLUG, "nl")
    booth_id, room_id = booth["booth_id"], booth["room_id"]

    async def scenario():
        async with (
            await connect(portal, booth_id, _interpreter_headers(portal, room_id, "nl")) as interp,
            await connect(portal, booth_id, _admin_headers(portal)) as coordinator,
            await connect(portal, booth_id, kind="captions") as captions,
        ):
            pid = (await join(interp))["participant_id"]
            await send(coordinator, "booth:set-broadcast-unlocked", unlocked=True)
            unlocked = await recv_json(captions)
            assert unlocked["type"] == "booth:state" and unlocked["state"]["broadcast_unlocked"] is True
            await send(interp, "booth:update-state", mic_active=True, ingest_connected=True)
            live = await recv_until(interp, "booth:state", where=lambda m: m["state"]["ingest_status"] == "connected")
            assert live["state"]["participants"][0]["participant_id"] == pid
            await send(coordinator, "booth:set-broadcast-unlocked", unlocked=False)
            locked = await recv_json(captions)
            assert locked["state"]["broadcast_unlocked"] is False
            assert locked["state"]["ingest_status"] == "disconnected"
            assert locked["state"]["participants"][0]["mic_active"] is False
            assert locked["state"]["participants"][0]["ingest_connected"] is False
            # Contract 6.3: only `ping` gets an answer, the plain text `pong`.
            await captions.send(json.dumps({"type": "hello"}))
            await captions.send(json.dumps({"type": "ping"}))
            assert await asyncio.wait_for(captions.recv(), 5) == "pong"

    asyncio.run(scenario())


def test_open_mode_handshake_rejections_are_http_403(portal):
    booth = provision(portal, SLUG, "sv")
    booth_id = booth["booth_id"]
    _assert_handshake_403(connect(portal, booth_id, query="?token=not-a-jwt"))
    listener = mint(portal, {"sub": "l1", "role": "listener", "event_slug": SLUG})
    # Contract 3.6: listener payloads are refused on booth sockets, but allowed on caption sockets.
    _assert_handshake_403(connect(portal, booth_id, query=f"?token={listener}"))
    other_booth = mint(portal, session_claims(SLUG, booth["room_id"], "fr"))
    _assert_handshake_403(connect(portal, booth_id, query=f"?token={other_booth}"))

    async def caption_ok():
        async with await connect(portal, booth_id, kind="captions", query=f"?token={listener}") as ws:
            await ws.send(json.dumps({"type": "ping"}))
            return await asyncio.wait_for(ws.recv(), 5)

    assert asyncio.run(caption_ok()) == "pong"


def test_auth_mode_handshake_rules(stack_factory):
    portal = stack_factory(portal_env={"BOOTH_ACCESS_TOKEN": "s3cret-booth-token"})
    # Seed the booth with the access token (contract 3.5: ?token= equal to BOOTH_ACCESS_TOKEN passes).
    with http(portal) as client:
        assert client.post(f"/api/events/{SLUG}/booths", json={"language_code": "es"}).status_code == 403
        resp = client.post(f"/api/events/{SLUG}/booths", params={"token": "s3cret-booth-token"}, json={"language_code": "es"})
        assert resp.status_code == 201
    booth_id, room_id = resp.json()["booth_id"], resp.json()["room_id"]
    good = _interpreter_headers(portal, room_id)
    _assert_handshake_403(connect(portal, booth_id))  # no cookie
    _assert_handshake_403(connect(portal, booth_id, {**good, "Origin": "http://evil.example"}))
    _assert_handshake_403(connect(portal, booth_id, _interpreter_headers(portal, room_id, "fr")))  # scope mismatch

    async def allowed():
        async with await connect(portal, booth_id, {**good, "Origin": portal.portal_url}) as ws:
            return await join(ws)

    assert asyncio.run(allowed())["state"]["booth_id"] == booth_id


def test_trusted_participant_id_reuse_and_the_cleanup_quirk(portal):
    booth = provision(portal, SLUG, "fi")
    booth_id, room_id = booth["booth_id"], booth["room_id"]

    async def scenario():
        headers = _interpreter_headers(portal, room_id, "fi")
        observer = await connect(portal, booth_id)
        old = await connect(portal, booth_id, headers)
        assert (await join(old, participant_id="reused-id", display_name="old tab"))["participant_id"] == "reused-id"
        new = await connect(portal, booth_id, headers)
        rejoined = await join(new, participant_id="reused-id", display_name="new tab")
        # Contract 8.4: the id is trusted as given, so the new session takes over the same entry.
        assert [p["display_name"] for p in rejoined["state"]["participants"]] == ["new tab"]
        await old.close()
        # ... and the OLD socket's close removes that id, i.e. the new session's participant.
        emptied = await recv_until(observer, "booth:state", where=lambda m: not m["state"]["participants"])
        assert emptied["state"]["active_interpreter_id"] is None
        await new.close()
        await observer.close()

    asyncio.run(scenario())
