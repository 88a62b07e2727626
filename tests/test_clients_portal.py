"""The clients against a running reference portal: error translation, reporting, read-backs, the booth
socket protocol (contract 5.3), the booth JSON API, the listener limiter and auth-mode rejections."""

from __future__ import annotations

import secrets
import socket

import pytest

from harness.clients import (
    AdminClient,
    AuthRejected,
    BoothApi,
    BoothErrorReply,
    BoothRef,
    BoothSocket,
    CaptionSocket,
    HandoffState,
    HandshakeRejected,
    InterpreterClient,
    ListenerClient,
    NotFound,
    PortalHttp,
    RateLimited,
    ReadBackError,
    SocketState,
    TargetUnreachable,
)
from harness.clients.booth_ws import first_receipt_delay_ms


class Recorder:
    """A `report` callable that keeps what it was given (keyword arguments only, as Locust requires)."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def __call__(self, **kwargs) -> None:
        self.calls.append(kwargs)

    def names(self) -> list[str]:
        return [c["name"] for c in self.calls]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_target_is_typed_and_reported() -> None:
    recorder = Recorder()
    http = PortalHttp.for_url(f"http://127.0.0.1:{_closed_port()}", report=recorder)
    with pytest.raises(TargetUnreachable):
        AdminClient(http).login("whatever")
    (call,) = recorder.calls
    assert set(call) == {"request_type", "name", "response_time", "response_length", "exception"}
    assert isinstance(call["exception"], TargetUnreachable) and call["request_type"] == "POST"
    sock = BoothSocket.for_portal(http, "x-1-es", report=recorder)
    with pytest.raises(TargetUnreachable):
        sock.connect()
    assert sock.state is SocketState.FAILED


def test_admin_classic_forms_read_backs_and_grouped_report_names(portal) -> None:
    recorder = Recorder()
    admin = AdminClient(PortalHttp.for_url(portal.portal_url, report=recorder))
    with pytest.raises(AuthRejected) as wrong:
        admin.login("not-the-password")
    assert wrong.value.status == 403  # contract 3.2
    admin.login(portal.admin_password)
    slug = f"classic-{secrets.token_hex(3)}"
    event_id = admin.create_event(slug, "Classic Event")
    assert any(row.slug == slug and row.event_id == event_id for row in admin.events_on_page(1))
    room_a = admin.create_room(event_id, "Hall A")
    room_b = admin.create_room(event_id, "Hall B")
    assert room_a != room_b and admin.room_ids(event_id) == {room_a: "Hall A", room_b: "Hall B"}
    booth_es = admin.create_booth(event_id, room_a, "es", "Spanish")
    booth_fr = admin.create_booth(event_id, room_a, "fr", "French")
    assert booth_es != booth_fr
    token = admin.create_invite(event_id, room_a, booth_es, label="alpha", expires_hours=2)
    assert len(token) == 64
    admin.join_code(event_id)
    regenerated = admin.regenerate_join_code(event_id)
    assert admin.join_code(event_id) == regenerated  # the invite page now shows the replacement (contract 4.1)
    admin.set_transcription(event_id, room_a, booth_es, enabled=True)
    for page in (admin.dashboard(), admin.event_page(event_id), admin.room_page(event_id, room_a),
                 admin.booth_page(event_id, room_a, booth_es), admin.setup_booths_page(event_id)):
        assert page
    # Contract 4.4: a deleted booth disappears from the read-back.
    admin.delete_booth(event_id, room_a, booth_fr)
    with pytest.raises(ReadBackError):
        admin.booth_id(event_id, room_a, "fr")
    admin.revoke_invite(event_id, room_a, booth_es, token)
    with pytest.raises(AuthRejected):
        InterpreterClient(PortalHttp.for_url(portal.portal_url)).join_invite(token)  # revoked = used (contract 4.4)
    admin.delete_event(event_id)
    assert all(row.slug != slug for row in admin.events_on_page(1))
    # Stats stay grouped: no per-id names.
    assert "/admin/events/[id]/rooms/" in recorder.names()
    assert all(str(event_id) not in name for name in recorder.names())
    assert all(c["response_time"] > 0 for c in recorder.calls if c["exception"] is None)


def test_invite_join_errors(portal) -> None:
    interp = InterpreterClient(PortalHttp.for_url(portal.portal_url))
    with pytest.raises(NotFound):
        interp.join_invite("0" * 64)  # contract 3.4: unknown token -> 404
    with pytest.raises(AuthRejected) as no_cookie:
        interp.lobby()  # contract 5.1: no cookie -> 303 /login
    assert no_cookie.value.status == 303


@pytest.fixture
def open_booth(portal):
    """A booth made with the JSON shortcut (contract 4.2), which also returns an invite."""
    slug = f"ws-{secrets.token_hex(3)}"
    created = BoothApi(PortalHttp.for_url(portal.portal_url)).create_booth(slug, "es", language="Spanish")
    return portal, slug, created


def _invited(portal, slug: str) -> PortalHttp:
    """A new identity holding a fresh interpreter invite's session cookie (contract 4.2 + 3.4)."""
    invite = BoothApi(PortalHttp.for_url(portal.portal_url)).create_booth(slug, "es").invite_token
    interp = InterpreterClient(PortalHttp.for_url(portal.portal_url))
    interp.join_invite(invite)
    return interp.http


