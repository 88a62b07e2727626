"""One owner per VoxBento fact: ``harness/contract`` holds each; clients, rehearsal, probes and the reference
portal import it. These tests fail when a fact is written a second time (as a literal somewhere else) and
check that the clients and the reference portal use the same values (the differential test against the
real VoxBento, tests/test_differential_voxbento.py, keeps the values themselves honest).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from conftest import REPO

from harness.contract import credentials, languages, listener, roles, routes

HARNESS = REPO / "harness"
CONTRACT = HARNESS / "contract"


def _string_literals(path: Path) -> list[tuple[int, str]]:
    """Every string constant of a module, f-strings' literal parts included, docstrings excluded."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


def _modules(*, refstack: bool) -> list[Path]:
    found = []
    for path in sorted(HARNESS.rglob("*.py")):
        if CONTRACT in path.parents:
            continue
        if not refstack and (HARNESS / "refstack") in path.parents:
            continue
        found.append(path)
    return found


ROUTES = [value for value in vars(routes).values() if isinstance(value, routes.Route)]


def test_routes_are_unique_and_named_without_placeholders():
    templates = [r.template for r in ROUTES]
    assert len(templates) == len(set(templates))
    assert len(ROUTES) >= 35
    for route in ROUTES:
        assert route.template.startswith("/"), route
        if route.stats_name is None:
            assert "{" not in route.name and "}" not in route.name, route
    assert routes.ADMIN_BOOTH.path(e=1, r=2, b=3) == "/admin/events/1/rooms/2/booths/3/"
    assert routes.ADMIN_BOOTH.name == "/admin/events/[id]/rooms/[id]/booths/[id]/"
    assert routes.LISTENER_AUDIO_DELAY.name == "/listener/[slug]/rooms/[id]/audio-delay"
    assert routes.WS_BOOTH.name == "/ws/booth/[booth_id]"


def test_no_client_writes_a_voxbento_route_or_its_stats_name_again():
    # Outside harness/contract, a string equal to a route template or its stats name is a second owner.
    owned = {r.template: r for r in ROUTES if r.template.count("/") > 1} | {r.name: r for r in ROUTES if r.name.count("/") > 1}
    copies = [f"{path.relative_to(REPO)}:{line}: {text!r}"
              for path in _modules(refstack=False) for line, text in _string_literals(path) if text in owned]
    assert copies == []


# Literal spellings of the shared facts: none may appear outside harness/contract, the reference portal included.
FACT_SPELLINGS = {
    "join-code alphabet": credentials.JOIN_CODE_ALPHABET,
    "invite-token shape": "[0-9a-f]{64}",
    "slug rule": languages.SLUG_PATTERN,
    "listener code cookie": "listener_code_",
    "session cookie": credentials.SESSION_COOKIE,
    "user cookie": credentials.USER_COOKIE,
    "admin cookie": credentials.ADMIN_COOKIE,
}


@pytest.mark.parametrize("fact", sorted(FACT_SPELLINGS))
def test_a_shared_fact_is_spelled_only_in_the_contract(fact):
    spelling = FACT_SPELLINGS[fact]
    copies = [f"{path.relative_to(REPO)}:{line}" for path in _modules(refstack=True)
              for line, text in _string_literals(path) if spelling in text]
    assert copies == [], f"{fact} written outside harness/contract"


