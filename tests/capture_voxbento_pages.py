"""Capture the pages our clients read from a real VoxBento, as parser fixtures (tests/data/voxbento_pages/COMMIT/).

    PYTHONPATH=. python3 tests/capture_voxbento_pages.py VOXBENTO_DEST [OUT_DIR]

VOXBENTO_DEST is a directory made by ``../shared/voxbento/setup.sh DEST COMMIT`` (it holds ``.ready``, or pass
``--commit``). The script starts that VoxBento on a free loopback port with our relay as its media server
(``harness.target.voxbento``, the harness's one VoxBento launcher), drives the admin, interpreter and listener flows with plain ``requests`` (no harness
client, so the fixtures do not depend on the code they test), saves each page, and writes ``expected.json``
with the ids, tokens and codes read **from VoxBento's SQLite database**: the independent answer every
read-back over these fixtures must give. Pages are trimmed of what no client reads (style, svg, script
code other than JSON data, long language pickers) to keep the fixtures small.
"""

from __future__ import annotations

import argparse
import json
import re
import sqlite3
import tempfile
from pathlib import Path

import requests
import websocket

from harness.target.voxbento import Layout, VoxBentoError, VoxBentoStack, VoxBentoUnavailable

REPO = Path(__file__).resolve().parents[1]
OUT_ROOT = REPO / "tests" / "data" / "voxbento_pages"
SLUG = "capture-event"
ROOMS = {"Main Hall": ("es", "fr"), "Side Room": ("de",)}
API_LANGUAGE = "it"  # created through the JSON shortcut (contract 4.2) in the first room
INVITE_LABELS = ("alice", "bob & co")  # an entity in a label, as real admins type them


# --- trimming: what clients never read goes; the markup around what they read stays as served ---
_DROP_BLOCKS = re.compile(r"(<(style|svg)\b[^>]*>).*?(</\2\s*>)", re.S | re.I)
_SCRIPT = re.compile(r"(<script\b[^>]*>)(.*?)(</script\s*>)", re.S | re.I)
_OPTION_RUN = re.compile(r"((?:\s*<option\b[^>]*>[^<]*</option>){12,})", re.S | re.I)
_OPTION = re.compile(r"\s*<option\b[^>]*>[^<]*</option>", re.S | re.I)


def _trim_script(match: re.Match) -> str:
    start, body, end = match.groups()
    # JSON data blocks and inline data arrays are what the listener client reads; other code is dropped.
    if "application/json" in start or "boothsData" in body:
        keep = body if "application/json" in start else _inline_data_lines(body)
        return start + keep + end
    return start + end


def _inline_data_lines(body: str) -> str:
    return "\n" + "\n".join(line for line in body.splitlines() if re.search(r"\bvar\s+\w+Data\s*=", line)) + "\n"


def trim(html: str) -> str:
    html = _DROP_BLOCKS.sub(lambda m: m.group(1) + m.group(3), html)
    html = _SCRIPT.sub(_trim_script, html)
    # Language pickers list ~180 options from pycountry (contract 4.5); three are enough to keep the shape.
    html = _OPTION_RUN.sub(lambda m: "".join(_OPTION.findall(m.group(1))[:3]), html)
    return re.sub(r"\n\s*\n+", "\n", html)


