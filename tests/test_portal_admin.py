"""Reference portal admin surfaces over real HTTP (contract 3.2, 4.1, 4.3, 4.4, 7.5, Appendix B).

One real uvicorn portal per module (fresh SQLite file); every read-back uses the Appendix B shapes on
the served HTML, so a scraping client written from the contract works against it.
"""

from __future__ import annotations

import html
import re

import httpx
import pytest

from harness.refstack.stack import Stack, StackConfig

EVENT_ROW = re.compile(r'<a href="/admin/events/(\d+)/">\s*(.*?)\s*</a>\s*</td>\s*<td>\s*<code>\s*([^<\s]+)\s*</code>', re.S)
JOIN_CODE = re.compile(r'<span class="join-code">([ABCDEFGHJKLMNPQRSTUVWXYZ23456789]{6})</span>')
TABLE_ROW = re.compile(r"<tr\b[^>]*>(.*?)</tr>", re.S)
TOKEN_IN_CODE = re.compile(r'<code id="tok-[^"]*">[^<]*/join/([0-9a-f]{64})</code>')


@pytest.fixture(scope="module")
def portal_stack(tmp_path_factory):
    config = StackConfig.ephemeral(
        with_media=False,
        portal_env={"REFSTACK_BCRYPT_ROUNDS": "4", "REFSTACK_WEBHOOK_LOOP": "false"},
        data_dir=tmp_path_factory.mktemp("admin-stack"),
    )
    with Stack(config) as stack:
        yield stack


@pytest.fixture(scope="module")
def admin(portal_stack) -> httpx.Client:
    client = httpx.Client(base_url=portal_stack.portal_url, follow_redirects=False, timeout=30)
    resp = client.post("/admin/login", data={"password": portal_stack.admin_password})
    assert resp.status_code == 303
    yield client
    client.close()


def _anon(stack: Stack, **kwargs) -> httpx.Client:
    return httpx.Client(base_url=stack.portal_url, follow_redirects=False, timeout=30, **kwargs)


def _one_shot(admin: httpx.Client) -> httpx.Client:
    """A fresh connection with the admin cookie: after an unhandled error uvicorn closes the connection
    (as it does under VoxBento), so a 500 must not be read on a pooled keep-alive connection."""
    return httpx.Client(base_url=admin.base_url, cookies=admin.cookies, follow_redirects=False, timeout=30)


def _wizard_event(admin: httpx.Client, name: str, slug: str | None = None) -> int:
    resp = admin.post("/admin/setup", data={"display_name": name, "slug": slug or ""})
    assert resp.status_code == 303
    match = re.fullmatch(r"/admin/events/(\d+)/setup/rooms", resp.headers["location"])
    assert match, resp.headers["location"]
    return int(match.group(1))


def _room_ids(admin: httpx.Client, event_id: int) -> dict[str, int]:
    text = admin.get(f"/admin/events/{event_id}/rooms/").text
    pattern = re.compile(rf'href="/admin/events/{event_id}/rooms/(\d+)/">\s*(.*?)\s*</a>', re.S)
    return {html.unescape(name): int(rid) for rid, name in pattern.findall(text)}


def _booth_id(admin: httpx.Client, event_id: int, room_id: int, lang: str) -> int:
    text = admin.get(f"/admin/events/{event_id}/rooms/{room_id}/booths/").text
    link = re.compile(rf"/admin/events/{event_id}/rooms/{room_id}/booths/(\d+)/")
    ids = {int(m) for row in TABLE_ROW.findall(text) if f"<code>{lang}</code>" in row for m in link.findall(row)}
    assert len(ids) == 1, ids
    return ids.pop()


def _invite(admin: httpx.Client, e: int, r: int, b: int, label: str, role: str = "interpreter", expires_hours: str = "") -> str:
    resp = admin.post(f"/admin/events/{e}/rooms/{r}/booths/{b}/tokens/", data={"role": role, "label": label, "expires_hours": expires_hours})
    assert resp.status_code == 303
    text = admin.get(f"/admin/events/{e}/rooms/{r}/booths/{b}/").text
    found = {t for row in TABLE_ROW.findall(text) if f"<td>{html.escape(label)}</td>" in row for t in TOKEN_IN_CODE.findall(row)}
    assert len(found) == 1, found
    return found.pop()