def _role_sets(path: Path) -> list[tuple[int, frozenset[str]]]:
    """Literal collections of two or more role names (sets, tuples, lists, frozenset(...) arguments)."""
    role_names = set(roles.INVITE_ROLES)
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, (ast.Set, ast.Tuple, ast.List)):
            values = [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
            if len(values) == len(node.elts) and len(values) >= 3 and set(values) <= role_names:
                found.append((node.lineno, frozenset(values)))
    return found


def test_role_sets_are_written_only_in_the_contract():
    shared = {frozenset(roles.INVITE_ROLES), roles.ELIGIBLE_ROLES}
    copies = [f"{path.relative_to(REPO)}:{line}" for path in _modules(refstack=True)
              for line, values in _role_sets(path) if values in shared]
    assert copies == []


def test_the_reference_portal_and_the_clients_share_each_value():
    from harness.clients import admin, interpreter, tokens
    from harness.refstack.portal import booth_state, models, routes_admin

    # Invite roles: what the reference accepts is what the clients may ask for.
    assert tuple(r.value for r in routes_admin.InviteRole) == roles.INVITE_ROLES
    with pytest.raises(ValueError):
        tokens.TokenMinter("k" * 32).session(1, "ev", 1, "en", role="listener")
    # Eligibility: the reference's participants go live by the rule the rehearsal's handover reads.
    for role in roles.INVITE_ROLES:
        participant = booth_state.Participant(participant_id="p", display_name="x", role=role, language="es", channel_id="c")
        assert participant.can_go_live == (role in roles.ELIGIBLE_ROLES), role
    # Tokens and join codes the reference generates are what the clients read back.
    for _ in range(50):
        token = models.generate_token()
        assert interpreter.invite_token_of(f"http://h/join/{token}") == token
        assert admin.JOIN_CODE.match(models.generate_join_code())
    # The listener's poll interval (contract 6.2): one value, 3 s.
    assert listener.AUDIO_DELAY_POLL_S == 3.0


def test_session_tokens_the_clients_mint_are_the_ones_the_reference_decodes():
    from harness.clients.tokens import TokenMinter
    from harness.refstack.portal import tokens as portal_tokens
    from harness.refstack.portal.config import Settings

    secret = "s" * 48
    settings = Settings(secret_key=secret)
    minted = TokenMinter(secret).session(7, "ev-1", 3, "es", role="support", sub="abc")
    payload = portal_tokens.decode(settings, minted)
    assert payload is not None
    assert {k: payload[k] for k in ("sub", "booth_id", "role", "event_slug", "room_id", "language_code")} == {
        "sub": "abc", "booth_id": 7, "role": "support", "event_slug": "ev-1", "room_id": 3, "language_code": "es"}


def test_client_identifier_checks_follow_the_contract_rules():
    from harness.clients.identifiers import InvalidIdentifier, check_language, check_slug
    from harness.clients.interpreter import BOOTH_PAGE_HREF
    from harness.rehearsal.provision import run_slug

    assert check_slug("a" * languages.SLUG_MAX_LEN)
    for bad in ("a" * (languages.SLUG_MAX_LEN + 1), "A-b", "a--b", "-a", "a_b"):
        with pytest.raises(InvalidIdentifier):
            check_slug(bad)
    assert check_language(languages.FLOOR) == "floor" and check_language("xx") == "xx"  # the allow-list is the server's
    with pytest.raises(InvalidIdentifier):
        check_language("eng")
    slug = run_slug("Smoke Test!", "20261203T120000Z-" + "f" * 80)
    assert languages.is_valid_slug(slug) and len(slug) <= languages.SLUG_MAX_LEN
    assert BOOTH_PAGE_HREF.match("/interpreter/ev-1/4/floor").groups() == ("ev-1", "4", "floor")
    assert BOOTH_PAGE_HREF.match("/interpreter/ev-1/es").groups() == ("ev-1", None, "es")
    assert not BOOTH_PAGE_HREF.match("/interpreter/Ev/4/es")


def test_the_listener_user_polls_at_the_contract_interval():
    # In a subprocess: importing the rehearsal users imports Locust, which monkey-patches this process.
    import subprocess
    import sys

    code = ("from harness.rehearsal.users import ListenerUser; import harness.contract.listener as c; "
            "print(ListenerUser.wait_time(None), c.AUDIO_DELAY_POLL_S)")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["3.0", "3.0"]


def test_route_placeholders_match_path_arguments():
    # Every placeholder is one the clients pass: a typo in a template fails here, not at the first request.
    allowed = {"e", "r", "b", "token", "slug", "lang", "room_id", "booth_id", "channel", "path"}
    for route in ROUTES:
        assert set(re.findall(r"\{(\w+)\}", route.template)) <= allowed, route


def test_route_regexes_read_back_what_path_builds():
    from harness.clients import admin

    assert re.fullmatch(routes.ADMIN_BOOTH.regex(e=4, r=9), routes.ADMIN_BOOTH.path(e=4, r=9, b=31))[1] == "31"
    assert not re.fullmatch(routes.ADMIN_BOOTH.regex(e=4, r=9), routes.ADMIN_BOOTH.path(e=4, r=10, b=31))
    assert re.fullmatch(routes.ADMIN_EVENT.regex(), "/admin/events/x/") is None  # DB ids are digits
    token = "ab" * 32
    assert admin.INVITE_LINK.search(f"http://h{routes.JOIN.path(token=token)}")[1] == token
    assert admin.WIZARD_EVENT_LOCATION.search("http://h/admin/events/12/setup/rooms/")[1] == "12"


def test_the_reference_portal_declares_voxbento_routes_from_the_contract():
    # FastAPI spells parameters its own way ({event_slug}); normalised, no path literal may equal a contract route
    # (or its pre-d2bee53 form), so a route changed in the contract changes the reference portal too.
    def shape(path: str) -> str:
        return re.sub(r"\{\w+(?::\w+)?\}", "{}", path)

    owned = set()
    for route in ROUTES:
        owned.add(shape(route.template))
        try:
            owned.add(shape(route.single_room().template))
        except ValueError:
            pass
    portal = HARNESS / "refstack" / "portal"
    copies = [f"{path.relative_to(REPO)}:{line}: {text!r}" for path in sorted(portal.glob("*.py"))
              for line, text in _string_literals(path) if text.startswith("/") and shape(text) in owned]
    assert copies == []


def test_single_room_routes_drop_the_room_segment():
    assert routes.API_DELETE_BOOTH.single_room().path(slug="ev", lang="es") == "/api/events/ev/booths/es"
    assert routes.INTERPRETER_BOOTH_PAGE.single_room().path(slug="ev", lang="es") == "/interpreter/ev/es"
    assert routes.API_TRANSCRIPTION_STOP.server("event_slug", "room_id", "language_code") == \
        "/api/events/{event_slug}/rooms/{room_id}/booths/{language_code}/transcription/stop"
    with pytest.raises(ValueError):
        routes.HEALTHZ.single_room()
    with pytest.raises(ValueError):
        routes.JOIN.server()