def test_json_shortcut_state_and_errors(open_booth) -> None:
    portal, slug, created = open_booth
    ref = BoothRef(slug, created.state.room_id, "es")
    assert created.state.booth_id == ref.booth_id and created.state.mediamtx_path == ref.mediamtx_path
    assert created.whip_url and created.whep_url and created.caption_url.endswith(f"/ws/captions/{ref.booth_id}")
    api = BoothApi(PortalHttp.for_url(portal.portal_url))
    again = api.create_booth(slug, "es")
    assert again.invite_token != created.invite_token  # contract 4.2: a new invite on every call
    assert api.state(slug, "es", room_id=ref.room_id).booth_id == ref.booth_id
    with pytest.raises(NotFound):
        api.state(slug, "de", room_id=ref.room_id)  # contract 5.2: never creates a booth
    status = api.interpreter_status(ref.mediamtx_path)
    assert status["reachable"] is False  # no media relay in this stack
    assert api.transcription_stop(slug, ref.room_id, "es") == {"status": "stopped"}
    api.delete_booth(slug, ref.room_id, "es")
    with pytest.raises(NotFound):
        api.state(slug, "es", room_id=ref.room_id)


def test_booth_socket_protocol_handoff_and_fan_out(open_booth) -> None:
    portal, slug, created = open_booth
    booth_id = created.state.booth_id
    socks = []
    try:
        interp_a = InterpreterClient(PortalHttp.for_url(portal.portal_url))
        interp_a.join_invite(created.invite_token)
        a = BoothSocket.for_portal(interp_a.http, booth_id).connect()
        socks.append(a)
        b = BoothSocket.for_portal(_invited(portal, slug), booth_id).connect()
        socks.append(b)
        # Contract 3.6: open mode accepts a socket without any cookie, but it has no role and cannot join.
        observer = BoothSocket.for_portal(PortalHttp.for_url(portal.portal_url), booth_id).connect()
        socks.append(observer)
        with pytest.raises(BoothErrorReply) as no_role:
            observer.join("Nobody")
        assert no_role.value.message == "No role assigned for this session."
        a.join("A")
        b.join("B")
        assert a.latest_state.active_interpreter_id == a.participant_id

        # Contract 5.3: errors come back as booth:error and are raised as BoothErrorReply.
        with pytest.raises(BoothErrorReply) as empty:
            a.chat("")
        assert empty.value.message == "Message body cannot be empty."
        with pytest.raises(BoothErrorReply) as not_active:
            b.update_state(mic_active=True)
        assert "active interpreter" in not_active.value.message
        sent_before, received_before = len(a.sent()), a.received_count()
        a.send_message("booth:no-such-thing")
        unknown = a.wait_for(lambda m: m.type == "booth:error", waiting_for="booth:error", after_index=received_before)
        assert unknown.payload["message"] == "Unknown message type: booth:no-such-thing"
        assert len(a.sent()) == sent_before + 1

        # Chat fans out to every booth socket, observers included; delays are measurable per receiver.
        message = a.chat("hello booth")
        assert message["body"] == "hello booth" and message["sender_id"] == a.participant_id
        chat_sent = next(s for s in reversed(a.sent()) if s.type == "booth:chat")
        is_hello = lambda m: m.type == "booth:chat" and m.payload["message"]["body"] == "hello booth"  # noqa: E731
        for receiver in (b, observer):
            receiver.wait_for(is_hello, waiting_for="fanned-out chat")
        delays = first_receipt_delay_ms(chat_sent, [b, observer], is_hello)
        assert all(d is not None and d >= 0 for d in delays)

        # Contract 5.5: offered handoff accepted by the passive one flips the active interpreter.
        offered = a.initiate_handoff()
        assert offered.handoff_state is HandoffState.OFFERED and offered.handoff_initiator_id == a.participant_id
        flipped = b.accept_handoff()
        assert flipped.active_interpreter_id == b.participant_id and flipped.handoff_state is HandoffState.IDLE
        requested = a.initiate_handoff()
        assert requested.handoff_state is HandoffState.REQUESTED
        with pytest.raises(BoothErrorReply) as not_initiator:
            b.cancel_handoff()
        assert not_initiator.value.message == "Only the handoff initiator can cancel."
        assert a.cancel_handoff().handoff_state is HandoffState.IDLE
        live = b.update_state(mic_active=True, ingest_connected=True)
        assert live.participant(b.participant_id).ingest_connected and live.raw["ingest_status"] == "connected"

        # Contract 5.3: the interpreter role cannot unlock the broadcast.
        with pytest.raises(BoothErrorReply) as lock:
            a.set_broadcast_unlocked(True)
        assert lock.value.message == "Only Room Coordinators can manage broadcast lock."

        left = a.leave()
        assert left.participant(a.participant_id or "") is None and a.participant_id is None
        assert observer.state_receipts() and all(t >= 0 for t, _ in observer.state_receipts())
    finally:
        for sock in socks:
            sock.close()
    assert a.transitions == [
        (SocketState.NEW, SocketState.CONNECTING), (SocketState.CONNECTING, SocketState.OPEN),
        (SocketState.OPEN, SocketState.CLOSING), (SocketState.CLOSING, SocketState.CLOSED),
    ]
    stats = observer.statistics()
    assert stats.state is SocketState.CLOSED and stats.received_by_type.get("booth:chat", 0) >= 1


