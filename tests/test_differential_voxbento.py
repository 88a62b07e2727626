"""Differential check: the same client flows against the reference portal and the real VoxBento read back the same.

Both targets run on loopback with our relay as their media server: the reference portal at the VoxBento date of the
commit under test (``REFSTACK_VOXBENTO_DATE``), the real VoxBento from ``../shared/voxbento`` or
``$VOXLOAD_VOXBENTO_DIR`` (skipped with one line when absent), started by ``harness.target.voxbento``. Each flow's read-backs
(id shapes, links, status codes, JSON keys, WebSocket message types) are normalised (URLs, slugs, ids, tokens replaced
by their role) and compared key by key; any difference fails showing both sides.

Flows: admin wizard and classic forms, invites, the JSON shortcut, invite -> join -> lobby -> booth page, the
booth API (state, whip-url), the booth socket (join, chat, unknown type, Go Live) and the captions socket,
the listener page (code, no code, wrong code) and its audio-delay poll, /healthz.
"""

from __future__ import annotations

import json
import re
import secrets
from typing import Any

import pytest

from conftest import TEST_PORTAL_ENV
from harness.clients import (
    AdminClient,
    AuthRejected,
    BoothApi,
    BoothErrorReply,
    BoothMismatch,
    BoothSocket,
    CaptionSocket,
    HandshakeRejected,
    InterpreterClient,
    ListenerClient,
    NotFound,
    PortalHttp,
)
from harness.clients.health import healthz
from harness.refstack.stack import Stack, StackConfig
from harness.target.voxbento import HEAD_COMMIT, VoxBentoStack, VoxBentoUnavailable, locate, unavailable_reason

# commit -> the date the reference portal plays for it (contract 15).
VERSIONS = {"0c0ddc3": "HEAD", "7cc5f3e": "2026-08-12"}
HEX64 = re.compile(r"\b[0-9a-f]{64}\b")


