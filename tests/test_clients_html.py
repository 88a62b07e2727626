"""Every HTML read-back of the clients (contract Appendix B) over pages captured from the real VoxBento.

The fixtures under tests/data/voxbento_pages/COMMIT/ were served by VoxBento at HEAD (0c0ddc3) and at a deployment
ten days older (7cc5f3e), captured by tests/capture_voxbento_pages.py; each directory's expected.json holds the
ids, tokens and codes read from that VoxBento's own database, so every read-back here is checked against the
server's truth, not against our own rendering. Hostile variants (quote style, attribute order, entities, extra
classes and attributes, missing pieces) are derived from the real pages.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness.clients import admin, html, interpreter, listener
from harness.clients.booth_api import BoothApi
from harness.clients.booth_state import BoothState
from harness.clients.errors import MalformedResponse, ReadBackError
from harness.clients.health import parse_health
from harness.clients.identifiers import BoothRef

PAGES = Path(__file__).parent / "data" / "voxbento_pages"
HEAD, OLD = "0c0ddc3", "7cc5f3e"
# Contract 15: before d2bee53 (2026-08-14) booth ids, paths and booth pages have no room id.
ROOM_SCOPED = {HEAD: True, OLD: False}


class Capture:
    def __init__(self, commit: str) -> None:
        self.commit = commit
        self.dir = PAGES / commit
        self.expected = json.loads((self.dir / "expected.json").read_text())
        self.event = self.expected["event"]
        self.first_room = self.expected["rooms"][0]["id"]

    def text(self, name: str) -> str:
        return (self.dir / name).read_text()

    def url(self, name: str) -> str:
        return "http://voxbento.test" + self.expected["pages"][name]["path"]

    def doc(self, name: str) -> html.Document:
        return html.parse(self.text(name), self.url(name))

    def booths_in(self, room_id: int) -> dict[str, int]:
        return {b["language_code"]: b["id"] for b in self.expected["booths"] if b["room_id"] == room_id}


@pytest.fixture(params=[HEAD, OLD])
def cap(request) -> Capture:
    return Capture(request.param)


def test_fixtures_are_real_captures_of_both_versions() -> None:
    for commit in (HEAD, OLD):
        expected = Capture(commit).expected
        assert expected["commit"] == commit and all(p["status"] in (200, 201, 403) for p in expected["pages"].values())
    # The layouts differ as contract 15 says: the joined booth id carries the room id only at HEAD.
    assert Capture(HEAD).expected["joined_booth_id"].endswith(f"-{Capture(HEAD).first_room}-es")
    assert Capture(OLD).expected["joined_booth_id"] == "capture-event-es"


def test_event_list_row(cap: Capture) -> None:
    rows = admin.event_rows(cap.doc("admin_events.html"))
    assert admin.EventRow(cap.event["id"], cap.event["display_name"], cap.event["slug"]) in rows
    assert len(rows) == 2  # the decoy event and ours, nothing from the nav or header links


def test_room_links(cap: Capture) -> None:
    rooms = admin.room_links(cap.doc("admin_rooms.html"), cap.event["id"])
    # The page was captured before the JSON shortcut ran (at 7cc5f3e it creates a third room, contract 4.2).
    assert rooms == {r["id"]: r["display_name"] for r in cap.expected["rooms"][:2]}


def test_booth_rows_and_the_layout_they_show(cap: Capture) -> None:
    doc = cap.doc("admin_booths.html")
    for lang, db_id in cap.booths_in(cap.first_room).items():
        if lang == "it":
            continue  # created by the JSON shortcut after this page was captured
        (row,) = admin.booth_rows(doc, cap.event["id"], cap.first_room, lang)
        assert row.booth_db_id == db_id
        match = admin.INTERPRETER_HREF.match(row.interpreter_path)
        assert (match.group(2) is not None) is ROOM_SCOPED[cap.commit]
    assert admin.booth_rows(doc, cap.event["id"], cap.first_room, "de") == []  # de is in the other room


def test_invite_tokens_by_label_including_entities(cap: Capture) -> None:
    doc = cap.doc("admin_booth_detail.html")
    for invite in cap.expected["invites"]:
        if invite["label"] in ("alice", "bob & co"):
            assert admin.invite_tokens(doc, invite["label"]) == {invite["token"]}
    assert admin.invite_tokens(doc, "nobody") == set()


def test_join_code_on_both_pages(cap: Capture) -> None:
    for name in ("admin_setup_invite.html", "admin_event_detail.html"):
        assert admin.join_code(cap.doc(name)) == cap.event["join_code"]
    with pytest.raises(ReadBackError) as missing:
        admin.join_code(cap.doc("admin_rooms.html"))
    assert cap.url("admin_rooms.html") in str(missing.value) and "join-code" in str(missing.value)


def test_lobby_links_carry_the_layout(cap: Capture) -> None:
    (link,) = interpreter.lobby_booths(cap.text("interpreter_lobby.html"), cap.url("interpreter_lobby.html"))
    assert (link.event_slug, link.language_code) == (cap.event["slug"], "es")
    assert link.room_id == (cap.first_room if ROOM_SCOPED[cap.commit] else None)
    assert link.path == cap.expected["pages"]["interpreter_booth.html"]["path"]


def test_booth_page_single_quoted_attributes(cap: Capture) -> None:
    page = interpreter.booth_page_data(cap.text("interpreter_booth.html"), cap.url("interpreter_booth.html"))
    ref = BoothRef(cap.event["slug"], cap.first_room, "es", room_scoped=ROOM_SCOPED[cap.commit])
    assert page.booth_id == cap.expected["joined_booth_id"] == ref.booth_id
    assert page.default_channel == ref.mediamtx_path and page.granted_role == "interpreter"
    assert page.whep_url.endswith(f"/{ref.mediamtx_path}/whep")
    assert page.whip_url.endswith("/" + ref.mediamtx_path.replace("/", "%2F") + "/whip")  # contract 5.5
    assert page.room_id == (cap.first_room if ROOM_SCOPED[cap.commit] else None)
    assert ref.with_layout_of(page.booth_id) == ref


def test_listener_page_data_in_either_shape(cap: Capture) -> None:
    page = listener.parse_listener_data(cap.text("listener_page.html"), cap.url("listener_page.html"), cap.event["slug"])
    assert page is not None and page.event_slug == cap.event["slug"]
    assert {(b.id, b.room_id, b.language_code) for b in page.booths} == {
        (b["id"], b["room_id"], b["language_code"]) for b in cap.expected["booths"]}
    es = page.booth(cap.first_room, "es")
    assert es.ref(cap.event["slug"]).booth_id == cap.expected["joined_booth_id"]
    for name in ("listener_join.html", "listener_join_wrong_code.html"):
        assert listener.parse_listener_data(cap.text(name), cap.url(name), cap.event["slug"]) is None


def test_old_listener_page_has_only_the_inline_array() -> None:
    # Contract 15 (6134303): the old page has no <script id="listener-data">; it used to be misread as the join form.
    old = Capture(OLD)
    assert html.parse(old.text("listener_page.html"), "u").find("script", id_="listener-data") is None
    assert html.parse(Capture(HEAD).text("listener_page.html"), "u").find("script", id_="listener-data") is not None


def test_json_replies_of_both_versions(cap: Capture) -> None:
    health = parse_health(json.loads(cap.text("healthz.json")), "http://voxbento.test/healthz")
    assert health.ok and health.server == "fastapi"
    created = json.loads(cap.text("api_create_booth.json"))
    state = BoothState.from_json(created, "u")
    assert state.language_code == "it" and state.event_slug == cap.event["slug"]
    assert BoothRef(cap.event["slug"], state.room_id, "it").with_layout_of(state.booth_id).room_scoped is ROOM_SCOPED[cap.commit]
    whip = json.loads(cap.text("api_whip_url.json"))
    assert whip["booth_id"] == cap.expected["joined_booth_id"]
    joins = json.loads(cap.text("ws_booth_join.json"))
    assert {m["type"] for m in joins} <= {"booth:joined", "booth:state"} and joins[-1]["type"] == "booth:joined"
    assert BoothApi is not None


def test_health_refuses_other_bodies() -> None:
    for body in ({"status": "ok"}, {"ok": True, "server": "flask", "mediamtx_ok": True}, {"ok": True, "server": "fastapi"}, []):
        with pytest.raises(MalformedResponse) as err:
            parse_health(body, "http://h/healthz")
        assert "http://h/healthz" in str(err.value)


# --- hostile variants of the real booth page ---
def _booth_page(commit: str = HEAD) -> str:
    return Capture(commit).text("interpreter_booth.html")


def _double_quoted(text: str) -> str:
    return re.sub(r"(data-[a-z-]+)='([^']*)'", r'\1="\2"', text)


def _unquoted(text: str) -> str:
    return re.sub(r"(data-[a-z-]+)='([^'\s>]+)'", r"\1=\2", text)


def _reordered_with_extras(text: str) -> str:
    div = re.search(r"<div\s+id='interpreter-portal'.*?>", text, re.S).group(0)
    attrs = re.findall(r"[a-z-]+='[^']*'", div)
    new = "<div data-extra='1' " + " ".join(reversed(attrs)) + " class='booth-layout booth-layout--dark' hidden>"
    return text.replace(div, new)


def _entities(text: str) -> str:
    return text.replace("data-whep-url='http", "data-whep-url='&#104;ttp").replace("/whep'", "/whep?a=1&amp;b=2'", 1)


def _upper_case_names(text: str) -> str:
    return re.sub(r"data-([a-z-]+)=", lambda m: "DATA-" + m.group(1).upper() + "=", text)


@pytest.mark.parametrize("variant", [_double_quoted, _unquoted, _reordered_with_extras, _entities, _upper_case_names])
def test_booth_page_variants_read_the_same(variant) -> None:
    base = interpreter.booth_page_data(_booth_page(), "http://h/p")
    changed = interpreter.booth_page_data(variant(_booth_page()), "http://h/p")
    assert (changed.booth_id, changed.default_channel, changed.granted_role) == (base.booth_id, base.default_channel, base.granted_role)
    if variant is _entities:
        assert changed.whep_url == base.whep_url + "?a=1&b=2"
    else:
        assert changed.whep_url == base.whep_url


def test_booth_page_without_attributes_names_url_and_what_is_missing() -> None:
    text = _booth_page().replace("data-booth-id=", "data-x-booth=").replace("data-whep-url=", "data-x-whep=")
    with pytest.raises(ReadBackError) as err:
        interpreter.booth_page_data(text, "http://h/interpreter/e/1/es?token=SECRET")
    message = str(err.value)
    assert "http://h/interpreter/e/1/es" in message and "SECRET" not in message
    assert "data-booth-id" in message and "data-whep-url" in message and "data-granted-role" not in message


def test_admin_rows_with_single_quotes_and_extra_attributes() -> None:
    cap = Capture(HEAD)
    hostile = cap.text("admin_booths.html").replace('href="', "data-x=\"y\" href='").replace('/" class="btn', "/' class=\"btn")
    hostile = re.sub(r"href='([^\"']*)\"", r"href='\1'", hostile)
    doc = html.parse(hostile, "http://h/b")
    (row,) = admin.booth_rows(doc, cap.event["id"], cap.first_room, "es")
    assert row.booth_db_id == cap.booths_in(cap.first_room)["es"]
    events = cap.text("admin_events.html").replace("<td><code>", "<td ><code class='slug mono'>")
    assert admin.EventRow(cap.event["id"], cap.event["display_name"], cap.event["slug"]) in admin.event_rows(html.parse(events, "u"))
    code = cap.text("admin_setup_invite.html").replace('class="join-code"', "class='big join-code' title=\"code\"")
    assert admin.join_code(html.parse(code, "u")) == cap.event["join_code"]


def test_parser_tree_rules() -> None:
    doc = html.parse("<table><tr><td>a<td><code>es</code><tr><td>b</table><p>x<p>y<br><img src=x>"
                     "<svg><path d='M0'/><rect/></svg><span class=k>z</span>", "u")
    rows = doc.find_all("tr")
    assert [r.text() for r in rows] == ["aes", "b"]  # implied </td> and </tr>
    assert [p.text() for p in doc.find_all("p")] == ["x", "yz"]  # an open <p> holds what follows, as in browsers
    assert doc.find("span", class_="k").text() == "z" and doc.find("span").parent.tag == "p"
    assert [e.tag for e in doc.find("svg").iter()] == ["path", "rect"]  # `/>` closes inside svg
    assert doc.find("script") is None
    with pytest.raises(ReadBackError) as err:
        doc.one("code", class_="nope")
    assert str(err.value) == 'read-back failed on u: not found: <code class="nope">'


def test_links_in_comments_scripts_and_attributes_are_not_links() -> None:
    # A lobby whose only booth link is real; look-alikes in a comment, a script string and a title attribute are not.
    page = ("<!-- <a href='/interpreter/ghost/1/es'>old</a> -->"
            "<script>var t = '<a href=\"/interpreter/ghost/2/fr\">';</script>"
            "<span title='<a href=/interpreter/ghost/3/de>'></span>"
            "<a class='btn enter-btn' data-x=1 href=/interpreter/real-event/7/it>Enter Booth</a>")
    assert [(b.event_slug, b.room_id, b.language_code) for b in interpreter.lobby_booths(page, "u")] == [("real-event", 7, "it")]
    with pytest.raises(ReadBackError) as none:
        interpreter.lobby_booths(page.split("<a class")[0], "http://h/interpreter")
    assert str(none.value).startswith("read-back failed on http://h/interpreter: not found: a link /interpreter/")


def test_first_attribute_wins_and_bare_attributes_are_empty() -> None:
    el = html.parse("<div data-booth-id='a' data-booth-id='b' hidden data-granted-role></div>", "u").find("div")
    assert el.data() == {"booth-id": "a", "granted-role": ""} and el.get("hidden") == ""
