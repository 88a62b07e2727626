"""REFSTACK_VOXBENTO_DATE (contract 15): the portal plays an older VoxBento, and the specific knobs override it.

Two real portals per module, one at HEAD and one at 2026-06-07 (before every modelled change), both in auth mode
(BOOTH_ACCESS_TOKEN set) so the WebSocket check differs; each test asserts both sides of one dated change.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from pathlib import Path

import httpx
import pytest
import websockets
from test_portal_live_helpers import cookie_header, join, mint, recv_until, session_claims, sql, ws_url

from harness.clients.interpreter import booth_page_data
from harness.refstack.portal.config import ConfigError, Settings
from harness.refstack.portal.timeline import HEAD_DATE, BoothNaming
from harness.refstack.stack import Stack, StackConfig

TESTS_DIR = str(Path(__file__).parent)
OLD_DATE = "2026-06-07"
ACCESS_TOKEN = "booth-access-secret"
PORTAL_ENV = {
    "REFSTACK_BCRYPT_ROUNDS": "4",
    "BOOTH_ACCESS_TOKEN": ACCESS_TOKEN,
    "REFSTACK_MAX_TOTAL_WORKERS": "1",
    "REFSTACK_CAPTION_PROVIDER": "test_portal_live_helpers:scripted_transcribe",
    "PYTHONPATH": TESTS_DIR,
}


def _start(tmp_path_factory, name: str, **env: str) -> Stack:
    config = StackConfig.ephemeral(with_media=False, portal_env={**PORTAL_ENV, **env}, data_dir=tmp_path_factory.mktemp(name))
    return Stack(config).start()


@pytest.fixture(scope="module")
def portals(tmp_path_factory):
    old = _start(tmp_path_factory, "old", REFSTACK_VOXBENTO_DATE=OLD_DATE)
    try:
        head = _start(tmp_path_factory, "head")
    except BaseException:
        old.stop()
        raise
    yield old, head
    head.stop()
    old.stop()


def _client(stack: Stack, **kwargs) -> httpx.Client:
    return httpx.Client(base_url=stack.portal_url, follow_redirects=False, timeout=10.0, **kwargs)


def _bearer(stack: Stack) -> dict[str, str]:
    """Contract 3.5: any decodable non-listener Bearer JWT passes the booth API guard in auth mode."""
    return {"Authorization": f"Bearer {mint(stack, {})}"}


def _provision(stack: Stack, slug: str, lang: str) -> dict:
    with _client(stack, headers=_bearer(stack)) as client:
        resp = client.post(f"/api/events/{slug}/booths", json={"language_code": lang})
    assert resp.status_code == 201, resp.text
    return resp.json()


def _db_room_id(stack: Stack, slug: str) -> int:
    """Before d2bee53 the booth state names no room (``room_id`` null); the DB room still exists."""
    return sql(stack, "SELECT rooms.id FROM rooms JOIN events ON events.id = rooms.event_id WHERE events.slug = ?", (slug,))[0][0]


# --- settings: the date and the knobs that override it (no server needed) ---
def test_date_knob_defaults_to_head_and_specific_knobs_override_it():
    strong = {"SECRET_KEY": "a-strong-secret-for-tests"}
    head = Settings.from_env(strong)
    assert head.voxbento_date == HEAD_DATE and head.timeline.naming.multiroom
    assert (head.login_rate_limit, head.listener_rate_limit, head.debug) == (True, True, False)

    old = Settings.from_env({**strong, "REFSTACK_VOXBENTO_DATE": OLD_DATE})
    assert not old.timeline.naming.multiroom
    # Contract 1.2, 10: no limiters yet and DEBUG defaulted to true.
    assert (old.login_rate_limit, old.listener_rate_limit, old.debug) == (False, False, True)

    overridden = Settings.from_env(
        {**strong, "REFSTACK_VOXBENTO_DATE": OLD_DATE, "REFSTACK_LOGIN_RATE_LIMIT": "true", "DEBUG": "false"}
    )
    assert (overridden.login_rate_limit, overridden.listener_rate_limit, overridden.debug) == (True, False, False)

    # Contract 1.2: the weak-secret refusal exists from 2026-06-29 (cf72e29) only.
    Settings.from_env({"SECRET_KEY": "change-me", "DEBUG": "false", "REFSTACK_VOXBENTO_DATE": "2026-06-28"}).validate_production_secrets()
    with pytest.raises(ConfigError, match="weak"):
        Settings.from_env({"SECRET_KEY": "change-me", "DEBUG": "false", "REFSTACK_VOXBENTO_DATE": "2026-06-29"}).validate_production_secrets()
    # On 2026-06-29 DEBUG still defaulted to true (86615cb came a day later), which skips the check.
    Settings.from_env({"SECRET_KEY": "change-me", "REFSTACK_VOXBENTO_DATE": "2026-06-29"}).validate_production_secrets()

    for bad in ("2026-13-01", "yesterday", "2026-06-06", (HEAD_DATE + dt.timedelta(days=1)).isoformat()):
        with pytest.raises(ConfigError, match="REFSTACK_VOXBENTO_DATE"):
            Settings.from_env({"REFSTACK_VOXBENTO_DATE": bad})


def test_booth_naming_of_each_era_parses_back():
    single, multi = BoothNaming(multiroom=False), BoothNaming(multiroom=True)
    # A slug ending in digits is the case a HEAD-style parse would get wrong before d2bee53.
    assert single.booth_id("conf-2026", 7, "es") == "conf-2026-es"
    assert single.parse("conf-2026-es") == ("conf-2026", None, "es")
    assert multi.booth_id("conf-2026", 7, "es") == "conf-2026-7-es"
    assert multi.parse("conf-2026-7-es") == ("conf-2026", 7, "es")
    assert (single.mediamtx_path("conf", 7, "es"), multi.mediamtx_path("conf", 7, "es")) == ("conf/es", "conf/7/es")
    assert (single.booth_page("conf", 7, "es"), multi.booth_page("conf", 7, "es")) == ("/interpreter/conf/es", "/interpreter/conf/7/es")


# --- contract 2: booth ids, paths, booth page and routes before/after d2bee53 ---
def test_booth_id_path_page_and_routes_follow_the_date(portals):
    old, head = portals
    old_booth = _provision(old, "conf-2026", "es")
    head_booth = _provision(head, "conf-2026", "es")
    room = head_booth["room_id"]
    assert head_booth["booth_id"] == f"conf-2026-{room}-es" and head_booth["mediamtx_path"] == f"conf-2026/{room}/es"
    assert old_booth["booth_id"] == "conf-2026-es" and old_booth["mediamtx_path"] == "conf-2026/es"
    assert old_booth["room_id"] is None
    old_room = _db_room_id(old, "conf-2026")
    assert old_booth["whip_url"].endswith("/conf-2026/es/whip")
    assert old_booth["caption_url"].endswith("/ws/captions/conf-2026-es")

    invite = cookie_header("session_token", mint(old, session_claims("conf-2026", old_room, "es")))
    with _client(old, headers=invite) as client:
        page = client.get("/interpreter/conf-2026/es")
        assert page.status_code == 200
        data = booth_page_data(page.text, "old page")
        assert (data.booth_id, data.default_channel) == ("conf-2026-es", "conf-2026/es")
        assert data.room_id is None  # 7cc5f3e's booth page has no data-room-id
        assert client.get(f"/interpreter/conf-2026/{old_room}/es").status_code == 404
        lobby = client.get("/interpreter")
        assert 'href="/interpreter/conf-2026/es"' in lobby.text
    head_invite = cookie_header("session_token", mint(head, session_claims("conf-2026", room, "es")))
    with _client(head, headers=head_invite) as client:
        assert client.get(f"/interpreter/conf-2026/{room}/es").status_code == 200
        assert client.get("/interpreter/conf-2026/es").status_code == 404

    # The JSON routes: transcription start/stop and delete without /rooms/{room_id} before d2bee53.
    with _client(old, headers=_bearer(old)) as client:
        assert client.post(f"/api/events/conf-2026/rooms/{old_room}/booths/es/transcription/stop").status_code == 404
        assert client.post("/api/events/conf-2026/booths/es/transcription/stop").json() == {"status": "stopped"}
        assert client.get("/api/events/conf-2026/booths/es/state").json()["booth_id"] == "conf-2026-es"
        assert client.delete(f"/api/events/conf-2026/rooms/{old_room}/booths/es").status_code == 404
        assert client.delete("/api/events/conf-2026/booths/es").status_code == 204
        assert client.get("/api/events/conf-2026/booths/es/state").status_code == 404  # dropped from memory
    assert sql(old, "SELECT count(*) FROM booths WHERE language_code = 'es'") == [(0,)]
    with _client(head, headers=_bearer(head)) as client:
        assert client.post("/api/events/conf-2026/booths/es/transcription/stop").status_code == 404
        assert client.delete("/api/events/conf-2026/booths/es").status_code == 404
        assert client.post(f"/api/events/conf-2026/rooms/{room}/booths/es/transcription/stop").status_code == 200


# --- contract 3.5/3.6: the WebSocket check was ?token=-only before 913da47 ---
def test_ws_check_is_token_only_before_2026_08_09(portals):
    old, head = portals
    _provision(old, "wsauth", "fr")
    head_booth = _provision(head, "wsauth", "fr")
    old_cookie = cookie_header("session_token", mint(old, session_claims("wsauth", _db_room_id(old, "wsauth"), "fr")))
    head_cookie = cookie_header("session_token", mint(head, session_claims("wsauth", head_booth["room_id"], "fr")))

    async def scenario() -> None:
        # HEAD: a scoped cookie alone passes (token-or-cookie).
        async with websockets.connect(ws_url(head, f"/ws/booth/{head_booth['booth_id']}"), additional_headers=head_cookie) as ws:
            assert (await join(ws))["state"]["booth_id"] == head_booth["booth_id"]
        # Before 913da47: the same cookie without ?token= fails the handshake (403, contract 3.6).
        with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
            await websockets.connect(ws_url(old, "/ws/booth/wsauth-fr"), additional_headers=old_cookie, open_timeout=5)
        assert refused.value.response.status_code == 403
        with pytest.raises(websockets.exceptions.InvalidStatus):
            await websockets.connect(ws_url(old, "/ws/booth/wsauth-fr?token=not-a-jwt"), additional_headers=old_cookie, open_timeout=5)
        # The booth page's flow: POST /api/auth/token, then ?token=<JWT>; the role still comes from the cookie.
        async with httpx.AsyncClient(base_url=old.portal_url) as client:
            jwt_token = (await client.post("/api/auth/token", json={"token": ACCESS_TOKEN})).json()["access_token"]
        async with websockets.connect(ws_url(old, f"/ws/booth/wsauth-fr?token={jwt_token}"), additional_headers=old_cookie) as ws:
            joined = await join(ws, display_name="Old Ines")
            assert joined["state"]["active_interpreter_id"] == joined["participant_id"]
            assert joined["state"]["room_id"] is None  # the booth id names no room before d2bee53
        # The raw access token is accepted as ?token= too; with no cookie the socket has no role (3.6).
        async with websockets.connect(ws_url(old, f"/ws/booth/wsauth-fr?token={ACCESS_TOKEN}")) as ws:
            await ws.send('{"type": "booth:join"}')
            error = await recv_until(ws, "booth:error")
            assert error["message"] == "No role assigned for this session."

    asyncio.run(scenario())


# --- contract 3.3, 10: /login limiter, email verification and the register form before f11389f ---
def test_login_limiter_and_registration_follow_the_date(portals):
    old, head = portals
    with _client(old) as client:
        short = client.post("/register", data={"email": "o@x.test", "display_name": "O", "password": "short", "password_confirm": "short"})
        assert short.status_code == 422
        mismatch = client.post(
            "/register", data={"email": "o@x.test", "display_name": "O", "password": "long-enough-1", "password_confirm": "other-one-2"}
        )
        assert mismatch.status_code == 422
        registered = client.post(
            "/register", data={"email": "o@x.test", "display_name": "O", "password": "long-enough-1", "password_confirm": "long-enough-1"}
        )
        # Before 2026-07-10 a registration logged in immediately.
        assert registered.status_code == 303 and "user_token" in registered.cookies
        wrong = [client.post("/login", data={"email": "o@x.test", "password": "wrong"}).status_code for _ in range(11)]
        assert wrong == [403] * 11  # no limiter
        login = client.post("/login", data={"email": "o@x.test", "password": "long-enough-1"})
        assert login.status_code == 303 and login.headers["location"] == "/account"  # no verification step
    with _client(head) as client:
        registered = client.post("/register", data={"email": "h@x.test", "display_name": "H", "password": "long-enough-1"})
        assert registered.status_code == 200 and "user_token" not in registered.cookies
        statuses = [client.post("/login", data={"email": "h@x.test", "password": "wrong"}).status_code for _ in range(11)]
        assert statuses == [403] * 10 + [429]


# --- contract 6.2, 7.2: audio-delay route (2026-06-21) and the all-workers cap with 429 (2026-06-08) ---
def test_audio_delay_route_and_worker_cap_before_2026_06_08(portals):
    old, head = portals
    slug = "capfest"
    for lang in ("de", "it", "pt", "nl"):
        _provision(old, slug, lang)
    head_booths = [_provision(head, slug, lang) for lang in ("de", "it")]
    with _client(old) as client:
        gone = client.get(f"/listener/{slug}/rooms/{_db_room_id(old, slug)}/audio-delay")
        assert gone.status_code == 404 and gone.json() == {"detail": "Not Found"}
    with _client(head) as client:
        # At HEAD the route exists: without a join code it refuses with 403 (contract 6.2, 10).
        refused = client.get(f"/listener/{slug}/rooms/{head_booths[0]['room_id']}/audio-delay")
        assert refused.status_code == 403

    # REFSTACK_MAX_TOTAL_WORKERS=1. Before 2026-06-08 local workers are not counted at all...
    sql(old, "UPDATE booths SET transcription_enabled = 1 WHERE language_code IN ('de', 'it', 'pt', 'nl')")
    sql(old, "UPDATE booths SET transcription_provider = 'openai', transcription_model = 'whisper-1' WHERE language_code IN ('pt', 'nl')")
    with _client(old, headers=_bearer(old)) as client:
        for lang in ("de", "it"):
            assert client.post(f"/api/events/{slug}/booths/{lang}/transcription/start").json()["status"] == "started"
        # ...external-API workers are, and the start route does not map the cap to 429: the client gets a 500.
        assert client.post(f"/api/events/{slug}/booths/pt/transcription/start").json()["status"] == "started"
        capped = client.post(f"/api/events/{slug}/booths/nl/transcription/start")
        assert capped.status_code == 500 and capped.json() == {"detail": "Internal Server Error"}
    # uvicorn closes the keep-alive connection after an unhandled error, so the clean-up uses a new one.
    with _client(old, headers=_bearer(old)) as client:
        for lang in ("de", "it", "pt"):
            client.post(f"/api/events/{slug}/booths/{lang}/transcription/stop")

    sql(head, "UPDATE booths SET transcription_enabled = 1")
    with _client(head, headers=_bearer(head)) as client:
        first, second = (
            client.post(f"/api/events/{slug}/rooms/{b['room_id']}/booths/{b['language_code']}/transcription/start") for b in head_booths
        )
        assert first.json()["status"] == "started"
        assert second.status_code == 429 and "maximum capacity (1 " in second.json()["detail"]
        client.post(f"/api/events/{slug}/rooms/{head_booths[0]['room_id']}/booths/de/transcription/stop")


def test_knob_help_documents_the_date():
    from harness.refstack.portal.config import KNOBS

    text = KNOBS["REFSTACK_VOXBENTO_DATE"]
    for date in ("2026-08-14", "2026-08-09", "2026-07-10", "2026-07-06", "2026-06-29", "2026-06-21", "2026-06-08"):
        assert date in text, date
    assert re.search(r"default HEAD = 2026-08-23", text)
