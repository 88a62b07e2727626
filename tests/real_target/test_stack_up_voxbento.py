"""`voxload stack up --voxbento DIR` as a VoxBento developer runs it: relative DIR, real processes, Ctrl-C/SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import httpx
import pytest

from harness.refstack.stack import free_port

from .conftest import layout_or_skip


def _start(cwd, *args, env):
    proc = subprocess.Popen([sys.executable, "-m", "harness", "stack", "up", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("Ctrl-C"):
            break
    return proc, "".join(lines)


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_stack_up_voxbento_serves_the_real_portal_with_our_relay(tmp_path, stop_signal):
    layout = layout_or_skip()
    (tmp_path / "vb").symlink_to(layout.root)  # a relative DIR, as typed
    ports = [free_port(), free_port(), free_port(), free_port()]
    env = {**os.environ, "ADMIN_PASSWORD": "developer-chosen-secret"}
    proc, out = _start(tmp_path, "--voxbento", "vb", "--portal-port", str(ports[0]), "--media-port", str(ports[1]),
                       "--media-api-port", str(ports[2]), "--media-rtsp-port", str(ports[3]), "--data-dir", "data", env=env)
    try:
        assert "VoxBento stack ready" in out, out + proc.stderr.read() if proc.poll() is not None else out
        assert "(from ADMIN_PASSWORD)" in out and "developer-chosen-secret" not in out
        portal = f"http://127.0.0.1:{ports[0]}"
        assert re.search(rf"portal\s+{re.escape(portal)}", out) and f"http://127.0.0.1:{ports[1]}" in out
        assert f"rtsp://127.0.0.1:{ports[3]}" in out  # VoxBento's MEDIAMTX_RTSP_BASE: the relay's RTSP listener
        health = httpx.get(f"{portal}/healthz", timeout=10).json()
        # VoxBento's own /healthz body; mediamtx_ok: it reached our relay's Control API as its MediaMTX.
        assert health == {"ok": True, "server": "fastapi", "mediamtx_ok": True}, health
        login = httpx.post(f"{portal}/admin/login", data={"password": "developer-chosen-secret"}, timeout=20)
        assert login.status_code in (302, 303) and "admin_token" in login.cookies
        assert httpx.get(f"http://127.0.0.1:{ports[2]}/v3/paths/list", timeout=5).status_code == 200
        assert (tmp_path / "data" / "portal.log").exists() and (tmp_path / "data" / "voxbento.db").exists()
    finally:
        proc.send_signal(stop_signal)
        rc = proc.wait(timeout=40)
    rest = proc.stdout.read()
    assert rc == 0, proc.stderr.read()
    assert "stopped" in rest
    for port in ports:
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port}/", timeout=2)


def test_stack_up_voxbento_rejects_a_directory_without_voxbento(tmp_path):
    (tmp_path / "empty").mkdir()
    done = subprocess.run([sys.executable, "-m", "harness", "stack", "up", "--voxbento", "empty",
                           "--portal-port", str(free_port())], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "not a VoxBento install" in done.stderr and "Traceback" not in done.stderr


def test_stack_up_voxbento_names_a_missing_environment(tmp_path):
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (checkout / "fastapi_app.py").write_text("")
    done = subprocess.run([sys.executable, "-m", "harness", "stack", "up", "--voxbento", "checkout",
                           "--portal-port", str(free_port())], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "no environment to run it" in done.stderr, done.stderr
