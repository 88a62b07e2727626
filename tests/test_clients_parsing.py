"""Client-side rules that need no server: read-back shapes (contract App. B), URL building (5.5),
identifiers (2), JWT claim shapes (3.1), error messages and redaction."""

from __future__ import annotations

import jwt
import pytest

from harness.clients import admin, errors, html, interpreter, listener
from harness.clients.booth_state import BoothState, HandoffState, IngestStatus
from harness.clients.cookies import cookie_header, jar_value, listener_code_cookie
from harness.clients.identifiers import BoothRef, InvalidIdentifier, check_language, check_slug
from harness.clients.media_urls import browser_whip_url, plain_whep_url
from harness.clients.tokens import SECRET_ENV_VAR, TokenMinter

TOKEN = "ab" * 32


def test_redact_url_hides_tokens_codes_and_invites() -> None:
    url = "http://127.0.0.1:8000/ws/booth/x-1-es?token=SECRET&room_id=3&code=ABC234"
    red = errors.redact_url(url)
    assert "SECRET" not in red and "ABC234" not in red and "room_id=3" in red
    assert TOKEN not in errors.redact_url(f"http://h/join/{TOKEN}")


def test_error_messages_are_one_line_and_name_the_url() -> None:
    err = errors.RateLimited("http://h/listener/e?code=XYZ234", 429, (200,), "Too many\n join attempts", "GET")
    assert "\n" not in str(err) and "http://h/listener/e" in str(err) and "XYZ234" not in str(err)
    assert isinstance(err, errors.UnexpectedStatus) and err.status == 429
    assert "HTTP 403" in str(errors.HandshakeRejected("ws://h/ws/booth/a?token=t", 403))


def test_identifiers_follow_contract_section_2() -> None:
    ref = BoothRef("loadtest", 1, "es")
    assert ref.booth_id == "loadtest-1-es" and ref.mediamtx_path == "loadtest/1/es"
    assert check_slug("a-b-1") == "a-b-1" and check_language("floor") == "floor"
    for bad in ("A", "a--b", "-a", "x" * 65):
        with pytest.raises(InvalidIdentifier):
            check_slug(bad)
    with pytest.raises(InvalidIdentifier):
        check_language("esp")


def test_whip_url_is_percent_encoded_as_one_segment_like_the_browser() -> None:
    # Contract 5.5 / 12.3: `/loadtest%2F1%2Fes/whip`.
    assert browser_whip_url("http://127.0.0.1:8889/", "loadtest/1/es") == "http://127.0.0.1:8889/loadtest%2F1%2Fes/whip"
    assert plain_whep_url("http://m:8889", "loadtest/1/es") == "http://m:8889/loadtest/1/es/whep"


def test_admin_read_back_shapes_of_appendix_b() -> None:
    events_html = """<table><tr><td><a href="/admin/events/7/">Load &amp; Test</a></td>
        <td><code>loadtest</code></td></tr></table>"""
    assert admin.event_rows(html.parse(events_html, "u")) == [admin.EventRow(7, "Load & Test", "loadtest")]
    assert admin.WIZARD_EVENT_LOCATION.search("/admin/events/12/setup/rooms").group(1) == "12"
    assert admin.join_code(html.parse('<span class="join-code">K7M2QZ</span>', "u")) == "K7M2QZ"
    # The 0/O/1/I-free alphabet (contract 4.1): a code with O is not a join code.
    with pytest.raises(errors.ReadBackError):
        admin.join_code(html.parse('<span class="join-code">K7M2QO</span>', "u"))
    doc = html.parse(f"<table><tr><td>other</td><td><code id=\"tok-1\">/join/{'cd' * 32}</code></td></tr>"
                     f"<tr class=x><td>mine</td><td><code id=\"tok-2\">/join/{TOKEN}</code></td></tr></table>", "u")
    assert admin.invite_tokens(doc, "mine") == {TOKEN}


def test_lobby_and_booth_page_shapes() -> None:
    lobby = "<a href='/interpreter/my-event/3/es'>Spanish</a><a href=/interpreter/old-event/fr>French</a>"
    links = interpreter.lobby_booths(lobby, "u")
    assert [(b.event_slug, b.room_id, b.language_code) for b in links] == [("my-event", 3, "es"), ("old-event", None, "fr")]
    assert interpreter.invite_token_of(f"https://voxbento.com/join/{TOKEN}") == TOKEN
    assert interpreter.invite_token_of(TOKEN) == TOKEN
    with pytest.raises(ValueError):
        interpreter.invite_token_of("/join/123")
    page = interpreter.booth_page_data(
        "<div data-booth-id='e-3-es' data-granted-role=interpreter data-whep-url=\"http://m/e/3/es/whep\" "
        "data-default-channel='e/3/es' data-whip-base='http://m:8889' data-x='a&amp;b'>", "u")
    assert page.booth_id == "e-3-es" and page.whip_url == "http://m:8889/e%2F3%2Fes/whip" and page.attributes["x"] == "a&b"


