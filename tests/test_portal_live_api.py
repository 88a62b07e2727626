"""Booth JSON API and interpreter pages against a real portal (contract 3.5, 4.2, 4.4, 5.1, 5.2, 5.5)."""

from __future__ import annotations

import asyncio
import re

from harness.clients.interpreter import booth_page_data, lobby_booths
from test_portal_live_helpers import connect, cookie_header, http, join, mint, provision, session_claims, sql

SLUG = "apifest"


def test_json_shortcut_provisioning_and_its_quirks(portal):
    first = provision(portal, SLUG, "es", language="Spanish")
    # Contract 4.2: unknown slug creates the event (title-cased name) and a "Main Room".
    assert sql(portal, "SELECT display_name FROM events WHERE slug = ?", (SLUG,)) == [("Apifest",)]
    room_id = first["room_id"]
    assert sql(portal, "SELECT display_name FROM rooms WHERE id = ?", (room_id,)) == [("Main Room",)]
    assert first["booth_id"] == f"{SLUG}-{room_id}-es"
    assert first["mediamtx_path"] == f"{SLUG}/{room_id}/es"
    assert first["language"] == "Spanish" and first["participants"] == [] and first["handoff_state"] == "idle"
    assert first["whip_url"] == f"{portal.media_http_url}/{SLUG}/{room_id}/es/whip"
    assert first["whep_url"] == f"{portal.media_http_url}/{SLUG}/{room_id}/es/whep"
    host = portal.portal_url.split("://", 1)[1]
    # Contract 4.2: always wss://, whatever PUBLIC_BASE_URL's scheme.
    assert first["caption_url"] == f"wss://{host}/ws/captions/{first['booth_id']}"
    token_1 = re.fullmatch(rf"{re.escape(portal.portal_url)}/join/([0-9a-f]{{64}})", first["interpreter_invite_url"]).group(1)

    # A second call for the same booth: same booth, a NEW single-use invite every time.
    second = provision(portal, SLUG, "es", room_id=room_id)
    token_2 = second["interpreter_invite_url"].rsplit("/", 1)[1]
    assert token_2 != token_1 and second["booth_id"] == first["booth_id"]
    assert sql(portal, "SELECT COUNT(*) FROM booths WHERE room_id = ? AND language_code = 'es'", (room_id,)) == [(1,)]
    assert sql(portal, "SELECT COUNT(*) FROM invite_tokens WHERE role = 'interpreter'") == [(2,)]
    # Contract 4.2 [V]: an existing room sent without room_name is renamed "Room {id}".
    assert sql(portal, "SELECT display_name FROM rooms WHERE id = ?", (room_id,)) == [(f"Room {room_id}",)]

    # An unknown room_id creates a new room with an auto-increment id (not the one sent).
    third = provision(portal, SLUG, "fr", room_id=999)
    assert third["room_id"] != 999
    assert sql(portal, "SELECT display_name FROM rooms WHERE id = ?", (third["room_id"],)) == [("Room 999",)]
    with http(portal) as client:
        # Now the event has two rooms: room_id becomes mandatory.
        resp = client.post(f"/api/events/{SLUG}/booths", json={"language_code": "de"})
        assert resp.status_code == 400 and resp.json()["detail"] == "Event has multiple rooms. room_id is required."
        assert client.post("/api/events/Bad_Slug/booths", json={"language_code": "es"}).status_code == 400
        assert client.post(f"/api/events/{SLUG}/booths", json={"language_code": "xx"}).status_code == 400
        listed = client.get(f"/api/events/{SLUG}/booths").json()
        assert sorted(b["booth_id"] for b in listed) == sorted([first["booth_id"], third["booth_id"]])
        # The invite is a real single-use token: the first join works.
        assert client.get(f"/join/{token_1}").status_code == 303


def test_state_is_404_until_the_booth_is_in_memory_and_delete_drops_it(portal):
    with http(portal) as client:
        assert client.get(f"/api/events/{SLUG}/booths/it/state", params={"room_id": 1}).status_code == 404
        booth = provision(portal, SLUG, "it")
        room_id = booth["room_id"]
        state = client.get(f"/api/events/{SLUG}/booths/it/state", params={"room_id": room_id})
        assert state.status_code == 200 and state.json()["booth_id"] == booth["booth_id"]
        # Without room_id the event's room is looked up in the DB (contract 9.2: one session).
        assert client.get(f"/api/events/{SLUG}/booths/it/state").json()["booth_id"] == booth["booth_id"]
        assert client.delete(f"/api/events/{SLUG}/rooms/{room_id}/booths/it").status_code == 204
        assert client.get(f"/api/events/{SLUG}/booths/it/state", params={"room_id": room_id}).status_code == 404
        assert sql(portal, "SELECT COUNT(*) FROM booths WHERE language_code = 'it'") == [(0,)]


