"""Chromium canaries on the real VoxBento's own pages, with our relay as its MediaMTX.

The listener canary opens VoxBento's listener page, types the join code, picks the room and the language, and
the page's own listener JS (whep-listener.js) plays the booth, published by a synthetic aiortc interpreter.
What the page gets wrong is recorded: at 0c0ddc3 it throws ``ReferenceError: updateRoomDelayData is not
defined`` every 3 s. The interpreter canary opens an invite in Chromium, enters the booth, and the booth page
publishes through its own WHIP code from Chromium's fake microphone (a WAV file).

VoxBento comes from ``$VOXLOAD_VOXBENTO_DIR`` or ``../shared/voxbento`` beside the repository, started by
``harness.target.voxbento`` (installed once into its cache); without it, or without Chromium, the module skips with one line.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import pandas as pd
import pytest

from harness.browser import pagelog
from harness.browser.chromium import unavailable_reason as chromium_unavailable
from harness.results.browser_files import read_canaries
from harness.browser.fleet import CanaryFleet
from harness.browser.micwav import write_mic_wav
from harness.clients import AdminClient, BoothSocket, InterpreterClient, ListenerClient, PortalHttp
from harness.clients.booth_api import BoothApi
from harness.clients.identifiers import BoothRef
from harness.media.bridge import MediaBridge
from harness.report.browser import browser_section
from harness.target.voxbento import VoxBentoStack, VoxBentoUnavailable, locate, unavailable_reason

CHROMIUM_MISSING = chromium_unavailable()
pytestmark = pytest.mark.skipif(CHROMIUM_MISSING is not None, reason=CHROMIUM_MISSING or "")
PLAYING_SECONDS = 10
DEADLINE_S = 120.0


@pytest.fixture(scope="module")
def voxbento(tmp_path_factory):
    """The real VoxBento with our relay, through the harness's one launcher: its install is cached (set up once per
    machine), not repeated per run."""
    reason = unavailable_reason()
    if reason:
        pytest.skip(f"real VoxBento unavailable: {reason}")
    try:
        layout = locate()
    except VoxBentoUnavailable as exc:
        pytest.skip(f"real VoxBento unavailable: {exc}")
    with VoxBentoStack(layout, tmp_path_factory.mktemp("vb")) as stack:
        yield stack.portal_url, stack.admin_password, stack


def _event(url: str, password: str, languages=("es",)):
    admin = AdminClient(PortalHttp.for_url(url))
    admin.login(password)
    slug = f"canary-{secrets.token_hex(3)}"
    setup = admin.setup_event("Canary Event", slug, {"Main Hall": list(languages)})
    room = setup.rooms[0]
    return admin, setup, slug, room


def _wait_playing(tmp_path: Path, name: str, canary, seconds: int = PLAYING_SECONDS, state: str = "playing") -> list[dict]:
    deadline = time.monotonic() + DEADLINE_S
    while True:
        rows = [s for s in read_canaries(tmp_path).get(name, {}).get("seconds", []) if s["state"] == state]
        if len(rows) >= seconds:
            return rows
        assert canary.proc.poll() is None, (tmp_path / "browser" / f"canary-{name}.log").read_text()[-2000:]
        assert time.monotonic() < deadline, f"canary {name} was not {state} for {seconds} s: " + \
            (tmp_path / "browser" / f"canary-{name}.log").read_text()[-2000:]
        time.sleep(0.5)


def test_listener_canary_plays_voxbentos_own_listener_page(voxbento, tmp_path):
    url, password, relay = voxbento
    admin, setup, slug, room = _event(url, password)
    booth = BoothRef(slug, room.room_id, "es")
    interpreter = InterpreterClient(PortalHttp.for_url(url))
    interpreter.join_invite(admin.create_invite(setup.event_id, room.room_id, room.booth_ids["es"], label="synthetic"))
    opened = []
    fleet = CanaryFleet(tmp_path)
    try:
        sock = BoothSocket.for_portal(interpreter.http, booth.booth_id).connect()
        opened.append(sock)
        sock.join("Synthetic interpreter", "interpreter")
        coordinator = BoothSocket.for_portal(admin.http, booth.booth_id).connect()
        opened.append(coordinator)
        coordinator.set_broadcast_unlocked(True)
        grant = BoothApi(interpreter.http).whip_url(slug, "es", sock.participant_id, room.room_id)
        whep_url = ListenerClient(PortalHttp.for_url(url)).open_page(slug, code=setup.join_code).booth(room.room_id, "es").whep_url
        with MediaBridge(tmp_path / "media", engines=1) as bridge:
            publisher = bridge.publish(grant.whip_url, booth.booth_id)
            sock.update_state(mic_active=True, ingest_connected=True)  # what the booth JS reports after its WHIP answer
            bridge.listen(whep_url, booth.booth_id, probe=True)
            canary = fleet.start("l0", {"role": "listener", "booth_id": booth.booth_id, "listener_url": f"{url}/listener/{slug}",
                                        "join_code": setup.join_code, "room_name": "Main Hall", "language": "es"})
            fleet.add_schedule(booth.booth_id, publisher.schedule)
            playing = _wait_playing(tmp_path, "l0", canary)
            fleet.stop()
    finally:
        fleet.stop()
        for s in reversed(opened):
            s.close()
    assert canary.exit_code == 0
    data = read_canaries(tmp_path)["l0"]
    events = data["events"]
    # VoxBento's own listener JS played the booth: its WHEP POST, answered by our relay.
    assert [e["player"] for e in events if e["event"] == "player"] == ["page"]
    assert [e["status"] for e in events if e["event"] == "whep_post"][:1] == [201]
    assert sum(s["packets"] for s in playing) >= 0.8 * 50 * len(playing)
    assert sum(s["lost"] for s in data["seconds"]) == 0
    assert [x for s in playing for x in s["latencies_ms"]], "no marker heard in what the page played"
    assert any(e["event"] == "first_audio" for e in events)
    # What the page gets wrong, in the page's own words: its 3 s audio-delay refresh (contract 6.2 step 4) calls a
    # function that does not exist, catches the ReferenceError and logs it as a warning, so a room's audio-delay
    # setting never reaches listeners.
    rows = pagelog.summarise(data["page"])
    delay = [r for r in rows if "ReferenceError: updateRoomDelayData is not defined" in r["text"]]
    assert len(delay) == 1 and delay[0]["kind"] == "console_warning" and delay[0]["count"] >= 2, rows
    assert delay[0]["url"].endswith("/static/js/listener-event.js")
    every_s = (delay[0]["last_epoch_s"] - delay[0]["first_epoch_s"]) / (delay[0]["count"] - 1)
    assert 2.0 <= every_s <= 6.0, every_s  # the page's 3000 ms poll
    assert any(r["kind"] == "blocked" and r["url"] == "https://cdn.tailwindcss.com/" for r in rows)
    # The report says it in plain words: what, how often, since when, where.
    sentences = [p.sentence for p in browser_section(tmp_path, pd.DataFrame()).problems]
    said = [t for t in sentences if "updateRoomDelayData is not defined" in t]
    assert len(said) == 1 and said[0].startswith("The target's listener page logged a console warning "), sentences
    assert "about every 3." in said[0] or "about every 2." in said[0] or "about every 4." in said[0], said[0]
    assert "listener-event.js" in said[0]
    # The join code never reaches the canary's files or log.
    for path in (tmp_path / "browser").iterdir():
        assert setup.join_code not in path.read_text(), path.name


def test_interpreter_canary_publishes_through_the_booth_pages_own_whip(voxbento, tmp_path):
    url, password, relay = voxbento
    admin, setup, slug, room = _event(url, password)
    booth = BoothRef(slug, room.room_id, "es")
    invite = admin.create_invite(setup.event_id, room.room_id, room.booth_ids["es"], label="canary")
    fleet = CanaryFleet(tmp_path)
    opened = []
    try:
        canary = fleet.start("i0", {"role": "interpreter", "booth_id": booth.booth_id, "invite_url": f"{url}/join/{invite}",
                                    "room_name": "Main Hall", "language": "es", "audio_wav": str(write_mic_wav(tmp_path / "mic.wav"))})
        # The coordinator's part: go live once the canary has joined the booth.
        coordinator = BoothSocket.for_portal(admin.http, booth.booth_id).connect()
        opened.append(coordinator)
        deadline = time.monotonic() + DEADLINE_S
        while not (coordinator.latest_state and coordinator.latest_state.participants):
            assert time.monotonic() < deadline and canary.proc.poll() is None
            coordinator.set_broadcast_unlocked(True)
            time.sleep(1.0)
        publishing = _wait_playing(tmp_path, "i0", canary, seconds=5, state="publishing")
        # A synthetic probe listener of the booth hears the file's timing markers: the page published the fake mic.
        whep_url = ListenerClient(PortalHttp.for_url(url)).open_page(slug, code=setup.join_code).booth(room.room_id, "es").whep_url
        heard = []
        with MediaBridge(tmp_path / "media", engines=1, on_stats=heard.append) as bridge:
            bridge.listen(whep_url, booth.booth_id, probe=True)
            deadline = time.monotonic() + 30
            while sum(g.get("markers", 0) for r in heard for g in r["groups"] if g["role"] == "probe") < 4:
                assert time.monotonic() < deadline, heard[-3:]
                time.sleep(0.5)
        fleet.stop()
    finally:
        fleet.stop()
        for s in opened:
            s.close()
    data = read_canaries(tmp_path)["i0"]
    whip = [e for e in data["events"] if e["event"] == "whip_post"]
    assert whip and whip[0]["status"] in (200, 201), data["events"]
    assert publishing[-1].get("packets_sent_total", 0) > 100
    for path in (tmp_path / "browser").iterdir():  # the invite is a credential: never in the canary's files
        assert invite not in path.read_text(), path.name


def _state_where(sock, predicate, what: str):
    return sock.wait_for(lambda m: m.type == "booth:state" and predicate(m.payload["state"]), waiting_for=what)


def test_interpreter_canary_hands_over_and_back_through_the_booth_page(voxbento, tmp_path):
    """Handover away through the page's own control, then back: does the booth page publish again?"""
    url, password, relay = voxbento
    admin, setup, slug, room = _event(url, password)
    booth = BoothRef(slug, room.room_id, "es")
    invite = admin.create_invite(setup.event_id, room.room_id, room.booth_ids["es"], label="canary")
    backup_client = InterpreterClient(PortalHttp.for_url(url))
    backup_client.join_invite(admin.create_invite(setup.event_id, room.room_id, room.booth_ids["es"], label="backup"))
    fleet = CanaryFleet(tmp_path)
    opened = []
    try:
        canary = fleet.start("i0", {"role": "interpreter", "booth_id": booth.booth_id, "invite_url": f"{url}/join/{invite}",
                                    "room_name": "Main Hall", "language": "es", "audio_wav": str(write_mic_wav(tmp_path / "mic.wav"))})
        coordinator = BoothSocket.for_portal(admin.http, booth.booth_id).connect()
        opened.append(coordinator)
        deadline = time.monotonic() + DEADLINE_S
        while not (coordinator.latest_state and coordinator.latest_state.participants):
            assert time.monotonic() < deadline and canary.proc.poll() is None
            coordinator.set_broadcast_unlocked(True)
            time.sleep(1.0)
        _wait_playing(tmp_path, "i0", canary, seconds=3, state="publishing")
        backup = BoothSocket.for_portal(backup_client.http, booth.booth_id).connect()
        opened.append(backup)
        backup.join("Synthetic backup", "interpreter")
        time.sleep(1.0)  # the page enables its handover control once it sees a partner
        fleet.command("i0", {"op": "handover"})  # the canary offers the mic through the page
        _state_where(backup, lambda s: s["handoff_state"] == "offered", "the page's offer")
        backup.accept_handoff()
        _wait_playing(tmp_path, "i0", canary, seconds=1, state="waiting_audio")
        time.sleep(2.0)
        backup.initiate_handoff()  # and back: the backup offers, the canary takes over through the page
        time.sleep(1.0)
        fleet.command("i0", {"op": "handover"})
        _state_where(backup, lambda s: s["active_interpreter_id"] != backup.participant_id, "the canary active again")
        deadline = time.monotonic() + 20
        resumed = False
        while time.monotonic() < deadline and not resumed:
            time.sleep(1.0)
            events = read_canaries(tmp_path)["i0"]["events"]
            states = [e["new"] for e in events if e["event"] == "state"]
            resumed = states.count("publishing") >= 2
        fleet.stop()
    finally:
        fleet.stop()
        for s in opened:
            s.close()
    data = read_canaries(tmp_path)["i0"]
    events = data["events"]
    # Both handovers went through the page's own control (VoxBento labels it PASS MIC, then TAKE OVER), the page
    # stopped publishing when it lost the mic and published again, with a new WHIP session, when it took it back.
    assert [e["control"] for e in events if e["event"] == "handover"] == ["PASS MIC", "TAKE OVER"]
    states = [e["new"] for e in events if e["event"] == "state"]
    assert states[states.index("publishing"):][:3] == ["publishing", "waiting_audio", "publishing"], states
    assert [e["status"] for e in events if e["event"] == "whip_post"] == [201, 201]
    assert resumed
    lines = browser_section(tmp_path, pd.DataFrame()).status_lines
    assert any("through its own WHIP code in 2 WHIP session(s); handovers through the page: PASS MIC, TAKE OVER" in l for l in lines), lines
