"""Foundation acceptance: the scripted sequences of contract Appendix A, using ONLY harness.clients.

Runs against the reference portal in open mode (BOOTH_ACCESS_TOKEN empty) and auth mode (token set).
Every assertion is a contract statement; if the portal deviates, this test fails (the clients are not bent
to the reference implementation).
"""

from __future__ import annotations

import dataclasses
import secrets
from urllib.parse import unquote

import pytest

from harness.clients import (
    AdminClient,
    AuthRejected,
    BoothApi,
    BoothRef,
    BoothSocket,
    CaptionSocket,
    HandshakeRejected,
    InterpreterClient,
    ListenerClient,
    PortalHttp,
    SocketState,
    TokenMinter,
)
from harness.clients.tokens import SECRET_ENV_VAR


@dataclasses.dataclass
class Target:
    url: str
    admin_password: str
    secret_key: str
    access_token: str  # BOOTH_ACCESS_TOKEN; "" = open mode

    @property
    def auth_mode(self) -> bool:
        return bool(self.access_token)


@pytest.fixture(params=["open", "auth"])
def target(request, stack_factory) -> Target:
    access_token = secrets.token_hex(16) if request.param == "auth" else ""
    stack = stack_factory(portal_env={"BOOTH_ACCESS_TOKEN": access_token})
    return Target(stack.portal_url, stack.admin_password, stack.secret_key, access_token)


def test_admin_setup_interpreters_go_live_listener_and_captions(target: Target) -> None:
    opened: list = []
    try:
        _run_acceptance(target, opened)
    finally:
        for sock in reversed(opened):
            sock.close()