class Normaliser:
    """Replaces what differs between two runs by nature (addresses, random slugs, ids, tokens) with its role."""

    def __init__(self, portal_url: str, media_url: str) -> None:
        self.literal: list[tuple[str, str]] = [(portal_url, "{portal}"), (media_url, "{media}"),
                                              (portal_url.split("://", 1)[1], "{portal-host}")]
        self.ids: list[tuple[str, str]] = []

    def slug(self, value: str, role: str) -> None:
        self.literal.append((value, "{" + role + "}"))
        self.literal.sort(key=lambda kv: -len(kv[0]))  # longest first: `slug-c` before `slug`

    def id(self, value: int, role: str) -> None:
        self.ids.append((str(value), "{" + role + "}"))

    def __call__(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: self(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self(v) for v in value]
        if isinstance(value, bool) or value is None:
            return value
        if isinstance(value, int):
            return next((role for v, role in self.ids if v == str(value)), "{int}")
        text = HEX64.sub("{token}", str(value))
        for literal, role in self.literal:
            # Not inside a longer word: `diff-1a2b3c-d` must not eat the `d` of `diff-1a2b3c-de`.
            text = re.sub(re.escape(literal) + r"(?![a-z0-9])", lambda _: role, text)
        for number, role in self.ids:
            text = re.sub(rf"(?<=[/=-]){number}(?=[/-]|$)", role, text)
        return text


def read_backs(portal_url: str, media_url: str, admin_password: str, access_token: str = "") -> dict[str, Any]:
    """Every flow of the module docstring on one target; values normalised by role.

    `access_token`: the target's BOOTH_ACCESS_TOKEN (contract 3.5, 3.6); empty = open mode.
    """
    norm = Normaliser(portal_url, media_url)
    slug = f"diff-{secrets.token_hex(3)}"
    norm.slug(slug + "-c", "classic-slug")
    norm.slug(slug + "-d", "decoy-slug")
    norm.slug(slug, "slug")
    out: dict[str, Any] = {}
    http = lambda **kw: PortalHttp.for_url(portal_url, **kw)  # noqa: E731  one identity (cookie jar) per call

    health = healthz(http())
    out["healthz"] = {"ok": health.ok, "server": health.server, "mediamtx_ok": health.mediamtx_ok}

    admin = AdminClient(http())
    with pytest.raises(AuthRejected) as refused:
        admin.login("not-" + admin_password)
    out["admin login refused"] = refused.value.status
    admin.login(admin_password)
    # A decoy event with three rooms and five booths first, so event, room and booth ids never coincide.
    decoy = admin.create_event(slug + "-d", "Decoy")
    decoy_rooms = [admin.create_room(decoy, f"Decoy {i}") for i in range(3)]
    for lang in ("en", "es", "fr", "de", "it"):
        admin.create_booth(decoy, decoy_rooms[0], lang, lang.upper())
    setup = admin.setup_event("Diff Event", slug, {"Main Hall": ["es", "fr"], "Side Room": ["de"]})
    hall, side = setup.rooms
    norm.id(setup.event_id, "event")
    norm.id(hall.room_id, "hall")
    norm.id(side.room_id, "side")
    for room in setup.rooms:
        for lang, db_id in room.booth_ids.items():
            norm.id(db_id, f"booth-{lang}")
    out["wizard"] = {"room_scoped": setup.room_scoped, "booths": {r.display_name: sorted(r.booth_ids) for r in setup.rooms},
                     "join code": bool(re.fullmatch(r"[A-Z2-9]{6}", setup.join_code))}
    out["event list row"] = [norm(r.__dict__) for r in admin.events_on_page(1) if r.slug == slug]
    out["rooms page"] = norm({str(k): v for k, v in admin.room_ids(setup.event_id).items()})

    classic = admin.create_event(slug + "-c", "Classic & Co")
    classic_room = admin.create_room(classic, "Hall C")
    classic_booth = admin.create_booth(classic, classic_room, "es", "Spanish")
    out["classic ids"] = [type(v).__name__ for v in (classic, classic_room, classic_booth)] + [
        len({setup.event_id, classic}) == 2, classic_room not in (hall.room_id, side.room_id)]

    es = hall.booth_ids["es"]
    invite = admin.create_invite(setup.event_id, hall.room_id, es, "alice & co")
    coordinator_invite = admin.create_invite(setup.event_id, hall.room_id, es, "coord", role="room_coordinator")
    out["invites"] = [bool(HEX64.fullmatch(invite)), invite != coordinator_invite]

    if access_token:
        # Contract 3.5: in auth mode the booth API refuses an anonymous caller, and takes ?token=.
        with pytest.raises(AuthRejected) as anonymous:
            BoothApi(http()).create_booth(slug, "it", room_id=hall.room_id, room_name="Main Hall")
        out["anonymous booth create"] = anonymous.value.status
    api = BoothApi(http(), query_token=access_token or None)
    created = api.create_booth(slug, "it", room_id=hall.room_id, room_name="Main Hall")
    out["json shortcut keys"] = sorted(created.state.raw)
    out["json shortcut"] = norm({"booth_id": created.state.booth_id, "room_id": created.state.room_id,
                                 "mediamtx_path": created.state.mediamtx_path, "whip_url": created.whip_url,
                                 "whep_url": created.whep_url, "invite": created.interpreter_invite_url,
                                 "caption_url": created.caption_url})

    interpreter = InterpreterClient(http())
    with pytest.raises(NotFound) as unknown:
        interpreter.join_invite("0" * 64)
    out["unknown invite"] = unknown.value.status
    out["join redirect"] = norm(interpreter.join_invite(invite))
    lobby = interpreter.lobby()
    out["lobby"] = [norm(link.__dict__) for link in lobby]
    page = interpreter.booth_page(lobby[0], token="page-token")
    out["booth page attributes"] = sorted(page.attributes)
    out["booth page"] = norm({"booth_id": page.booth_id, "channel": page.default_channel, "role": page.granted_role,
                              "whep": page.whep_url, "whip": page.whip_url, "token": page.booth_token,
                              "room_id": page.room_id, "event_slug": page.event_slug})
    booth_api = BoothApi(interpreter.http, room_scoped=setup.room_scoped)
    with pytest.raises(NotFound) as not_in_memory:
        booth_api.state(slug, "fr", room_id=hall.room_id)  # contract 5.2: never creates a booth
    out["state of a booth not in memory"] = not_in_memory.value.status

    if access_token:
        # Contract 3.6: in auth mode a captions socket needs a scoped cookie or token; an anonymous one is refused.
        with pytest.raises(HandshakeRejected) as refused_socket:
            CaptionSocket.for_portal(http(), page.booth_id).connect()
        out["anonymous captions socket"] = refused_socket.value.status
    captions = CaptionSocket.for_portal(interpreter.http if access_token else http(), page.booth_id).connect()
    sock = BoothSocket.for_portal(interpreter.http, page.booth_id, event_slug=slug).connect()
    joined = sock.join("Diff", "interpreter", language="es")
    out["joined state keys"] = sorted(joined.raw)
    out["participant keys"] = sorted(joined.participants[0].raw)
    out["joined state"] = norm({"booth_id": joined.booth_id, "event_slug": joined.event_slug, "room_id": joined.room_id,
                                "channel": joined.channel_id, "active": joined.active_interpreter_id == sock.participant_id})
    browser = BoothSocket.for_portal(interpreter.http, page.booth_id, event_slug=slug).connect()
    backup = browser.join("Backup", "interpreter", language="es", channel_id=page.default_channel, room_id=page.room_id)
    out["second join, as the page's JS sends it"] = norm({"active": backup.active_interpreter_id == browser.participant_id,
                                                          "participants": [p.raw.get("channel_id") for p in backup.participants]})
    after = sock.received_count()
    browser.close()
    # Wait for the leave to reach us before sending: a chat racing the peer's close ended *our* socket on VoxBento
    # once (its fan-out catches RuntimeError/OSError, not the WebSocketDisconnect a send to a closed peer raises);
    # that race is not what this check is about.
    sock.wait_for(lambda m: m.type == "booth:state" and len(m.payload["state"]["participants"]) == 1,
                  waiting_for="state without the closed backup", after_index=after)
    message = sock.chat("hello & <b>")
    out["chat message keys"] = sorted(message)
    sock.send_message("booth:nonsense")
    error = sock.wait_for(lambda m: m.type == "booth:error", waiting_for="booth:error")
    out["unknown type"] = error.payload.get("message")
    with pytest.raises(BoothErrorReply) as refused_unlock:
        sock.set_broadcast_unlocked(True)  # an interpreter may not Go Live (contract 5.3)
    out["interpreter unlock"] = refused_unlock.value.message
    coordinator = BoothSocket.for_portal(admin.http, page.booth_id).connect()
    unlocked = coordinator.set_broadcast_unlocked(True)
    out["unlocked"] = unlocked.broadcast_unlocked
    captions.wait_for(lambda m: m.type == "booth:state", waiting_for="booth:state on the captions socket")
    whip = booth_api.whip_url(slug, "es", sock.participant_id, hall.room_id)
    out["whip-url"] = norm(whip.__dict__)
    state = booth_api.state(slug, "es", room_id=hall.room_id)
    out["state keys"] = sorted(state.raw)
    out["transcription start"] = booth_api.transcription_start(slug, hall.room_id, "es")
    sock.leave()
    out["socket types"] = {"booth": sorted({m.type for m in sock.received()}),
                           "coordinator": sorted({m.type for m in coordinator.received()}),
                           "captions": sorted({m.type for m in captions.received()})}
    for s in (sock, coordinator, captions):
        s.close()

    listener = ListenerClient(http(forwarded_for="10.9.8.7"))
    for code in (None, "AAAAAA"):
        with pytest.raises(AuthRejected) as join_form:
            listener.open_page(slug, code)
        out[f"listener page, code {code}"] = join_form.value.status
    listen = ListenerClient(http(forwarded_for="10.9.8.6")).open_page(slug, setup.join_code)
    out["listener booth keys"] = sorted({k for b in listen.booths for k in b.raw})
    out["listener room keys"] = sorted({k for r in listen.rooms for k in r})
    out["listener booths"] = sorted((norm(b.room_id), b.language_code, norm(b.channel_id), norm(b.whep_url),
                                     norm(b.ref(slug).booth_id)) for b in listen.booths)
    return out


def real_voxbento(commit: str):
    """The real VoxBento `commit` (installed once into the harness's cache), or a one-line skip. The contract's HEAD
    may come from $VOXLOAD_VOXBENTO_DIR, as the conformance suite takes it."""
    wanted = None if commit == HEAD_COMMIT else commit
    reason = unavailable_reason(wanted)
    if reason:
        pytest.skip(f"real VoxBento unavailable: {reason}")
    try:
        return locate(wanted)
    except VoxBentoUnavailable as exc:
        pytest.skip(f"real VoxBento unavailable: {exc}")


def differences(reference: dict[str, Any], real: dict[str, Any]) -> list[str]:
    lines = []
    for key in sorted(set(reference) | set(real)):
        if reference.get(key) != real.get(key):
            lines.append(f"{key}:\n    reference portal: {json.dumps(reference.get(key), sort_keys=True)}"
                         f"\n    real VoxBento:    {json.dumps(real.get(key), sort_keys=True)}")
    return lines


@pytest.fixture(scope="module")
def targets(tmp_path_factory):
    """(reference stack, real VoxBento, access token) per (commit, auth mode), each started once for the module:
    the phantom check reuses the old commit's open-mode pair instead of starting its own."""
    started: dict[tuple[str, str], tuple[Stack, VoxBentoStack, str]] = {}

    def get(commit: str, auth_mode: str) -> tuple[Stack, VoxBentoStack, str]:
        if (commit, auth_mode) not in started:
            layout = real_voxbento(commit)
            token = f"access-{secrets.token_hex(8)}" if auth_mode == "token" else ""
            access = {"BOOTH_ACCESS_TOKEN": token} if token else {}
            root = tmp_path_factory.mktemp(f"diff-{commit}-{auth_mode}")
            env = {**TEST_PORTAL_ENV, "REFSTACK_VOXBENTO_DATE": VERSIONS[commit], **access}
            reference = Stack(StackConfig.ephemeral(with_media=True, portal_env=env, data_dir=root / "reference"))
            real = VoxBentoStack(layout, root / "voxbento", settings=access)
            started[(commit, auth_mode)] = (reference, real, token)
            reference.start()
            real.start()
        return started[(commit, auth_mode)]

    try:
        yield get
    finally:
        for reference, real, _ in started.values():
            real.stop()
            reference.stop()


@pytest.mark.parametrize("auth_mode", ["open", "token"])
@pytest.mark.parametrize("commit", sorted(VERSIONS, key=lambda c: c != "0c0ddc3"))
def test_reference_portal_and_real_voxbento_read_back_the_same(commit, auth_mode, targets) -> None:
    reference, real, token = targets(commit, auth_mode)
    ours = read_backs(reference.portal_url, reference.media_http_url, reference.admin_password, token)
    theirs = read_backs(real.portal_url, real.media_url, real.admin_password, token)
    diff = differences(ours, theirs)
    assert not diff, f"{len(diff)} read-backs differ against VoxBento {commit}:\n" + "\n".join(diff)
    # The comparison covers what it claims: both sides produced every flow.
    assert len(ours) == len(theirs) >= 30


def phantom_join(portal_url: str, admin_password: str) -> list[str]:
    """Contract 15 on a target before d2bee53: a new-layout booth id names another event's booth there.

    Joined without event_slug, the target accepts it as a booth of event `{slug}-{room}` (the hazard); joined with
    it, as the clients always do, the target refuses and the client raises BoothMismatch, one line. Returns what
    each join showed.
    """
    admin = AdminClient(PortalHttp.for_url(portal_url))
    admin.login(admin_password)
    slug = f"phantom-{secrets.token_hex(3)}"
    setup = admin.setup_event("Phantom", slug, {"Hall": ["es"]})
    assert setup.room_scoped is False  # recognised from the booth row's interpreter link
    room = setup.rooms[0].room_id
    new_layout_id = f"{slug}-{room}-es"
    seen = []
    with BoothSocket.for_portal(admin.http, new_layout_id).connect() as silent:
        state = silent.join("Phantom", "interpreter")
        seen.append(f"without event_slug: joined {state.booth_id} of event {state.event_slug}")
    with BoothSocket.for_portal(admin.http, new_layout_id, event_slug=slug).connect() as checked:
        with pytest.raises(BoothMismatch) as mismatch:
            checked.join("Phantom", "interpreter")
    seen.append(str(mismatch.value).replace(portal_url.split("://")[1], "{portal-host}"))
    return [line.replace(slug, "{slug}").replace(f"{{slug}}-{room}", "{slug}-{room}") for line in seen]


def test_a_phantom_booth_on_an_old_target_fails_with_one_line(targets) -> None:
    reference, real, _ = targets("7cc5f3e", "open")
    ours = phantom_join(reference.portal_url, reference.admin_password)
    assert ours[0] == "without event_slug: joined {slug}-{room}-es of event {slug}-{room}"
    assert "\n" not in ours[1] and ours[1].startswith("booth mismatch on ws://{portal-host}/ws/booth/{slug}-{room}-es:"), ours
    theirs = phantom_join(real.portal_url, real.admin_password)
    assert ours == theirs, "\n".join(["reference portal:", *ours, "real VoxBento 7cc5f3e:", *theirs])
