"""`voxload stack up` as an operator runs it: a real subprocess, real ports, SIGTERM and Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from harness.refstack.stack import free_port


def _start(*extra: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, dict[str, str]]:
    ports = {"portal": free_port(), "media": free_port(), "api": free_port(), "rtsp": free_port()}
    cmd = [
        sys.executable, "-m", "harness", "stack", "up",
        "--portal-port", str(ports["portal"]), "--media-port", str(ports["media"]), "--media-api-port", str(ports["api"]),
        "--media-rtsp-port", str(ports["rtsp"]),
        *extra,
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})
    lines: list[str] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("Ctrl-C"):
            break
    out = "".join(lines)
    info = {"out": out, **{k: str(v) for k, v in ports.items()}}
    return proc, info


def test_stack_up_serves_and_stops_on_sigterm():
    proc, info = _start()
    try:
        assert "ready in" in info["out"], info["out"] + proc.stderr.read()
        password = re.search(r"admin password\s+(\S+)", info["out"]).group(1)
        base = f"http://127.0.0.1:{info['portal']}"
        health = httpx.get(f"{base}/healthz", timeout=5)
        assert health.status_code == 200
        assert health.json()["mediamtx_ok"] is True  # the portal reaches the relay's control API
        login = httpx.post(f"{base}/admin/login", data={"password": password}, timeout=10)
        assert login.status_code == 303 and "admin_token" in login.cookies
        paths = httpx.get(f"http://127.0.0.1:{info['api']}/v3/paths/list", timeout=5)
        assert paths.status_code == 200
        # Transcription workers read booths over RTSP there (contract 7.1): the relay answers RTSP on the given port.
        assert f"rtsp://127.0.0.1:{info['rtsp']}" in info["out"]
        with socket.create_connection(("127.0.0.1", int(info["rtsp"])), timeout=5) as rtsp:
            rtsp.sendall(f"OPTIONS rtsp://127.0.0.1:{info['rtsp']}/ RTSP/1.0\r\nCSeq: 1\r\n\r\n".encode())
            assert rtsp.recv(64).startswith(b"RTSP/1.0 200 OK")
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=20)
    assert rc == 0
    assert "stopped" in proc.stdout.read()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{info['portal']}/healthz", timeout=2)


def test_stack_up_ctrl_c_and_password_from_environment():
    proc, info = _start("--no-media", env={"ADMIN_PASSWORD": "operator-chosen-secret"})
    try:
        assert "(from ADMIN_PASSWORD)" in info["out"]
        assert "operator-chosen-secret" not in info["out"]  # secrets from the environment are never echoed
        login = httpx.post(f"http://127.0.0.1:{info['portal']}/admin/login", data={"password": "operator-chosen-secret"}, timeout=10)
        assert login.status_code == 303
    finally:
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(timeout=20)
    assert rc == 0


def test_stack_up_port_in_use_is_one_line_error():
    busy = free_port()
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", busy))
        s.listen()
        result = subprocess.run(
            [sys.executable, "-m", "harness", "stack", "up", "--no-media", "--portal-port", str(busy)],
            capture_output=True, text=True, timeout=30,
        )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert f"127.0.0.1:{busy} is already in use" in result.stderr
    assert "Traceback" not in result.stderr


def test_stack_up_rejects_bad_knob_value_in_one_line():
    result = subprocess.run(
        [sys.executable, "-m", "harness", "stack", "up", "--no-media", "--portal-port", str(free_port()),
         "--set", "REFSTACK_MAX_TOTAL_WORKERS=lots"],
        capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 2
    assert "REFSTACK_MAX_TOTAL_WORKERS" in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0


def test_stack_children_import_from_this_checkout_and_keep_the_callers_pythonpath(stack_factory, tmp_path):
    """The portal and the relay get PYTHONPATH = the directory holding `harness` first (so they run from a checkout
    that is not pip-installed), followed by the caller's own entries (tests add theirs for scripted providers)."""
    import psutil

    from harness.refstack.stack import CHECKOUT_ROOT

    extra = str(tmp_path / "providers")
    stack = stack_factory(portal_env={"PYTHONPATH": extra}, with_media=True)
    assert (CHECKOUT_ROOT / "harness" / "refstack" / "stack.py").exists()
    portal_path = psutil.Process(stack.portal_proc.pid).environ()["PYTHONPATH"].split(os.pathsep)
    assert portal_path[:2] == [str(CHECKOUT_ROOT), extra]
    media_path = psutil.Process(stack.media_proc.pid).environ()["PYTHONPATH"].split(os.pathsep)
    assert media_path[0] == str(CHECKOUT_ROOT)
    # uvicorn's command line carries the contract 1.1 transport settings.
    cmdline = psutil.Process(stack.portal_proc.pid).cmdline()
    assert cmdline[cmdline.index("--ws") + 1] == "websockets"
    assert cmdline[cmdline.index("--ws-ping-interval") + 1] == "20.0"


def test_stack_up_stops_with_one_line_when_the_relay_dies():
    import psutil

    proc, info = _start()
    try:
        assert "ready in" in info["out"]
        relay = [c for c in psutil.Process(proc.pid).children() if "harness.refstack.media" in " ".join(c.cmdline())]
        assert len(relay) == 1  # the portal runs in the `stack up` process itself; the relay is its only child
        relay[0].kill()
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 2
    assert err.strip().count("\n") == 0 and "media relay exited unexpectedly" in err and "Traceback" not in err