class Capture:
    def __init__(self, layout: Layout, out: Path, commit: str) -> None:
        self.out, self.commit = out, commit
        self.work = Path(tempfile.mkdtemp(prefix="vbcapture-"))
        # The one launcher (harness.target.voxbento): VoxBento on a free loopback port, our relay as its media server.
        self.stack = VoxBentoStack(layout, self.work)
        self.password = self.stack.admin_password
        self.db = self.stack.db_path
        self.port = self.stack.portal_port
        self.base = self.stack.portal_url
        self.pages: dict[str, dict] = {}  # fixture file -> {path (no query secrets), status}

    def start(self) -> None:
        try:
            self.stack.start()
        except VoxBentoError as exc:
            raise SystemExit(str(exc)) from None

    def stop(self) -> None:
        self.stack.stop()

    def save(self, name: str, response: requests.Response, path: str | None = None) -> str:
        text = response.text
        if name.endswith(".html"):
            text = trim(text)
        (self.out / name).write_text(text)
        self.pages[name] = {"path": path or response.request.path_url.split("?")[0], "status": response.status_code}
        return response.text

    def run(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        admin = requests.Session()
        get = lambda s, p, **kw: s.get(self.base + p, allow_redirects=False, timeout=15, **kw)  # noqa: E731
        post = lambda s, p, **kw: s.post(self.base + p, allow_redirects=False, timeout=15, **kw)  # noqa: E731
        html_accept = {"Accept": "text/html"}

        self.save("healthz.json", get(admin, "/healthz"))
        self.save("admin_login.html", get(admin, "/admin/login"))
        assert post(admin, "/admin/login", data={"password": self.password}).status_code == 303
        # A decoy event first (classic forms), so event, room and booth ids differ from each other and from 1.
        post(admin, "/admin/events/", data={"slug": "decoy", "display_name": "Decoy"})
        decoy = self.query("SELECT id FROM events WHERE slug = 'decoy'")[0][0]
        post(admin, f"/admin/events/{decoy}/rooms/", data={"display_name": "Decoy Room"})
        decoy_room = self.query("SELECT id FROM rooms WHERE event_id = ?", decoy)[0][0]
        for lang in ("en", "es"):
            post(admin, f"/admin/events/{decoy}/rooms/{decoy_room}/booths/", data={"language_code": lang, "language_name": lang.upper()})
        self.save("admin_dashboard.html", get(admin, "/admin/"))
        created = post(admin, "/admin/setup", data={"display_name": "Capture Event", "slug": SLUG})
        event_id = int(re.search(r"/admin/events/(\d+)/setup/rooms", created.headers["Location"]).group(1))
        e = f"/admin/events/{event_id}"
        for room in ROOMS:
            assert post(admin, f"{e}/setup/rooms", data={"display_name": room}).status_code == 303
        self.save("admin_setup_rooms.html", get(admin, f"{e}/setup/rooms"))
        rooms = self.query("SELECT id, display_name FROM rooms WHERE event_id = ? ORDER BY id", event_id)
        room_ids = {name: rid for rid, name in rooms}
        self.save("admin_setup_booths.html", get(admin, f"{e}/setup/booths"))
        for room, languages in ROOMS.items():
            for lang in languages:
                post(admin, f"{e}/setup/booths", data={"room_id": room_ids[room], "language_code": lang, "language_name": ""})
        first_room = room_ids["Main Hall"]
        self.save("admin_setup_booths_room.html", get(admin, f"{e}/setup/booths", params={"room_id": first_room}))
        self.save("admin_setup_invite.html", get(admin, f"{e}/setup/invite"))
        self.save("admin_events.html", get(admin, "/admin/events/", params={"page": 1}))
        self.save("admin_event_detail.html", get(admin, f"{e}/"))
        self.save("admin_rooms.html", get(admin, f"{e}/rooms/"))
        self.save("admin_room_detail.html", get(admin, f"{e}/rooms/{first_room}/"))
        self.save("admin_booths.html", get(admin, f"{e}/rooms/{first_room}/booths/"))
        booth_es = self.query("SELECT id FROM booths WHERE room_id = ? AND language_code = 'es'", first_room)[0][0]
        b = f"{e}/rooms/{first_room}/booths/{booth_es}"
        for label, role in zip(INVITE_LABELS, ("interpreter", "room_coordinator")):
            assert post(admin, f"{b}/tokens/", data={"role": role, "label": label, "expires_hours": ""}).status_code == 303
        self.save("admin_booth_detail.html", get(admin, f"{b}/"))
        self.save("admin_forbidden.html", get(requests.Session(), "/admin/", headers=html_accept))

        # Contract 4.2: the JSON shortcut, then the booth list the server keeps.
        created_booth = post(requests.Session(), f"/api/events/{SLUG}/booths",
                             json={"language_code": API_LANGUAGE, "room_id": first_room, "room_name": "Main Hall"})
        assert created_booth.status_code == 201, created_booth.text
        self.save("api_create_booth.json", created_booth)
        self.save("api_booth_list.json", get(requests.Session(), f"/api/events/{SLUG}/booths"))

        # Interpreter: invite -> lobby -> booth page (URL taken from the lobby, whichever layout the version has).
        token = self.query("SELECT token FROM invite_tokens WHERE label = ?", INVITE_LABELS[0])[0][0]
        interp = requests.Session()
        joined = get(interp, f"/join/{token}")
        assert joined.status_code == 303 and "session_token" in interp.cookies, joined.status_code
        lobby = self.save("interpreter_lobby.html", get(interp, "/interpreter"))
        booth_path = re.search(r"""href=["'](/interpreter/[^"'?]+)["']""", lobby).group(1)
        self.save("interpreter_booth.html", get(interp, booth_path), booth_path)

        # Booth socket: join (as the page's JS does), then the whip-url reply for that participant.
        page = (self.out / "interpreter_booth.html").read_text()
        booth_id = re.search(r"""data-booth-id=['"]([^'"]+)""", page).group(1)
        cookie = "; ".join(f"{k}={v}" for k, v in interp.cookies.items())
        ws = websocket.create_connection(f"ws://127.0.0.1:{self.port}/ws/booth/{booth_id}", cookie=cookie, timeout=10)
        ws.send(json.dumps({"type": "booth:join", "display_name": "Capture", "role": "interpreter", "event_slug": SLUG}))
        messages = []
        while not any(m.get("type") == "booth:joined" for m in messages):
            messages.append(json.loads(ws.recv()))
        (self.out / "ws_booth_join.json").write_text(json.dumps(messages, indent=1))
        participant = next(m for m in messages if m["type"] == "booth:joined")["participant_id"]
        self.save("api_whip_url.json", get(interp, f"/api/events/{SLUG}/booths/es/whip-url",
                                            params={"participant_id": participant, "room_id": first_room}))
        self.save("api_booth_state.json", get(interp, f"/api/events/{SLUG}/booths/es/state", params={"room_id": first_room}))
        ws.close()

        # Listener: the join form (no code, wrong code), then the page with the code.
        code = self.query("SELECT listener_join_code FROM events WHERE id = ?", event_id)[0][0]
        listener = requests.Session()
        self.save("listener_join.html", get(listener, f"/listener/{SLUG}"))
        self.save("listener_join_wrong_code.html", get(listener, f"/listener/{SLUG}", params={"code": "AAAAAA"}))
        self.save("listener_page.html", get(listener, f"/listener/{SLUG}", params={"code": code}))
        self.save("listener_audio_delay.json", get(listener, f"/listener/{SLUG}/rooms/{first_room}/audio-delay"))
        self.write_expected(event_id, booth_id)

    def query(self, sql: str, *args: object) -> list[tuple]:
        with sqlite3.connect(self.db) as conn:
            return conn.execute(sql, args).fetchall()

    def write_expected(self, event_id: int, booth_id: str) -> None:
        (slug, name, code), = self.query("SELECT slug, display_name, listener_join_code FROM events WHERE id = ?", event_id)
        rooms = self.query("SELECT id, display_name FROM rooms WHERE event_id = ? ORDER BY id", event_id)
        booths = self.query("SELECT id, room_id, language_code FROM booths WHERE event_id = ? ORDER BY id", event_id)
        invites = self.query("SELECT t.token, t.label, t.role, t.booth_id, t.used_at IS NOT NULL FROM invite_tokens t "
                             "JOIN booths b ON b.id = t.booth_id WHERE b.event_id = ? ORDER BY t.created_at", event_id)
        expected = {
            "commit": self.commit,
            "event": {"id": event_id, "slug": slug, "display_name": name, "join_code": code},
            "rooms": [{"id": rid, "display_name": n} for rid, n in rooms],
            "booths": [{"id": bid, "room_id": rid, "language_code": lang} for bid, rid, lang in booths],
            "invites": [{"token": t, "label": lab, "role": role, "booth_id": bid, "used": bool(used)}
                        for t, lab, role, bid, used in invites],
            "joined_booth_id": booth_id,
            "pages": self.pages,
        }
        (self.out / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dest", type=Path, help="a VoxBento DEST made by ../shared/voxbento/setup.sh (or a checkout "
                                                  "with its venv)")
    parser.add_argument("out", type=Path, nargs="?", help="output directory (default tests/data/voxbento_pages/COMMIT)")
    parser.add_argument("--commit", help="commit name of DEST (default: DEST/.ready)")
    args = parser.parse_args()
    try:
        layout = Layout.find(args.dest)
    except VoxBentoUnavailable as exc:
        parser.error(str(exc))
    commit = args.commit or layout.commit
    if not commit:
        parser.error(f"{args.dest}: no .ready file; pass --commit")
    capture = Capture(layout, (args.out or OUT_ROOT / commit).resolve(), commit)
    try:
        capture.start()
        capture.run()
    finally:
        capture.stop()
    print(capture.out)


if __name__ == "__main__":
    main()