def test_ws_round_trips_are_reported_not_fire_and_forget(open_booth) -> None:
    portal, slug, created = open_booth
    recorder = Recorder()
    sock = BoothSocket.for_portal(_invited(portal, slug), created.state.booth_id, report=recorder).connect()
    try:
        sock.join("R")
        sock.send_message("booth:chat", body="not timed")
        sock.chat("timed")
    finally:
        sock.close()
    assert [(c["request_type"], c["name"]) for c in recorder.calls] == [
        ("WSCONNECT", "/ws/booth/[booth_id]"), ("WS", "booth:join"), ("WS", "booth:chat")]
    assert all(c["exception"] is None and c["response_time"] > 0 for c in recorder.calls)


def test_listener_limiter_per_forwarded_ip(open_booth) -> None:
    portal, slug, created = open_booth
    admin = AdminClient(PortalHttp.for_url(portal.portal_url))
    admin.login(portal.admin_password)
    event_id = admin.event_id(slug)
    code = admin.join_code(event_id)
    blocked = ListenerClient(PortalHttp.for_url(portal.portal_url, forwarded_for="203.0.113.10"))
    for _ in range(10):
        with pytest.raises(AuthRejected):
            blocked.open_page(slug, code="WRONG2")  # contract 6.1: join form, 200, a failure counted
    with pytest.raises(RateLimited):
        blocked.open_page(slug, code="WRONG2")  # contract 10: the 11th failure -> 429
    fresh = ListenerClient(PortalHttp.for_url(portal.portal_url, forwarded_for="203.0.113.11"))
    page = fresh.open_page(slug, code=code)
    assert page.booth(created.state.room_id, "es") is not None
    for _ in range(12):  # the cookie holder is never throttled
        assert fresh.audio_delay_ms(slug, created.state.room_id) >= 0
    with pytest.raises(AuthRejected) as no_access:
        ListenerClient(PortalHttp.for_url(portal.portal_url, forwarded_for="203.0.113.12")).audio_delay_ms(slug, created.state.room_id)
    assert no_access.value.status == 403


