"""Database failure modes of the reference portal, reproduced the way VoxBento produces them (contract 9, 14.9, 14.10, 14.26).

The slow work that holds a session is real: ``/register`` sends its verification email inside its DB
transaction (contract 9.1), and here the SMTP server is a loopback socket that accepts connections and
never answers (contract 9.3's "SMTP pointed at a port that never answers"), with the SMTP timeout
shortened by ``REFSTACK_SMTP_TIMEOUT_S``.
"""

from __future__ import annotations

import json
import re
import socket
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest


class BlackholeSmtp:
    """Accepts TCP connections and never sends the SMTP greeting; counts connections."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted = threading.Semaphore(0)
        self._conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self._conns.append(conn)  # kept open and silent
            self.accepted.release()

    def wait_for_connection(self, timeout_s: float = 20.0) -> None:
        assert self.accepted.acquire(timeout=timeout_s), "the portal never connected to SMTP"

    def close(self) -> None:
        self.sock.close()
        for conn in self._conns:
            conn.close()


@pytest.fixture
def smtp_blackhole():
    hole = BlackholeSmtp()
    yield hole
    hole.close()


def _client(stack, **cookies) -> httpx.Client:
    return httpx.Client(base_url=stack.portal_url, follow_redirects=False, timeout=60, cookies=cookies)


def _event_with_code(stack) -> tuple[str, str]:
    with _client(stack) as admin:
        admin.post("/admin/login", data={"password": stack.admin_password})
        event_id = int(re.search(r"/admin/events/(\d+)/", admin.post("/admin/setup", data={"display_name": "Db Event"}).headers["location"]).group(1))
        code = re.search(r'<span class="join-code">(\w{6})</span>', admin.get(f"/admin/events/{event_id}/setup/invite").text).group(1)
    return "db-event", code


def _register(stack, email: str) -> httpx.Response:
    with _client(stack) as client:
        return client.post("/register", data={"email": email, "display_name": "Slow", "password": "pw"})


def test_pool_exhaustion_500_after_timeout_while_healthz_and_home_stay_200(stack_factory, smtp_blackhole):
    stack = stack_factory(
        portal_env={
            "REFSTACK_DB_POOL_SIZE": "1",
            "REFSTACK_DB_MAX_OVERFLOW": "0",
            "REFSTACK_DB_POOL_TIMEOUT_S": "0.5",
            "REFSTACK_WEBHOOK_LOOP": "false",
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(smtp_blackhole.port),
            "REFSTACK_SMTP_TIMEOUT_S": "6",
        }
    )
    slug, code = _event_with_code(stack)
    with ThreadPoolExecutor(max_workers=1) as pool:
        slow = pool.submit(_register, stack, "slow@example.org")
        smtp_blackhole.wait_for_connection()  # /register now holds the only pooled connection
        with _client(stack) as client:
            listener = client.get(f"/listener/{slug}", params={"code": code})
        with _client(stack) as client:
            health = client.get("/healthz")
            home = client.get("/")
        registered = slow.result(timeout=30)
    # Contract 9.3: the waiting request fails with a bare 500 after the pool timeout.
    assert listener.status_code == 500 and listener.json() == {"detail": "Internal Server Error"}
    # Contract 9.2: /healthz opens no session; contract 4.5: GET / swallows the DB error.
    assert health.status_code == 200 and health.json()["ok"] is True
    assert home.status_code == 200 and "No events yet." in home.text and slug not in home.text
    # The slow request itself answers 200 once its SMTP exchange times out (contract 9.3).
    assert registered.status_code == 200
    with _client(stack) as client:
        assert slug in client.get("/").text
    log = (stack.data_dir / "portal.log").read_text()
    assert "Unhandled Server Error: TimeoutError" in log or "QueuePool limit" in log


def test_sqlite_writer_gets_database_is_locked_500_during_a_long_write(stack_factory, smtp_blackhole):
    stack = stack_factory(
        portal_env={
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(smtp_blackhole.port),
            "REFSTACK_SMTP_TIMEOUT_S": "12",  # > the 5 s SQLite busy wait of the second writer, with margin
        }
    )
    slug, code = _event_with_code(stack)
    with ThreadPoolExecutor(max_workers=1) as pool:
        holder = pool.submit(_register, stack, "holder@example.org")
        smtp_blackhole.wait_for_connection()  # the holder's INSERTs are done; it owns the write lock
        with _client(stack) as client:
            reader = client.get(f"/listener/{slug}", params={"code": code})
        with _client(stack) as client:
            writer = client.post("/register", data={"email": "second@example.org", "display_name": "Second"})
        held = holder.result(timeout=30)
    assert reader.status_code == 200  # contract 9.3: reads are unaffected
    assert writer.status_code == 500 and writer.json() == {"detail": "Internal Server Error"}
    assert held.status_code == 200
    log = (stack.data_dir / "portal.log").read_text()
    assert "database is locked" in log
    # Contract 14.26: the webhook loop competes for the same lock and backs off.
    assert "Webhook loop: database is locked" in log
    # The failed writer left nothing behind; the holder's rows were committed.
    with sqlite3.connect(stack.data_dir / "interpretation.db") as db:
        emails = {row[0] for row in db.execute("SELECT email FROM users")}
    assert emails == {"holder@example.org"}


class WebhookReceiver:
    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.received = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server naming)
                receiver.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(204)
                self.end_headers()
                receiver.received.set()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_webhook_loop_claims_and_delivers_pending_rows(portal):
    receiver = WebhookReceiver()
    try:
        with sqlite3.connect(portal.data_dir / "interpretation.db") as db:
            sub_id = db.execute(
                "INSERT INTO webhook_subscriptions (target_url, event_types, is_active, created_at) VALUES (?, ?, 1, '2026-01-01')",
                (receiver.url, "booth.interpreter.joined"),
            ).lastrowid
            db.execute(
                "INSERT INTO webhook_deliveries (event_type, payload, status, attempts, subscription_id, last_error, created_at) "
                "VALUES ('booth.interpreter.joined', ?, 'pending', 0, ?, '', '2026-01-01')",
                (json.dumps({"event": "booth.interpreter.joined", "data": {"booth_id": "x-1-es"}}), sub_id),
            )
        assert receiver.received.wait(timeout=15), "the loop never delivered the pending row"
        assert receiver.bodies == [{"event": "booth.interpreter.joined", "data": {"booth_id": "x-1-es"}}]
        status = None
        for _ in range(100):
            with sqlite3.connect(portal.data_dir / "interpretation.db") as db:
                status, attempts = db.execute("SELECT status, attempts FROM webhook_deliveries").fetchone()
            if status == "delivered":
                break
            time.sleep(0.05)
        assert (status, attempts) == ("delivered", 1)
    finally:
        receiver.close()


def test_interpreter_join_enqueues_a_webhook_that_the_loop_delivers(portal):
    """Contract 3.8 / 9.2: ``booth:join`` as interpreter enqueues ``booth.interpreter.joined`` (one DB
    session reading subscriptions and inserting a delivery row); the loop then POSTs it."""
    from websockets.sync.client import connect

    receiver = WebhookReceiver()
    try:
        with sqlite3.connect(portal.data_dir / "interpretation.db") as db:
            db.execute(
                "INSERT INTO webhook_subscriptions (target_url, event_types, is_active, created_at) VALUES (?, ?, 1, '2026-01-01')",
                (receiver.url, "booth.interpreter.joined,booth.transcription.started"),
            )
        with _client(portal) as admin:
            admin.post("/admin/login", data={"password": portal.admin_password})
            event_id = int(re.search(r"/admin/events/(\d+)/", admin.post("/admin/setup", data={"display_name": "Hooks"}).headers["location"]).group(1))
            admin.post(f"/admin/events/{event_id}/setup/rooms", data={"display_name": "Hall"})
            room = int(re.search(r'<option value="(\d+)">', admin.get(f"/admin/events/{event_id}/setup/booths").text).group(1))
            admin.post(f"/admin/events/{event_id}/setup/booths", data={"room_id": str(room), "language_code": "es"})
            booths = admin.get(f"/admin/events/{event_id}/rooms/{room}/booths/").text
            booth = int(re.search(rf"/admin/events/{event_id}/rooms/{room}/booths/(\d+)/", booths).group(1))
            admin.post(f"/admin/events/{event_id}/rooms/{room}/booths/{booth}/tokens/", data={"role": "interpreter", "label": "i"})
            token = re.search(r"/join/([0-9a-f]{64})", admin.get(f"/admin/events/{event_id}/rooms/{room}/booths/{booth}/").text).group(1)
        with _client(portal) as interp:
            cookie = interp.get(f"/join/{token}").cookies["session_token"]
        ws_url = portal.portal_url.replace("http://", "ws://") + f"/ws/booth/hooks-{room}-es"
        with connect(ws_url, additional_headers={"Cookie": f"session_token={cookie}"}, open_timeout=10) as ws:
            ws.send(json.dumps({"type": "booth:join", "display_name": "Ana", "role": "interpreter"}))
            assert json.loads(ws.recv(timeout=10))["type"] == "booth:joined"
            assert receiver.received.wait(timeout=15), "no webhook delivered"
        assert receiver.bodies[0]["event"] == "booth.interpreter.joined"
        assert f"hooks-{room}-es" in json.dumps(receiver.bodies[0]["data"])
    finally:
        receiver.close()