def test_admin_login_wrong_password_is_403_html_and_sets_no_cookie(portal_stack):
    with _anon(portal_stack) as client:
        resp = client.post("/admin/login", data={"password": "not-the-password"})
    assert resp.status_code == 403
    assert "Invalid password." in resp.text
    assert "set-cookie" not in resp.headers


def test_admin_login_success_is_303_with_voxbento_cookie_flags(portal_stack):
    with _anon(portal_stack) as client:
        resp = client.post("/admin/login", data={"password": portal_stack.admin_password})
    assert resp.status_code == 303
    assert resp.headers["location"] == "/admin/"
    cookie = resp.headers["set-cookie"]
    assert cookie.startswith("admin_token=")
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    # Contract 3.1: HttpOnly; Max-Age=86400; Path=/; SameSite=lax; no Secure.
    assert flags == {"httponly", "max-age=86400", "path=/", "samesite=lax"}


def test_admin_guard_json_403_unless_html_accepted(portal_stack):
    with _anon(portal_stack) as client:
        as_json = client.get("/admin/events/")
        as_html = client.get("/admin/events/", headers={"Accept": "text/html,application/xhtml+xml"})
    assert as_json.status_code == 403
    assert as_json.json() == {"detail": "Admin access required."}
    assert as_html.status_code == 403
    assert as_html.headers["content-type"].startswith("text/html")
    assert "Admin access required." in as_html.text


def test_wizard_builds_event_and_every_appendix_b_shape_reads_back(admin):
    event_id = _wizard_event(admin, "Wizard & Co", "wizard-co")
    for name in ("Main Hall", "Side Room"):
        assert admin.post(f"/admin/events/{event_id}/setup/rooms", data={"display_name": name}).status_code == 303
    # Contract 4.1: an empty room name is ignored.
    assert admin.post(f"/admin/events/{event_id}/setup/rooms", data={"display_name": ""}).status_code == 303

    wizard_page = admin.get(f"/admin/events/{event_id}/setup/booths").text
    option_ids = [int(x) for x in re.findall(r'<option value="(\d+)">', wizard_page)]
    rooms = _room_ids(admin, event_id)
    assert set(rooms) == {"Main Hall", "Side Room"}
    assert sorted(option_ids) == sorted(rooms.values())

    main = rooms["Main Hall"]
    for lang in ("es", "fr"):
        resp = admin.post(f"/admin/events/{event_id}/setup/booths", data={"room_id": str(main), "language_code": lang})
        assert resp.status_code == 303
        assert resp.headers["location"] == f"/admin/events/{event_id}/setup/booths?room_id={main}"
    # Contract 4.1: duplicate and invalid booths still answer 303 and create nothing.
    assert admin.post(f"/admin/events/{event_id}/setup/booths", data={"room_id": str(main), "language_code": "es"}).status_code == 303
    assert admin.post(f"/admin/events/{event_id}/setup/booths", data={"room_id": str(main), "language_code": "xx"}).status_code == 303
    booths_page = admin.get(f"/admin/events/{event_id}/rooms/{main}/booths/").text
    assert booths_page.count("<code>es</code>") == 1 and "<code>xx</code>" not in booths_page

    es_id, fr_id = _booth_id(admin, event_id, main, "es"), _booth_id(admin, event_id, main, "fr")
    assert es_id != fr_id

    invite_page = admin.get(f"/admin/events/{event_id}/setup/invite")
    code = JOIN_CODE.search(invite_page.text).group(1)
    # The code is generated once, then shown unchanged on the event page.
    assert JOIN_CODE.search(admin.get(f"/admin/events/{event_id}/").text).group(1) == code
    assert JOIN_CODE.search(admin.get(f"/admin/events/{event_id}/setup/invite").text).group(1) == code

    token = _invite(admin, event_id, main, es_id, "Ana <es>")
    assert re.fullmatch(r"[0-9a-f]{64}", token)

    rows = {int(i): (html.unescape(n), s) for i, n, s in EVENT_ROW.findall(admin.get("/admin/events/").text)}
    assert rows[event_id] == ("Wizard & Co", "wizard-co")
    # Dashboard: count, newest events with their booth codes, MediaMTX health (none running here).
    dashboard = admin.get("/admin/")
    assert dashboard.status_code == 200
    assert f'<a href="/admin/events/{event_id}/">Wizard &amp; Co</a>' in dashboard.text
    assert '<span class="mediamtx-status">unreachable</span>' in dashboard.text


