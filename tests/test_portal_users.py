"""Registered-user surfaces of the reference portal over real HTTP (contract 3.1, 3.3, 4.5, 10).

Links are read back from the portal's own stderr log, where VoxBento logs them when SMTP is unset.
"""

from __future__ import annotations

import re
import time

import httpx
import jwt
import pytest

from harness.refstack.stack import Stack, StackConfig

VERIFY_LINK = re.compile(r"/auth/verify/([0-9a-f]{64})")
MAGIC_LINK = re.compile(r"/auth/magic/([0-9a-f]{64})")


def _stack(tmp_path_factory, name: str, **env: str) -> Stack:
    config = StackConfig.ephemeral(
        with_media=False,
        portal_env={"REFSTACK_BCRYPT_ROUNDS": "4", "REFSTACK_WEBHOOK_LOOP": "false", **env},
        data_dir=tmp_path_factory.mktemp(name),
    )
    return Stack(config).start()


@pytest.fixture(scope="module")
def users_stack(tmp_path_factory):
    stack = _stack(tmp_path_factory, "users-stack")
    yield stack
    stack.stop()


def _client(stack: Stack, **cookies: str) -> httpx.Client:
    return httpx.Client(base_url=stack.portal_url, follow_redirects=False, timeout=30, cookies=cookies)


