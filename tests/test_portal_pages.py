"""Public pages and the MediaMTX Control API calls of the reference portal (contract 4.5, 6.1, 12.2, 14.20).

A tiny fake Control API (a real ``http.server`` on a free loopback port, started here) records what the
portal asks of MediaMTX, so health, the add -> "already exists" -> patch fallback and the
never-invalidated path cache are observed from outside the portal.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest


class FakeControlApi:
    """Enough of MediaMTX's Control API v3 for the portal: paths/list, config/paths/add and patch."""

    def __init__(self) -> None:
        self.configured: set[str] = set()
        self.failing: set[str] = set()
        self.calls: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _record(self) -> str:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                assert body == {"alwaysAvailable": True, "alwaysAvailableTracks": [{"codec": "Opus"}], "overridePublisher": True}
                with api._lock:
                    api.calls.append((self.command, self.path))
                return self.path

            def do_GET(self) -> None:  # noqa: N802 (http.server naming)
                with api._lock:
                    api.calls.append(("GET", self.path))
                self._reply(200, {"itemCount": 0, "pageCount": 0, "items": []})

            def do_POST(self) -> None:  # noqa: N802
                path = self._record().removeprefix("/v3/config/paths/add/")
                with api._lock:
                    if path in api.failing:
                        return self._reply(500, {"error": "boom"})
                    if path in api.configured:
                        return self._reply(400, {"error": "path already exists"})
                    api.configured.add(path)
                self._reply(200, {})

            def do_PATCH(self) -> None:  # noqa: N802
                self._record()
                self._reply(200, {})

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def path_calls(self, path: str) -> list[str]:
        with self._lock:
            return [method for method, p in self.calls if p.endswith("/" + path)]

    def restart(self) -> None:
        """What a MediaMTX restart does to runtime path configuration: it is gone."""
        with self._lock:
            self.configured.clear()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def control_api():
    api = FakeControlApi()
    yield api
    api.close()


def _client(stack, **cookies) -> httpx.Client:
    return httpx.Client(base_url=stack.portal_url, follow_redirects=False, timeout=30, cookies=cookies)


def _event_with_booths(stack, name: str, langs: tuple[str, ...]) -> tuple[str, int, str]:
    with _client(stack) as admin:
        admin.post("/admin/login", data={"password": stack.admin_password})
        location = admin.post("/admin/setup", data={"display_name": name}).headers["location"]
        event_id = int(re.search(r"/admin/events/(\d+)/", location).group(1))
        admin.post(f"/admin/events/{event_id}/setup/rooms", data={"display_name": "Hall"})
        room = int(re.search(r'<option value="(\d+)">', admin.get(f"/admin/events/{event_id}/setup/booths").text).group(1))
        for lang in langs:
            admin.post(f"/admin/events/{event_id}/setup/booths", data={"room_id": str(room), "language_code": lang})
        code = re.search(r'<span class="join-code">(\w{6})</span>', admin.get(f"/admin/events/{event_id}/setup/invite").text).group(1)
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug, room, code


def test_healthz_true_against_a_control_api_and_cached_after_it_goes_away(stack_factory, control_api):
    stack = stack_factory(portal_env={"MEDIAMTX_API_BASE": control_api.url, "REFSTACK_WEBHOOK_LOOP": "false"})
    with _client(stack) as client:
        assert client.get("/healthz").json() == {"ok": True, "server": "fastapi", "mediamtx_ok": True}
        probes = [c for c in control_api.calls if c == ("GET", "/v3/paths/list")]
        assert probes
        control_api.close()
        # Contract 12.2: the answer is cached for 5 s, so the probe is not repeated right away.
        assert client.get("/healthz").json()["mediamtx_ok"] is True
        assert [c for c in control_api.calls if c == ("GET", "/v3/paths/list")] == probes


def test_healthz_false_without_control_api(portal):
    with _client(portal) as client:
        resp = client.get("/healthz")
    assert resp.status_code == 200 and resp.json() == {"ok": True, "server": "fastapi", "mediamtx_ok": False}


def test_ensure_path_add_then_patch_on_already_exists_and_the_cache_is_never_invalidated(stack_factory, control_api):
    stack = stack_factory(portal_env={"MEDIAMTX_API_BASE": control_api.url, "REFSTACK_WEBHOOK_LOOP": "false"})
    slug, room, code = _event_with_booths(stack, "Path Cache", ("es", "fr", "de"))
    es, fr, de = (f"{slug}/{room}/{lang}" for lang in ("es", "fr", "de"))
    control_api.configured.add(es)  # as if MediaMTX already had it (e.g. from a previous portal run)
    control_api.failing.add(de)
    with _client(stack) as client:
        assert client.get(f"/listener/{slug}", params={"code": code}).status_code == 200
        assert control_api.path_calls(es) == ["POST", "PATCH"]  # add -> 400 "already exists" -> patch
        assert control_api.path_calls(fr) == ["POST"]
        assert control_api.path_calls(de) == ["POST"]

        assert client.get(f"/listener/{slug}").status_code == 200
        # Successes are cached; the failure is retried on the next page load.
        assert control_api.path_calls(es) == ["POST", "PATCH"]
        assert control_api.path_calls(fr) == ["POST"]
        assert control_api.path_calls(de) == ["POST", "POST"]

        control_api.restart()  # MediaMTX forgets its paths...
        control_api.failing.clear()
        assert client.get(f"/listener/{slug}").status_code == 200
    # ...and the portal never re-adds the cached ones (contract 14.20).
    assert control_api.path_calls(es) == ["POST", "PATCH"]
    assert control_api.path_calls(fr) == ["POST"]
    assert control_api.path_calls(de) == ["POST", "POST", "POST"]
    assert control_api.configured == {de}


def test_home_lists_events_and_booths(portal):
    slug, room, _ = _event_with_booths(portal, "Home Page", ("es",))
    with _client(portal) as client:
        page = client.get("/")
    assert page.status_code == 200
    assert f'href="/listener/{slug}"' in page.text and "<code>es</code>" in page.text


def test_logout_routes_delete_every_auth_cookie(portal):
    with _client(portal) as client:
        for path, target in (("/logout", "/"), ("/admin/logout", "/admin/login")):
            resp = client.get(path)
            assert resp.status_code == 303 and resp.headers["location"] == target
            deleted = {h.split("=", 1)[0] for h in resp.headers.get_list("set-cookie") if "max-age=0" in h.lower()}
            assert deleted == {"admin_token", "user_token", "session_token"}