def test_wizard_rejects_empty_name_invalid_and_duplicate_slug_with_400(admin):
    _wizard_event(admin, "Dup Source", "dup-source")
    assert admin.post("/admin/setup", data={"display_name": "", "slug": "x"}).status_code == 400
    assert admin.post("/admin/setup", data={"display_name": "Bad", "slug": "Bad Slug!"}).status_code == 400
    assert admin.post("/admin/setup", data={"display_name": "Again", "slug": "dup-source"}).status_code == 400
    # Slug derived from the name when omitted.
    event_id = _wizard_event(admin, "Derived Name 2026")
    rows = {int(i): s for i, _, s in EVENT_ROW.findall(admin.get("/admin/events/").text)}
    assert rows[event_id] == "derived-name-2026"


def _all_event_rows(admin: httpx.Client) -> list[tuple[int, str, str]]:
    rows, page = [], 1
    while True:
        found = EVENT_ROW.findall(admin.get(f"/admin/events/?page={page}").text)
        assert len(found) <= 20  # contract Appendix B: 20 per page
        if not found:
            return rows
        rows.extend((int(i), html.unescape(n), s) for i, n, s in found)
        page += 1


def test_classic_event_list_pages_20_oldest_first_and_silent_303_on_failure(admin):
    before = len(_all_event_rows(admin))
    for i in range(25):
        resp = admin.post("/admin/events/", data={"slug": f"page-test-{i:02d}", "display_name": f"Page Test {i:02d}"})
        assert resp.status_code == 303 and resp.headers["location"] == "/admin/events/"
    # Contract 4.1: invalid slug and duplicate slug are silent 303s that create nothing.
    assert admin.post("/admin/events/", data={"slug": "Not Valid", "display_name": "x"}).status_code == 303
    assert admin.post("/admin/events/", data={"slug": "page-test-00", "display_name": "dup"}).status_code == 303
    rows = _all_event_rows(admin)
    assert len(rows) == before + 25
    ids = [i for i, _, _ in rows]
    assert ids == sorted(ids)  # oldest first
    assert [s for _, _, s in rows[-25:]] == [f"page-test-{i:02d}" for i in range(25)]
    assert len(EVENT_ROW.findall(admin.get("/admin/events/?page=1").text)) == 20


def test_invite_tokens_are_single_use_with_voxbento_session_claims(admin, portal_stack):
    import jwt

    event_id = _wizard_event(admin, "Join Flow", "join-flow")
    admin.post(f"/admin/events/{event_id}/rooms/", data={"display_name": "Hall"})
    room = _room_ids(admin, event_id)["Hall"]
    admin.post(f"/admin/events/{event_id}/rooms/{room}/booths/", data={"language_code": "de", "language_name": "German"})
    booth = _booth_id(admin, event_id, room, "de")
    token = _invite(admin, event_id, room, booth, "interp-1")

    with _anon(portal_stack) as client:
        assert client.get("/join/" + "0" * 64).status_code == 404
        assert client.get("/join/" + "0" * 64).json() == {"detail": "Invalid invite token."}
        first = client.get(f"/join/{token}")
        second = client.get(f"/join/{token}")
    assert first.status_code == 303 and first.headers["location"] == "/interpreter"
    cookie = first.cookies.get("session_token")
    claims = jwt.decode(cookie, portal_stack.secret_key, algorithms=["HS256"])
    assert {k: claims[k] for k in ("booth_id", "role", "event_slug", "room_id", "language_code")} == {
        "booth_id": booth,
        "role": "interpreter",
        "event_slug": "join-flow",
        "room_id": room,
        "language_code": "de",
    }
    assert re.fullmatch(r"[0-9a-f]{32}", claims["sub"]) and claims["exp"] - claims["iat"] == 86400
    assert second.status_code == 403 and second.json() == {"detail": "Token has already been used."}

    # Revoked tokens read as used; the booth page shows the status.
    revoked = _invite(admin, event_id, room, booth, "interp-2")
    assert admin.post(f"/admin/events/{event_id}/rooms/{room}/booths/{booth}/tokens/{revoked}/revoke").status_code == 303
    with _anon(portal_stack) as client:
        assert client.get(f"/join/{revoked}").status_code == 403