def _logged_link(stack: Stack, pattern: re.Pattern[str], email: str, timeout_s: float = 5.0) -> str:
    """The newest link logged for this email (the log line names the recipient)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        lines = [ln for ln in (stack.data_dir / "portal.log").read_text().splitlines() if email in ln and pattern.search(ln)]
        if lines:
            return pattern.search(lines[-1]).group(1)
        time.sleep(0.05)
    raise AssertionError(f"no {pattern.pattern} link logged for {email}")


def _register(stack: Stack, email: str, password: str | None = "pw-123456") -> httpx.Response:
    data = {"email": email, "display_name": email.split("@")[0]}
    if password is not None:
        data["password"] = password
    with _client(stack) as client:
        return client.post("/register", data=data)


def test_register_requires_email_verification_via_logged_link(users_stack):
    resp = _register(users_stack, "ana@example.org")
    assert resp.status_code == 200 and "set-cookie" not in resp.headers
    assert "Check your email" in resp.text
    with _client(users_stack) as client:
        unverified = client.post("/login", data={"email": "ana@example.org", "password": "pw-123456"})
        assert unverified.status_code == 403 and "Please verify your email address first." in unverified.text

        token = _logged_link(users_stack, VERIFY_LINK, "ana@example.org")
        verified = client.get(f"/auth/verify/{token}")
        assert verified.status_code == 303 and verified.headers["location"] == "/account"
        claims = jwt.decode(verified.cookies["user_token"], users_stack.secret_key, algorithms=["HS256"])
        assert claims["user"] is True and claims["email"] == "ana@example.org" and claims["sub"].isdigit()
        # Verification links are single use.
        assert client.get(f"/auth/verify/{token}").status_code == 400

        wrong = client.post("/login", data={"email": "ana@example.org", "password": "nope"})
        assert wrong.status_code == 403
        ok = client.post("/login", data={"email": "ANA@example.org", "password": "pw-123456", "next_url": "/account"})
        assert ok.status_code == 303 and ok.headers["location"] == "/account"
        account = client.get("/account")  # the client's jar holds the user_token from the login
        assert account.status_code == 200 and "ana@example.org" in account.text


def test_register_duplicate_or_missing_fields_is_422(users_stack):
    assert _register(users_stack, "dup@example.org").status_code == 200
    assert _register(users_stack, "dup@example.org").status_code == 422
    with _client(users_stack) as client:
        assert client.post("/register", data={"email": "x@example.org"}).status_code == 422


def test_login_limiter_blocks_the_11th_attempt_even_with_the_right_password(users_stack):
    _register(users_stack, "busy@example.org")
    with _client(users_stack) as client:
        client.get(f"/auth/verify/{_logged_link(users_stack, VERIFY_LINK, 'busy@example.org')}")
        statuses = [client.post("/login", data={"email": "busy@example.org", "password": "pw-123456"}).status_code for _ in range(10)]
        assert statuses == [303] * 10  # contract 10: successes count too
        blocked = client.post("/login", data={"email": "Busy@Example.org", "password": "pw-123456"})
        assert blocked.status_code == 429 and "Too many attempts. Try again later." in blocked.text
        assert "retry-after" not in blocked.headers
        # The key is the email: another account is unaffected.
        other = client.post("/login", data={"email": "nobody@example.org", "password": "x"})
        assert other.status_code == 403


def test_login_limiter_knob_off(tmp_path_factory):
    stack = _stack(tmp_path_factory, "users-nolimit", REFSTACK_LOGIN_RATE_LIMIT="false")
    try:
        with _client(stack) as client:
            statuses = {client.post("/login", data={"email": "ghost@example.org", "password": "x"}).status_code for _ in range(12)}
        assert statuses == {403}
    finally:
        stack.stop()


def test_magic_link_logs_a_link_that_verifies_and_is_limited_to_5_per_hour(users_stack):
    _register(users_stack, "magic@example.org", password=None)
    with _client(users_stack) as client:
        resp = client.post("/api/auth/magic-link", json={"email": "magic@example.org"})
        assert resp.status_code == 200
        token = _logged_link(users_stack, MAGIC_LINK, "magic@example.org")
        signed_in = client.get(f"/auth/magic/{token}", params={"next": "/account"})
        assert signed_in.status_code == 303 and signed_in.headers["location"] == "/account"
        assert "user_token" in signed_in.cookies
        statuses = [client.post("/api/auth/magic-link", json={"email": "magic@example.org"}).status_code for _ in range(5)]
        assert statuses == [200, 200, 200, 200, 429]
        assert client.post("/api/auth/magic-link", json={"email": "magic@example.org"}).json() == {"detail": "Too many requests"}
        # A password-less user cannot use /login even after verification.
        assert client.post("/login", data={"email": "magic@example.org", "password": ""}).status_code == 403


def test_check_email_reports_existence(users_stack):
    _register(users_stack, "check@example.org")
    with _client(users_stack) as client:
        assert client.post("/api/auth/check-email", json={"email": "check@example.org"}).json() == {"exists": True, "has_password": True}
        assert client.post("/api/auth/check-email", json={"email": "none@example.org"}).json() == {"exists": False, "has_password": False}


def test_mission_control_needs_a_user_token_not_an_admin_token(users_stack):
    with _client(users_stack) as admin:
        admin.post("/admin/login", data={"password": users_stack.admin_password})
        event_id = int(re.search(r"/admin/events/(\d+)/", admin.post("/admin/setup", data={"display_name": "MC Event"}).headers["location"]).group(1))
        admin.post(f"/admin/events/{event_id}/setup/rooms", data={"display_name": "Hall"})
        room_id = int(re.search(r'<option value="(\d+)">', admin.get(f"/admin/events/{event_id}/setup/booths").text).group(1))
        for lang in ("es", "fr"):
            admin.post(f"/admin/events/{event_id}/setup/booths", data={"room_id": str(room_id), "language_code": lang})
        assert admin.get("/mission-control/mc-event/").status_code == 403  # admin_token alone
    # An is_admin user_token (minted, contract 3.1) gets the grid with the string booth ids.
    now = int(time.time())
    user_token = jwt.encode(
        {"sub": "999", "email": "boss@example.org", "display_name": "Boss", "is_admin": True, "user": True, "iat": now, "exp": now + 600},
        users_stack.secret_key,
        algorithm="HS256",
    )
    with _client(users_stack, user_token=user_token) as client:
        grid = client.get("/mission-control/mc-event/")
    plain = jwt.encode({"sub": "998", "user": True, "is_admin": False, "iat": now, "exp": now + 600}, users_stack.secret_key, algorithm="HS256")
    with _client(users_stack, user_token=plain) as client:
        assert client.get("/mission-control/mc-event/").status_code == 403
    assert grid.status_code == 200
    assert set(re.findall(r'class="booth-cell" data-booth-id="([^"]+)"', grid.text)) == {f"mc-event-{room_id}-es", f"mc-event-{room_id}-fr"}


def test_forgot_password_link_sets_a_new_password(users_stack):
    reset_link = re.compile(r"/auth/reset/([0-9a-f]{64})")
    _register(users_stack, "forgetful@example.org", password="old-password")
    with _client(users_stack) as client:
        client.get(f"/auth/verify/{_logged_link(users_stack, VERIFY_LINK, 'forgetful@example.org')}")
        assert client.post("/api/auth/forgot-password", json={"email": "forgetful@example.org"}).status_code == 200
        token = _logged_link(users_stack, reset_link, "forgetful@example.org")
        assert client.get(f"/auth/reset/{token}").status_code == 200
        reset = client.post(f"/auth/reset/{token}", data={"password": "new-password"})
        assert reset.status_code == 303 and reset.headers["location"] == "/account" and "user_token" in reset.cookies
        assert client.post(f"/auth/reset/{token}", data={"password": "again"}).status_code == 400  # single use
        assert client.post("/login", data={"email": "forgetful@example.org", "password": "old-password"}).status_code == 403
        assert client.post("/login", data={"email": "forgetful@example.org", "password": "new-password"}).status_code == 303
        # Contract 10: 5 per email per hour; unknown emails get the same answer (no account enumeration).
        statuses = [client.post("/api/auth/forgot-password", json={"email": "forgetful@example.org"}).status_code for _ in range(5)]
        assert statuses == [200, 200, 200, 200, 429]
        assert client.post("/api/auth/forgot-password", json={"email": "nobody@example.org"}).status_code == 200