def _run_acceptance(target: Target, opened: list) -> None:
    slug = f"accept-{secrets.token_hex(3)}"

    # --- A1 setup (admin): login, wizard event, 2 rooms, booths, invite tokens, join code ---
    admin = AdminClient(PortalHttp.for_url(target.url))
    admin.login(target.admin_password)
    assert admin.admin_cookie  # contract 3.2: admin_token cookie
    setup = admin.setup_event("Acceptance Event", slug, {"Main Hall": ["es", "fr"], "Side Room": ["de"]})
    assert len(setup.rooms) == 2 and len({r.room_id for r in setup.rooms}) == 2
    main = setup.rooms[0]
    assert set(main.booth_ids) == {"es", "fr"} and set(setup.rooms[1].booth_ids) == {"de"}
    assert len(setup.join_code) == 6  # contract 4.1: 6 chars of the join-code alphabet
    booth = BoothRef(slug, main.room_id, "es")
    token_a = admin.create_invite(setup.event_id, main.room_id, main.booth_ids["es"], label="interpreter A")
    token_b = admin.create_invite(setup.event_id, main.room_id, main.booth_ids["es"], label="interpreter B")
    assert token_a != token_b

    # --- A2 interpreter: invite join -> session_token; lobby lists the booth; booth page data ---
    interp_a = InterpreterClient(PortalHttp.for_url(target.url))
    assert interp_a.join_invite(token_a) == "/interpreter"  # contract 3.4: 303 to the landing page
    lobby = [(b.event_slug, b.room_id, b.language_code) for b in interp_a.lobby()]
    assert (slug, main.room_id, "es") in lobby
    page = interp_a.booth_page(booth)
    assert page.booth_id == booth.booth_id  # contract 2: `{slug}-{room_id}-{lang}`
    assert page.default_channel == booth.mediamtx_path  # contract 5.1: = MediaMTX path
    assert page.granted_role == "interpreter"
    interp_b = InterpreterClient(PortalHttp.for_url(target.url))
    interp_b.join_invite(token_b)
    with pytest.raises(AuthRejected) as used:
        InterpreterClient(PortalHttp.for_url(target.url)).join_invite(token_a)
    assert used.value.status == 403  # contract 3.4: single use

    sock_a = BoothSocket.for_portal(interp_a.http, booth.booth_id).connect()
    opened.append(sock_a)
    joined = sock_a.join("Interpreter A", "interpreter")
    assert sock_a.participant_id and joined.active_interpreter_id == sock_a.participant_id  # contract 5.5: first eligible is active
    sock_b = BoothSocket.for_portal(interp_b.http, booth.booth_id).connect()
    opened.append(sock_b)
    joined_b = sock_b.join("Interpreter B", "interpreter")
    assert joined_b.active_interpreter_id == sock_a.participant_id  # B is the backup
    assert {p.participant_id for p in joined_b.participants} == {sock_a.participant_id, sock_b.participant_id}

    # --- A3 coordinator: admin cookie socket, go live ---
    coordinator = BoothSocket.for_portal(admin.http, booth.booth_id).connect()
    opened.append(coordinator)
    live = coordinator.set_broadcast_unlocked(True)
    assert live.broadcast_unlocked is True
    seen = sock_a.wait_for(
        lambda m: m.type == "booth:state" and m.payload["state"]["broadcast_unlocked"] is True, waiting_for="unlocked state"
    )
    assert seen.payload["state"]["active_interpreter_id"] == sock_a.participant_id
    assert sock_a.latest_state is not None and sock_a.latest_state.broadcast_unlocked

    # --- whip-url: granted to the active interpreter, 403 for the backup (contract 5.5) ---
    api_a = BoothApi(interp_a.http)
    grant = api_a.whip_url(slug, "es", sock_a.participant_id, main.room_id)
    assert grant.booth_id == booth.booth_id
    assert grant.whip_url.endswith("/whip") and booth.mediamtx_path in unquote(grant.whip_url)
    with pytest.raises(AuthRejected) as backup:
        BoothApi(interp_b.http).whip_url(slug, "es", sock_b.participant_id, main.room_id)
    assert backup.value.status == 403 and "active interpreter" in backup.value.detail

    if target.auth_mode:
        # Contract 3.5: without credentials the booth API is closed; the access token buys a bearer that opens it.
        anonymous = BoothApi(PortalHttp.for_url(target.url))
        with pytest.raises(AuthRejected) as closed:
            anonymous.state(slug, "es", room_id=main.room_id)
        assert closed.value.status == 403
        with pytest.raises(AuthRejected) as wrong:
            anonymous.fetch_bearer("not-the-token")
        assert wrong.value.status == 401
        anonymous.fetch_bearer(target.access_token)
        assert anonymous.state(slug, "es", room_id=main.room_id).active_interpreter_id == sock_a.participant_id

    # --- A4 listener: page with the code, audio-delay poll, captions socket ---
    listener = ListenerClient(PortalHttp.for_url(target.url, forwarded_for="198.51.100.7"))
    listener_page = listener.open_page(slug, code=setup.join_code)
    assert listener_page.event_slug == slug
    entry = listener_page.booth(main.room_id, "es")
    assert entry is not None and entry.ref(slug) == booth
    assert {(b.room_id, b.language_code) for b in listener_page.booths} >= {(main.room_id, "es"), (main.room_id, "fr")}
    assert listener.code_cookie(slug) == setup.join_code  # contract 3.1: the cookie holds the plain code
    assert listener.audio_delay_ms(slug, main.room_id) >= 0  # the cookie alone grants the poll (contract 6.2)

    listener_token = None
    if target.auth_mode:
        # Contract 6.3 / 3.6: in auth mode the captions socket needs a listener JWT (or a matching cookie).
        with pytest.raises(HandshakeRejected) as rejected:
            CaptionSocket.for_portal(listener.http, booth.booth_id).connect()
        assert rejected.value.status == 403
        listener_token = TokenMinter.from_env({SECRET_ENV_VAR: target.secret_key}).listener(slug)
    captions = CaptionSocket.for_portal(listener.http, booth.booth_id, token=listener_token).connect()
    opened.append(captions)
    assert captions.state is SocketState.OPEN
    # Contract 6.3: caption sockets get `booth:state` on broadcast lock/unlock.
    coordinator.set_broadcast_unlocked(True)
    state_msg = captions.wait_for(lambda m: m.type == "booth:state", waiting_for="booth:state on captions")
    assert state_msg.payload["state"]["booth_id"] == booth.booth_id