def test_expired_invite_is_403(admin, portal_stack):
    import sqlite3

    event_id = _wizard_event(admin, "Expiry", "expiry")
    admin.post(f"/admin/events/{event_id}/rooms/", data={"display_name": "Hall"})
    room = _room_ids(admin, event_id)["Hall"]
    admin.post(f"/admin/events/{event_id}/rooms/{room}/booths/", data={"language_code": "it", "language_name": "Italian"})
    booth = _booth_id(admin, event_id, room, "it")
    token = _invite(admin, event_id, room, booth, "soon", expires_hours="1")
    # Age the invite in the real SQLite file rather than waiting an hour.
    with sqlite3.connect(portal_stack.data_dir / "interpretation.db") as db:
        db.execute("UPDATE invite_tokens SET expires_at = '2000-01-01 00:00:00' WHERE token = ?", (token,))
    with _anon(portal_stack) as client:
        resp = client.get(f"/join/{token}")
    assert resp.status_code == 403 and resp.json() == {"detail": "Token has expired."}


def test_unknown_invite_role_is_500_and_missing_role_is_noop(admin):
    event_id = _wizard_event(admin, "Roles", "roles")
    admin.post(f"/admin/events/{event_id}/rooms/", data={"display_name": "Hall"})
    room = _room_ids(admin, event_id)["Hall"]
    admin.post(f"/admin/events/{event_id}/rooms/{room}/booths/", data={"language_code": "pt", "language_name": "Portuguese"})
    booth = _booth_id(admin, event_id, room, "pt")
    url = f"/admin/events/{event_id}/rooms/{room}/booths/{booth}/tokens/"
    with _one_shot(admin) as client:
        bad = client.post(url, data={"role": "wizard", "label": "x"})
    assert bad.status_code == 500 and bad.json() == {"detail": "Internal Server Error"}
    with _one_shot(admin) as client:
        html_bad = client.post(url, data={"role": "wizard", "label": "x"}, headers={"Accept": "text/html"})
    assert html_bad.status_code == 500 and html_bad.headers["content-type"].startswith("text/html")
    assert admin.post(url, data={"role": "", "label": "nothing"}).status_code == 303
    page = admin.get(f"/admin/events/{event_id}/rooms/{room}/booths/{booth}/").text
    assert "/join/" not in page


def test_transcription_settings_validation_and_persisted_change(admin):
    event_id = _wizard_event(admin, "Captions", "captions")
    admin.post(f"/admin/events/{event_id}/rooms/", data={"display_name": "Hall"})
    room = _room_ids(admin, event_id)["Hall"]
    admin.post(f"/admin/events/{event_id}/rooms/{room}/booths/", data={"language_code": "en", "language_name": "English"})
    booth = _booth_id(admin, event_id, room, "en")
    url = f"/admin/events/{event_id}/rooms/{room}/booths/{booth}/transcription-settings"
    assert admin.post(url, data={"transcription_provider": "bogus"}).status_code == 400
    bad_model = admin.post(url, data={"transcription_provider": "local", "transcription_model": "whisper-1"})
    assert bad_model.status_code == 400 and bad_model.json() == {"detail": "Invalid model 'whisper-1' for provider 'local'"}
    external = admin.post(url, data={"transcription_enabled": "on", "transcription_provider": "openai", "transcription_model": "whisper-1"})
    assert external.status_code == 400 and external.json() == {"detail": "External API transcription is disabled for this event."}
    # No active interpreter in memory: only the DB row changes (contract 4.3).
    ok = admin.post(url, data={"transcription_enabled": "true", "transcription_provider": "local", "transcription_model": "small"})
    assert ok.status_code == 303
    page = admin.get(f"/admin/events/{event_id}/rooms/{room}/booths/{booth}/").text
    assert '<span class="transcription-state">on (local/small)</span>' in page
    assert admin.post(url, data={}).status_code == 303  # absent checkbox = disabled
    page = admin.get(f"/admin/events/{event_id}/rooms/{room}/booths/{booth}/").text
    assert '<span class="transcription-state">off (local/tiny)</span>' in page


