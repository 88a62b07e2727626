"""The clients over Locust's own HttpSession (the way Locust users will drive them).

Importing locust monkey-patches the whole process with gevent, so the Locust side runs in a subprocess
(conventions item 3); it drives the real portal and prints what Locust's request event received.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent(
    """
    import json, sys
    from locust.clients import HttpSession
    from locust.env import Environment
    from harness.clients import (AdminClient, AuthRejected, BoothApi, BoothSocket, InterpreterClient, NotFound, PortalHttp,
                                 TargetUnreachable)

    base_url, password, closed_url = sys.argv[1:4]
    env = Environment()
    seen = []
    env.events.request.add_listener(lambda **kw: seen.append(
        {"name": kw["name"], "type": kw["request_type"], "error": type(kw["exception"]).__name__ if kw["exception"] else None}))
    admin = AdminClient(PortalHttp(HttpSession(base_url, env.events.request, user=None)))
    outcomes = []
    try:
        admin.login("wrong")
    except AuthRejected as exc:
        outcomes.append(["AuthRejected", exc.status])
    admin.login(password)
    outcomes.append(["cookie", bool(admin.admin_cookie)])
    try:
        BoothApi(admin.http).state("nobody", "es", room_id=1)
    except NotFound as exc:
        outcomes.append(["NotFound", exc.status])
    try:
        AdminClient(PortalHttp(HttpSession(closed_url, env.events.request, user=None))).dashboard()
    except TargetUnreachable:
        outcomes.append(["TargetUnreachable", 0])
    # A booth socket under gevent's monkey patching (its reader thread is a greenlet), reporting into Locust.
    created = BoothApi(admin.http).create_booth("gevent-booth", "es")
    interp = InterpreterClient(PortalHttp(HttpSession(base_url, env.events.request, user=None)))
    interp.join_invite(created.invite_token)
    sock = BoothSocket.for_portal(interp.http, created.state.booth_id, report=env.events.request.fire).connect()
    sock.join("Gevent")
    outcomes.append(["chat", sock.chat("under gevent")["body"]])
    sock.close()
    outcomes.append(["socket", sock.state.value])
    print(json.dumps({"seen": seen, "outcomes": outcomes}))
    """
)


def test_locust_http_session_reports_once_with_contract_verdicts(portal) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_url = f"http://127.0.0.1:{s.getsockname()[1]}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", SCRIPT, portal.portal_url, portal.admin_password, closed_url],
                          capture_output=True, text=True, timeout=120, env=env, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["outcomes"] == [["AuthRejected", 403], ["cookie", True], ["NotFound", 404], ["TargetUnreachable", 0],
                                  ["chat", "under gevent"], ["socket", "closed"]]
    # One Locust event per request (no double reporting), grouped names, our typed errors as the failure.
    assert result["seen"] == [
        {"name": "/admin/login", "type": "POST", "error": "AuthRejected"},
        {"name": "/admin/login", "type": "POST", "error": None},
        {"name": "/api/events/[slug]/booths/[lang]/state", "type": "GET", "error": "NotFound"},
        {"name": "/admin/", "type": "GET", "error": "TargetUnreachable"},
        {"name": "/api/events/[slug]/booths", "type": "POST", "error": None},
        {"name": "/join/[token]", "type": "GET", "error": None},
        {"name": "/ws/booth/[booth_id]", "type": "WSCONNECT", "error": None},
        {"name": "booth:join", "type": "WS", "error": None},
        {"name": "booth:chat", "type": "WS", "error": None},
    ]


def test_fast_http_session_gives_the_same_verdicts_and_cookies(portal) -> None:
    # ListenerUser runs on Locust's FastHttpUser (docs/scaling.md): the clients must give the same typed
    # verdicts over its FastHttpSession, read its cookie jar, and report each request once.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_url = f"http://127.0.0.1:{s.getsockname()[1]}"
    script = SCRIPT.replace("from locust.clients import HttpSession",
                            "from locust.contrib.fasthttp import FastHttpSession\n"
                            "def HttpSession(base_url, request_event, user):\n"
                            "    return FastHttpSession(base_url, request_event, user, insecure=False, network_timeout=5.0, connection_timeout=5.0)")
    assert script != SCRIPT
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", script, portal.portal_url, portal.admin_password, closed_url],
                          capture_output=True, text=True, timeout=120, env=env, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    # The admin cookie is found in FastHttpSession's jar, and the interpreter's session cookie reaches its socket.
    assert result["outcomes"] == [["AuthRejected", 403], ["cookie", True], ["NotFound", 404], ["TargetUnreachable", 0],
                                  ["chat", "under gevent"], ["socket", "closed"]]
    assert [(e["name"], e["error"]) for e in result["seen"]] == [
        ("/admin/login", "AuthRejected"), ("/admin/login", None), ("/api/events/[slug]/booths/[lang]/state", "NotFound"),
        ("/admin/", "TargetUnreachable"), ("/api/events/[slug]/booths", None), ("/join/[token]", None),
        ("/ws/booth/[booth_id]", None), ("booth:join", None), ("booth:chat", None),
    ]