def test_whip_url_gate_404_403_200(portal):
    booth = provision(portal, SLUG, "pl")
    booth_id, room_id = booth["booth_id"], booth["room_id"]
    url = f"/api/events/{SLUG}/booths/pl/whip-url"

    async def two_interpreters():
        headers = cookie_header("session_token", mint(portal, session_claims(SLUG, room_id, "pl")))
        a = await connect(portal, booth_id, headers)
        b = await connect(portal, booth_id, headers)
        pid_a = (await join(a))["participant_id"]
        pid_b = (await join(b))["participant_id"]
        with http(portal) as client:
            missing = client.get(url, params={"participant_id": "nobody", "room_id": room_id})
            passive = client.get(url, params={"participant_id": pid_b, "room_id": room_id})
            active = client.get(url, params={"participant_id": pid_a, "room_id": room_id})
        await a.close()
        await b.close()
        return missing, passive, active

    missing, passive, active = asyncio.run(two_interpreters())
    assert (missing.status_code, missing.json()["detail"]) == (404, "Participant does not exist in booth.")
    assert (passive.status_code, passive.json()["detail"]) == (403, "Only the active interpreter can publish audio.")
    assert active.status_code == 200
    assert active.json() == {"whip_url": booth["whip_url"], "channel_id": f"{SLUG}/{room_id}/pl", "booth_id": booth_id}
    # Contract 5.5: the route auto-creates an in-memory booth (a 404 for the participant, but the booth exists).
    with http(portal) as client:
        assert client.get(url, params={"participant_id": "x", "room_id": 4242}).status_code == 404
        assert client.get(f"/api/events/{SLUG}/booths/pl/state", params={"room_id": 4242}).status_code == 200


def test_access_guard_token_route_and_status_in_auth_mode(stack_factory):
    portal = stack_factory(portal_env={"BOOTH_ACCESS_TOKEN": "booth-secret"})
    with http(portal) as client:
        assert client.post("/api/auth/token", json={"token": "wrong"}).status_code == 401
        issued = client.post("/api/auth/token", json={"token": "booth-secret"})
        assert issued.status_code == 200 and issued.json()["token_type"] == "bearer"
        bearer = {"Authorization": f"Bearer {issued.json()['access_token']}"}
        assert client.get(f"/api/events/{SLUG}/booths").status_code == 403
        assert client.get(f"/api/events/{SLUG}/booths").json()["detail"] == "Invalid or missing auth token."
        assert client.get(f"/api/events/{SLUG}/booths", headers=bearer).status_code == 200
        listener = {"Authorization": f"Bearer {mint(portal, {'sub': 'l', 'role': 'listener', 'event_slug': SLUG})}"}
        assert client.get(f"/api/events/{SLUG}/booths", headers=listener).status_code == 403
        admin_cookie = cookie_header("admin_token", mint(portal, {"admin": True}))
        assert client.get(f"/api/events/{SLUG}/booths", headers=admin_cookie).status_code == 200
        # Contract 3.5: never guarded; no MediaMTX is listening in this stack.
        status = client.get("/api/interpreter/status/apifest/1/es")
        assert status.json() == {"channel_id": "apifest/1/es", "state": "mediamtx", "reachable": False}


def test_interpreter_pages_from_a_real_invite(portal):
    booth = provision(portal, SLUG, "ro")
    room_id = booth["room_id"]
    token = booth["interpreter_invite_url"].rsplit("/", 1)[1]
    page_path = f"/interpreter/{SLUG}/{room_id}/ro"
    with http(portal) as client:
        assert client.get("/interpreter").headers["location"] == "/login?next=/interpreter"
        assert client.get(page_path).headers["location"] == f"/login?next={page_path}"
        joined = client.get(f"/join/{token}")
        assert joined.status_code == 303
        lobby = client.get("/interpreter")
        assert lobby.status_code == 200 and [b.path for b in lobby_booths(lobby.text, "lobby")] == [page_path]
        page = client.get(page_path, params={"token": "tok123"})
        assert page.status_code == 200
        # VoxBento writes these attributes in single quotes; read them as the client does.
        assert "data-booth-id='" in page.text
        attrs = dict(booth_page_data(page.text, page_path).attributes)
        assert attrs["booth-id"] == booth["booth_id"]
        assert attrs["default-channel"] == f"{SLUG}/{room_id}/ro"
        assert attrs["whip-base"] == portal.media_http_url
        assert attrs["whip-url"] == booth["whip_url"] and attrs["whep-url"] == booth["whep_url"]
        assert attrs["granted-role"] == "interpreter"
        assert (attrs["room-id"], attrs["event-slug"], attrs["language-code"]) == (str(room_id), SLUG, "ro")
        assert attrs["booth-token"] == "tok123"
        for key in ("relay-whep-url", "jitsi-url", "display-name"):
            assert key in attrs
    # A decodable cookie with no role at all: 403 with VoxBento's message.
    nobody = cookie_header("user_token", mint(portal, {"sub": "not-a-user", "user": True}))
    with http(portal, headers=nobody) as client:
        forbidden = client.get(page_path)
        assert forbidden.status_code == 403 and "You do not have a role assigned for this event." in forbidden.text