def test_audio_delay_form_and_deletes(admin, portal_stack):
    event_id = _wizard_event(admin, "Delays", "delays")
    admin.post(f"/admin/events/{event_id}/rooms/", data={"display_name": "Hall"})
    admin.post(f"/admin/events/{event_id}/rooms/", data={"display_name": "Annex"})
    rooms = _room_ids(admin, event_id)
    hall = rooms["Hall"]
    url = f"/admin/events/{event_id}/rooms/{hall}/audio-delay"
    assert admin.post(url, data={"audio_delay_ms": "10001"}).status_code == 400
    assert admin.post(url, data={"audio_delay_ms": "-5"}).status_code == 400
    assert admin.post(url, data={"audio_delay_ms": "2500"}).status_code == 303
    assert 'name="audio_delay_ms" min="0" max="10000" value="2500"' in admin.get(f"/admin/events/{event_id}/rooms/{hall}/").text

    admin.post(f"/admin/events/{event_id}/rooms/{hall}/booths/", data={"language_code": "ja", "language_name": "Japanese"})
    booth = _booth_id(admin, event_id, hall, "ja")
    resp = admin.post(f"/admin/events/{event_id}/rooms/{hall}/booths/{booth}/delete")
    assert resp.status_code == 303 and resp.headers["location"] == f"/admin/events/{event_id}/rooms/{hall}/booths/"
    assert admin.get(f"/admin/events/{event_id}/rooms/{hall}/booths/{booth}/").status_code == 404

    resp = admin.post(f"/admin/events/{event_id}/rooms/{rooms['Annex']}/delete")
    assert resp.status_code == 303 and resp.headers["location"] == f"/admin/events/{event_id}/rooms/"
    assert set(_room_ids(admin, event_id)) == {"Hall"}

    resp = admin.post(f"/admin/events/{event_id}/delete")
    assert resp.status_code == 303 and resp.headers["location"] == "/admin/events/"
    assert admin.get(f"/admin/events/{event_id}/").status_code == 404


def test_transcripts_api_lists_persisted_segments(admin, portal_stack):
    import sqlite3

    event_id = _wizard_event(admin, "Transcripts", "transcripts")
    admin.post(f"/admin/events/{event_id}/rooms/", data={"display_name": "Hall"})
    room = _room_ids(admin, event_id)["Hall"]
    with sqlite3.connect(portal_stack.data_dir / "interpretation.db") as db:
        for seq, text in ((1, "Hola a todos."), (2, "Empezamos.")):
            db.execute(
                "INSERT INTO transcript_segments (booth_id, room_id, language_code, segment_id, seq, text, created_at) "
                "VALUES (?, ?, 'es', ?, ?, ?, '2026-01-01 10:00:00')",
                (f"transcripts-{room}-es", room, f"seg-{seq}", seq, text),
            )
    resp = admin.get(f"/api/admin/events/{event_id}/rooms/{room}/transcripts/es")
    assert resp.status_code == 200
    body = resp.json()
    assert body["booth_id"] == f"transcripts-{room}-es" and body["count"] == 2
    assert [s["text"] for s in body["segments"]] == ["Hola a todos.", "Empezamos."]
    assert admin.get(f"/api/admin/events/{event_id}/rooms/{room}/transcripts/fr").json()["count"] == 0
    with _anon(portal_stack) as client:
        assert client.get(f"/api/admin/events/{event_id}/rooms/{room}/transcripts/es").status_code == 403


