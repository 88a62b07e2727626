"""The listener page, its limiter and the audio-delay poll over real HTTP (contract 6.1, 6.2, 10).

Distinct client IPs are simulated with X-Forwarded-For from 127.0.0.1, which uvicorn trusts (contract 1.1).
"""

from __future__ import annotations

import itertools
import json
import re
import time

import httpx
import jwt
import pytest

from harness.refstack.stack import Stack, StackConfig

LISTENER_DATA = re.compile(r'<script id="listener-data" type="application/json">(.*?)</script>', re.S)
_ips = (f"10.9.{i // 250}.{i % 250 + 1}" for i in itertools.count())


def _fresh_ip() -> dict[str, str]:
    return {"X-Forwarded-For": next(_ips)}


@pytest.fixture(scope="module")
def listener_stack(tmp_path_factory):
    config = StackConfig.ephemeral(
        with_media=False,
        portal_env={"REFSTACK_BCRYPT_ROUNDS": "4", "REFSTACK_WEBHOOK_LOOP": "false"},
        data_dir=tmp_path_factory.mktemp("listener-stack"),
    )
    with Stack(config) as stack:
        yield stack


@pytest.fixture(scope="module")
def event(listener_stack) -> dict:
    """An event with two rooms and three booths, a join code and a 1500 ms delay on the first room."""
    with httpx.Client(base_url=listener_stack.portal_url, follow_redirects=False, timeout=30) as admin:
        admin.post("/admin/login", data={"password": listener_stack.admin_password})
        event_id = int(re.search(r"/admin/events/(\d+)/", admin.post("/admin/setup", data={"display_name": "Listen Up"}).headers["location"]).group(1))
        for name in ("Hall", "Annex"):
            admin.post(f"/admin/events/{event_id}/setup/rooms", data={"display_name": name})
        hall, annex = (int(x) for x in re.findall(r'<option value="(\d+)">', admin.get(f"/admin/events/{event_id}/setup/booths").text))
        for room, lang in ((hall, "es"), (hall, "fr"), (annex, "de")):
            admin.post(f"/admin/events/{event_id}/setup/booths", data={"room_id": str(room), "language_code": lang})
        admin.post(f"/admin/events/{event_id}/rooms/{hall}/audio-delay", data={"audio_delay_ms": "1500"})
        code = re.search(r'<span class="join-code">(\w{6})</span>', admin.get(f"/admin/events/{event_id}/setup/invite").text).group(1)
        admin_cookie = admin.cookies["admin_token"]
    return {"slug": "listen-up", "code": code, "hall": hall, "annex": annex, "admin_token": admin_cookie}


def _client(stack: Stack, **cookies: str) -> httpx.Client:
    return httpx.Client(base_url=stack.portal_url, follow_redirects=False, timeout=30, cookies=cookies)


def test_code_grants_access_sets_year_cookie_and_embeds_listener_data(listener_stack, event):
    with _client(listener_stack) as client:
        resp = client.get(f"/listener/{event['slug']}", params={"code": event["code"]}, headers=_fresh_ip())
        assert resp.status_code == 200
        cookie = resp.headers["set-cookie"]
        assert cookie.startswith(f"listener_code_{event['slug']}={event['code']};")
        assert {p.strip().lower() for p in cookie.split(";")[1:]} == {"httponly", "max-age=31536000", "path=/", "samesite=lax"}
        data = json.loads(LISTENER_DATA.search(resp.text).group(1))
        # The cookie alone then grants access (no code in the URL).
        again = client.get(f"/listener/{event['slug']}", headers=_fresh_ip())
        assert again.status_code == 200 and LISTENER_DATA.search(again.text)

    assert data["eventSlug"] == event["slug"]
    booths = {(b["room_id"], b["language_code"]): b for b in data["booths"]}
    assert set(booths) == {(event["hall"], "es"), (event["hall"], "fr"), (event["annex"], "de")}
    es = booths[(event["hall"], "es")]
    assert set(es) == {
        "id", "room_id", "language_code", "language_name", "channel_id", "whep_url",
        "audio_delay_ms", "translation_enabled", "translation_languages",
    }
    assert es["channel_id"] == f"{event['slug']}/{event['hall']}/es"
    assert es["whep_url"] == f"{listener_stack.media_http_url}/{event['slug']}/{event['hall']}/es/whep"
    assert es["language_name"] == "Spanish" and es["audio_delay_ms"] == 1500 and isinstance(es["id"], int)
    assert booths[(event["annex"], "de")]["audio_delay_ms"] == 0
    assert {r["id"] for r in data["rooms"]} == {event["hall"], event["annex"]}
    assert set(data["rooms"][0]) == {"id", "audio_delay_ms", "floor_translation_enabled", "floor_tts_enabled", "translation_languages"}