def test_auth_mode_rejects_wrong_scope_and_origin(stack_factory) -> None:
    access = secrets.token_hex(12)
    stack = stack_factory(portal_env={"BOOTH_ACCESS_TOKEN": access})
    api = BoothApi(PortalHttp.for_url(stack.portal_url))
    with pytest.raises(AuthRejected):
        api.create_booth("authmode", "es")
    api_q = BoothApi(PortalHttp.for_url(stack.portal_url), query_token=access)
    es = api_q.create_booth("authmode", "es")  # contract 3.5: ?token= equal to the access token passes
    fr = api_q.create_booth("authmode", "fr", room_id=es.state.room_id)
    interp = InterpreterClient(PortalHttp.for_url(stack.portal_url))
    interp.join_invite(es.invite_token)
    # Contract 3.6: with the token set, the cookie's event/room/language must match the booth id.
    with pytest.raises(HandshakeRejected) as scope:
        BoothSocket.for_portal(interp.http, fr.state.booth_id).connect()
    assert scope.value.status == 403
    with pytest.raises(HandshakeRejected):
        BoothSocket.for_portal(interp.http, es.state.booth_id, origin="http://evil.example").connect()
    with pytest.raises(HandshakeRejected):
        BoothSocket.for_portal(PortalHttp.for_url(stack.portal_url), es.state.booth_id).connect()  # no cookie at all
    sock = BoothSocket.for_portal(interp.http, es.state.booth_id).connect()
    try:
        assert sock.join("Scoped").participant(sock.participant_id).role == "interpreter"
    finally:
        sock.close()


def test_caption_socket_records_the_admin_pushed_final(portal) -> None:
    # Contract 4.3 / 6.3: disabling transcription on a booth with an active interpreter pushes an empty final.
    admin = AdminClient(PortalHttp.for_url(portal.portal_url))
    admin.login(portal.admin_password)
    slug = f"cap-{secrets.token_hex(3)}"
    setup = admin.setup_event("Captions", slug, {"Main": ["es"]})
    room = setup.rooms[0]
    ref = BoothRef(slug, room.room_id, "es")
    interp = InterpreterClient(PortalHttp.for_url(portal.portal_url))
    interp.join_invite(admin.create_invite(setup.event_id, room.room_id, room.booth_ids["es"], label="cap"))
    booth = BoothSocket.for_portal(interp.http, ref.booth_id).connect()
    captions = CaptionSocket.for_portal(PortalHttp.for_url(portal.portal_url), ref.booth_id).connect()
    try:
        booth.join("Captioned")
        admin.set_transcription(setup.event_id, room.room_id, room.booth_ids["es"], enabled=True)
        admin.set_transcription(setup.event_id, room.room_id, room.booth_ids["es"], enabled=False)
        final = captions.wait_for_caption("final")
        assert final.text == "" and final.segment_id is None and final.markers == ()
        assert captions.finals() and captions.statistics().received_by_type["caption"] >= 1
    finally:
        captions.close()
        booth.close()


@pytest.mark.parametrize("date,room_scoped", [("2026-08-12", False), ("HEAD", True)])
def test_clients_recognise_the_booth_layout_and_listener_data_of_each_era(stack_factory, date, room_scoped) -> None:
    """Contract 15: d2bee53 (room id in booth ids and pages) and 6134303 (<script id="listener-data">); the reference
    portal plays either side by date, and the clients take every identifier from what the portal serves."""
    from harness.clients import html as html_reader

    portal = stack_factory(portal_env={"REFSTACK_VOXBENTO_DATE": date})
    admin = AdminClient(PortalHttp.for_url(portal.portal_url))
    admin.login(portal.admin_password)
    slug = f"era-{secrets.token_hex(3)}"
    setup = admin.setup_event("Era", slug, {"Hall": ["es"]})
    assert setup.room_scoped is room_scoped
    room = setup.rooms[0]
    ref = BoothRef(slug, room.room_id, "es", room_scoped=setup.room_scoped)
    invite = admin.create_invite(setup.event_id, room.room_id, room.booth_ids["es"], "era")
    interpreter = InterpreterClient(PortalHttp.for_url(portal.portal_url))
    interpreter.join_invite(invite)
    (link,) = interpreter.lobby()
    assert link.path == ref.page_path and link.room_scoped is room_scoped
    page = interpreter.booth_page(ref)
    assert page.booth_id == ref.booth_id and page.default_channel == ref.mediamtx_path
    assert (page.room_id is not None) is room_scoped
    with BoothSocket.for_portal(interpreter.http, page.booth_id, event_slug=slug).connect() as sock:
        assert sock.join("Era", "interpreter").booth_id == ref.booth_id
    http = PortalHttp.for_url(portal.portal_url, forwarded_for="10.1.2.3")
    listen = ListenerClient(http).open_page(slug, setup.join_code)
    assert listen.booth(room.room_id, "es").ref(slug) == ref
    served = http.session.get(f"{portal.portal_url}/listener/{slug}", timeout=10).text
    assert (html_reader.parse(served, "u").find("script", id_="listener-data") is not None) is room_scoped  # 6134303 is after d2bee53