def test_members_form_invites_by_magic_link_and_grants_scoped_admin(admin, portal_stack):
    import time

    mine = _wizard_event(admin, "Owned Event", "owned-event")
    other = _wizard_event(admin, "Other Event", "other-event")
    resp = admin.post(f"/admin/events/{mine}/members/", data={"email": "Owner@Example.org", "role": "event_owner"})
    assert resp.status_code == 303 and resp.headers["location"] == f"/admin/events/{mine}/members/"
    assert admin.post(f"/admin/events/{mine}/members/", data={"email": "x@example.org", "role": "janitor"}).status_code == 400
    page = admin.get(f"/admin/events/{mine}/members/").text
    assert "<code>owner@example.org</code> (invited)" in page and '<span class="role">event_owner</span>' in page

    # Contract 3.3 item 4: the invite is a magic link, logged because SMTP is unset.
    link = re.compile(r"owner@example\.org.*?/auth/magic/([0-9a-f]{64})")
    deadline = time.monotonic() + 5
    while not (found := link.findall((portal_stack.data_dir / "portal.log").read_text())) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert found
    with _anon(portal_stack) as owner:
        assert owner.get(f"/auth/magic/{found[-1]}").status_code == 303
        # Contract 3.2: an event_owner membership passes require_admin for that event only.
        assert owner.get(f"/admin/events/{mine}/").status_code == 200
        assert owner.get(f"/admin/events/{other}/").status_code == 403
        listed = {int(i) for i, _, _ in EVENT_ROW.findall(owner.get("/admin/events/").text)}
        assert listed == {mine}
        assert owner.get("/mission-control/owned-event/").status_code == 200
        assert owner.get("/mission-control/other-event/").status_code == 403
        # Super-admin-only routes stay closed.
        assert owner.post("/admin/setup", data={"display_name": "Nope"}).status_code == 403


def test_transcription_settings_at_worker_cap_is_500_and_rolls_back(tmp_path_factory):
    """Contract 4.3 / 7.2: with an active interpreter in memory the route starts a worker inside its
    transaction; at the cap that fails, the client sees a bare 500 and the DB change is rolled back."""
    import json

    from websockets.sync.client import connect

    config = StackConfig.ephemeral(
        with_media=False,
        portal_env={"REFSTACK_WEBHOOK_LOOP": "false", "REFSTACK_MAX_TOTAL_WORKERS": "0"},
        data_dir=tmp_path_factory.mktemp("cap-stack"),
    )
    with Stack(config) as stack, httpx.Client(base_url=stack.portal_url, follow_redirects=False, timeout=30) as admin:
        admin.post("/admin/login", data={"password": stack.admin_password})
        event_id = _wizard_event(admin, "Cap Event", "cap-event")
        admin.post(f"/admin/events/{event_id}/rooms/", data={"display_name": "Hall"})
        room = _room_ids(admin, event_id)["Hall"]
        admin.post(f"/admin/events/{event_id}/rooms/{room}/booths/", data={"language_code": "es", "language_name": "Spanish"})
        booth = _booth_id(admin, event_id, room, "es")
        token = _invite(admin, event_id, room, booth, "active one")
        with _anon(stack) as interp:
            session_cookie = interp.get(f"/join/{token}").cookies["session_token"]
        ws_url = stack.portal_url.replace("http://", "ws://") + f"/ws/booth/cap-event-{room}-es"
        with connect(ws_url, additional_headers={"Cookie": f"session_token={session_cookie}"}, open_timeout=10) as ws:
            ws.send(json.dumps({"type": "booth:join", "display_name": "Ana", "role": "interpreter"}))
            joined = json.loads(ws.recv(timeout=10))
            assert joined["type"] == "booth:joined" and joined["state"]["active_interpreter_id"] == joined["participant_id"]
            url = f"/admin/events/{event_id}/rooms/{room}/booths/{booth}/transcription-settings"
            with _one_shot(admin) as client:
                resp = client.post(url, data={"transcription_enabled": "true", "transcription_provider": "local", "transcription_model": "base"})
        assert resp.status_code == 500 and resp.json() == {"detail": "Internal Server Error"}
        page = admin.get(f"/admin/events/{event_id}/rooms/{room}/booths/{booth}/").text
        assert '<span class="transcription-state">off (local/tiny)</span>' in page