def test_unknown_event_is_404(listener_stack, event):
    with _client(listener_stack) as client:
        assert client.get("/listener/no-such-event", headers=_fresh_ip()).status_code == 404


def test_limiter_10_failures_then_429_per_ip_and_a_correct_code_resets(listener_stack, event):
    url = f"/listener/{event['slug']}"
    ip = _fresh_ip()
    with _client(listener_stack) as client:
        first = client.get(url, params={"code": "WRONG1"}, headers=ip)
        assert first.status_code == 200 and "Invalid join code." in first.text and not LISTENER_DATA.search(first.text)
        statuses = [client.get(url, params={"code": "WRONG1"}, headers=ip).status_code for _ in range(9)]
        assert statuses == [200] * 9
        blocked = client.get(url, params={"code": "WRONG1"}, headers=ip)
        assert blocked.status_code == 429
        assert blocked.json() == {"detail": "Too many join attempts. Please try again later."}
        as_html = client.get(url, headers={**ip, "Accept": "text/html"})
        assert as_html.status_code == 429 and "Too Many Attempts" in as_html.text

        # Another apparent IP has its own window.
        assert client.get(url, params={"code": "WRONG1"}, headers=_fresh_ip()).status_code == 200

        # A correct code still succeeds after the window is used up, and resets it.
        assert client.get(url, params={"code": event["code"]}, headers=ip).status_code == 200
    with _client(listener_stack) as fresh:  # no listener cookie
        statuses = [fresh.get(url, params={"code": "WRONG2"}, headers=ip).status_code for _ in range(11)]
    assert statuses == [200] * 10 + [429]


def test_cookie_holder_is_never_throttled(listener_stack, event):
    ip = _fresh_ip()
    with _client(listener_stack, **{f"listener_code_{event['slug']}": event["code"]}) as client:
        statuses = {client.get(f"/listener/{event['slug']}", headers=ip).status_code for _ in range(15)}
    assert statuses == {200}


def test_admin_token_masks_user_token_but_user_token_alone_grants_access(listener_stack, event):
    now = int(time.time())
    user = jwt.encode({"sub": "5", "user": True, "is_admin": False, "iat": now, "exp": now + 600}, listener_stack.secret_key, algorithm="HS256")
    with _client(listener_stack, user_token=user) as client:
        page = client.get(f"/listener/{event['slug']}", headers=_fresh_ip())
        assert page.status_code == 200 and LISTENER_DATA.search(page.text)
    with _client(listener_stack, user_token=user, admin_token=event["admin_token"]) as client:
        masked = client.get(f"/listener/{event['slug']}", headers=_fresh_ip())
        assert masked.status_code == 200 and not LISTENER_DATA.search(masked.text)  # the join form


def test_audio_delay_poll_403_ten_times_then_429(listener_stack, event):
    url = f"/listener/{event['slug']}/rooms/{event['hall']}/audio-delay"
    ip = _fresh_ip()
    with _client(listener_stack) as client:
        statuses = [client.get(url, headers=ip).status_code for _ in range(11)]
        assert statuses == [403] * 10 + [429]
    with _client(listener_stack, **{f"listener_code_{event['slug']}": event["code"]}) as client:
        ok = client.get(url, headers=_fresh_ip())
        assert ok.status_code == 200 and ok.json() == {"audio_delay_ms": 1500}
        assert client.get(f"/listener/{event['slug']}/rooms/{event['annex']}/audio-delay").json() == {"audio_delay_ms": 0}
        assert client.get(f"/listener/{event['slug']}/rooms/999999/audio-delay").status_code == 404