def test_listener_data_parsing() -> None:
    page_html = """<script id="listener-data" type="application/json">{"eventSlug": "ev", "rooms": [{"id": 3}],
      "booths": [{"id": 9, "room_id": 3, "language_code": "es", "language_name": "Spanish", "channel_id": "ev/3/es",
      "whep_url": "http://m/ev/3/es/whep", "audio_delay_ms": 250}]}</script>"""
    page = listener.parse_listener_data(page_html, "http://h/listener/ev")
    assert page is not None and page.booth(3, "es").audio_delay_ms == 250
    assert page.booth(3, "es").ref("ev").booth_id == "ev-3-es"
    assert listener.parse_listener_data("<form>join code</form>", "u") is None
    with pytest.raises(errors.MalformedResponse):
        listener.parse_listener_data('<script id="listener-data">{"booths": 1}</script>', "u")
    inline = "<script>\n  var boothsData = [{\"id\": 4, \"room_id\": 2, \"language_code\": \"es\", \"channel_id\": \"ev/es\", " \
             "\"whep_url\": \"http://m/ev/es/whep\"}];\n  var roomsData = [{\"id\": 2}];\n</script>"
    old = listener.parse_listener_data(inline, "u", "ev")
    assert old.event_slug == "ev" and old.booth(2, "es").ref("ev").booth_id == "ev-es" and old.rooms == ({"id": 2},)


def test_booth_state_requires_contract_keys() -> None:
    raw = {k: None for k in BoothState.REQUIRED_KEYS} | {
        "booth_id": "e-1-es", "event_slug": "e", "language_code": "es", "mediamtx_path": "e/1/es", "room_id": 1,
        "channel_id": "e/1/es", "handoff_state": "pending", "broadcast_unlocked": False, "ingest_status": "overloaded",
        "participants": [{"participant_id": "p1", "role": "interpreter", "mic_active": True}], "chat_messages": [],
    }
    state = BoothState.from_json(raw)
    assert state.handoff_state is HandoffState.PENDING and state.ingest_status is IngestStatus.OVERLOADED
    assert state.participant("p1").mic_active and state.participant("p2") is None
    with pytest.raises(errors.MalformedResponse):
        BoothState.from_json({k: v for k, v in raw.items() if k != "participants"})
    with pytest.raises(errors.MalformedResponse):
        BoothState.from_json(raw | {"handoff_state": "weird"})


def test_token_minter_claim_shapes_and_secret_hygiene() -> None:
    secret = "s3cr3t-" + "x" * 32
    minter = TokenMinter.from_env({SECRET_ENV_VAR: secret})
    assert secret not in repr(minter)
    admin_claims = jwt.decode(minter.admin(), secret, algorithms=["HS256"])
    assert admin_claims["admin"] is True and admin_claims["exp"] - admin_claims["iat"] == 86400
    session = jwt.decode(minter.session(5, "ev", 3, "es"), secret, algorithms=["HS256"])
    assert {k: session[k] for k in ("booth_id", "role", "event_slug", "room_id", "language_code")} == {
        "booth_id": 5, "role": "interpreter", "event_slug": "ev", "room_id": 3, "language_code": "es"}
    assert len(session["sub"]) == 32
    embed = jwt.decode(minter.listener("ev", embed=True), secret, algorithms=["HS256"])
    assert embed["role"] == "listener" and embed["purpose"] == "embed" and embed["exp"] - embed["iat"] == 1800
    user = jwt.decode(minter.user(4, "a@b.c", is_admin=True), secret, algorithms=["HS256"])
    assert user["sub"] == "4" and user["user"] is True and user["is_admin"] is True
    with pytest.raises(errors.CredentialsUnavailable):
        TokenMinter.from_env({})
    with pytest.raises(ValueError):
        minter.session(5, "ev", 3, "es", role="listener")


def test_cookie_helpers() -> None:
    jar = {"admin_token": "A", "listener_code_ev": "K7M2QZ", "empty": ""}
    assert jar_value(jar, listener_code_cookie("ev")) == "K7M2QZ" and jar_value(jar, "empty") is None
    assert cookie_header(jar, ["admin_token", "session_token"]) == "admin_token=A"
