"""Process supervision of the embedded reference target: the portal and the media relay.

``Stack`` starts each component as its own OS process on loopback (the portal is single-process like
VoxBento; the relay gets its own core and GIL), waits until each answers, restarts either one on demand
(restart drills), and stops both. It imports neither component: they are started by module name.
"""

from __future__ import annotations

import dataclasses
import http.client
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LOOPBACK = "127.0.0.1"
# VoxBento's default ports (contract section 0): portal 8000, WHIP/WHEP 8889, MediaMTX control API 9997.
DEFAULT_PORTAL_PORT = 8000
DEFAULT_MEDIA_HTTP_PORT = 8889
DEFAULT_MEDIA_API_PORT = 9997


class StackError(RuntimeError):
    """A component did not start or stop as expected (reported as one line by the CLI)."""


def free_port(host: str = LOOPBACK) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        return s.connect_ex((host, port)) == 0


def _http_ok(host: str, port: int, path: str, timeout_s: float = 0.5) -> bool:
    conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
    try:
        conn.request("GET", path)
        return conn.getresponse().status < 500
    except OSError:
        return False
    finally:
        conn.close()


@dataclasses.dataclass
class StackConfig:
    host: str = LOOPBACK
    portal_port: int = DEFAULT_PORTAL_PORT
    media_http_port: int = DEFAULT_MEDIA_HTTP_PORT
    media_api_port: int = DEFAULT_MEDIA_API_PORT
    with_media: bool = True
    data_dir: Path | None = None
    # Extra environment for the portal (VoxBento names and REFSTACK_* knobs, see portal/config.py).
    portal_env: dict[str, str] = dataclasses.field(default_factory=dict)
    # Extra command-line arguments for the relay (fault knobs, see `python -m harness.refstack.media --help`).
    media_args: list[str] = dataclasses.field(default_factory=list)
    log_dir: Path | None = None
    startup_timeout_s: float = 20.0

    @classmethod
    def ephemeral(cls, **kwargs) -> StackConfig:
        """Free loopback ports for every component (tests, parallel rehearsals)."""
        kwargs.setdefault("portal_port", free_port())
        kwargs.setdefault("media_http_port", free_port())
        kwargs.setdefault("media_api_port", free_port())
        return cls(**kwargs)


class Stack:
    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self._tmp: tempfile.TemporaryDirectory | None = None
        self.data_dir = config.data_dir or Path(self._tmpdir())
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = dict(config.portal_env)
        # Secrets: taken from the caller's environment when set, generated otherwise; never logged.
        self.admin_password = env.get("ADMIN_PASSWORD") or os.environ.get("ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        self.secret_key = env.get("SECRET_KEY") or os.environ.get("SECRET_KEY") or secrets.token_hex(32)
        env["ADMIN_PASSWORD"] = self.admin_password
        env["SECRET_KEY"] = self.secret_key
        env.setdefault("DATABASE_URL", f"sqlite+aiosqlite:///{self.data_dir / 'interpretation.db'}")
        env.setdefault("PUBLIC_BASE_URL", self.portal_url)
        env.setdefault("MEDIAMTX_WHIP_BASE", self.media_http_url)
        env.setdefault("MEDIAMTX_API_BASE", self.media_api_url)
        env.setdefault("MEDIAMTX_RTSP_BASE", f"rtsp://{config.host}:8554")
        self.portal_env = env
        self.portal_proc: subprocess.Popen | None = None
        self.media_proc: subprocess.Popen | None = None

    def _tmpdir(self) -> str:
        self._tmp = tempfile.TemporaryDirectory(prefix="voxload-stack-")
        return self._tmp.name

    # --- addresses ---
    @property
    def portal_url(self) -> str:
        return f"http://{self.config.host}:{self.config.portal_port}"

    @property
    def media_http_url(self) -> str:
        return f"http://{self.config.host}:{self.config.media_http_port}"

    @property
    def media_api_url(self) -> str:
        return f"http://{self.config.host}:{self.config.media_api_port}"

    # --- lifecycle ---
    def start(self) -> Stack:
        ports = [("portal", self.config.portal_port)]
        if self.config.with_media:
            ports += [("media WHIP/WHEP", self.config.media_http_port), ("media API", self.config.media_api_port)]
        for name, port in ports:
            if _port_in_use(self.config.host, port):
                raise StackError(f"{name} port {self.config.host}:{port} is already in use (choose another with the port flags)")
        try:
            # Both are spawned before either is awaited: start-up time is the slower one's, not the sum.
            if self.config.with_media:
                self.media_proc = self._spawn_media()
            self.portal_proc = self._spawn_portal()
            if self.config.with_media:
                self._wait_ready("media relay", self.media_proc, self.config.media_api_port, "/v3/paths/list")
            self._wait_ready("portal", self.portal_proc, self.config.portal_port, "/healthz")
        except BaseException:
            self.stop()
            raise
        return self

    def _log_file(self, name: str):
        log_dir = self.config.log_dir or self.data_dir
        log_dir.mkdir(parents=True, exist_ok=True)
        return open(log_dir / f"{name}.log", "ab")

    def start_portal(self) -> None:
        self.portal_proc = self._spawn_portal()
        self._wait_ready("portal", self.portal_proc, self.config.portal_port, "/healthz")

    def _spawn_portal(self) -> subprocess.Popen:
        cmd = [
            sys.executable, "-m", "uvicorn", "--factory", "harness.refstack.portal.app:app_from_env",
            "--host", self.config.host, "--port", str(self.config.portal_port),
            "--log-level", "warning", "--no-access-log",
            # Contract 1.1: uvicorn trusts X-Forwarded-For from 127.0.0.1.
            "--proxy-headers", "--forwarded-allow-ips", "127.0.0.1",
        ]
        env = {**os.environ, **self.portal_env}
        with self._log_file("portal") as log:
            return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=self.data_dir)

    def start_media(self) -> None:
        self.media_proc = self._spawn_media()
        self._wait_ready("media relay", self.media_proc, self.config.media_api_port, "/v3/paths/list")

    def _spawn_media(self) -> subprocess.Popen:
        cmd = [
            sys.executable, "-m", "harness.refstack.media",
            "--host", self.config.host,
            "--http-port", str(self.config.media_http_port),
            "--api-port", str(self.config.media_api_port),
            *self.config.media_args,
        ]
        with self._log_file("media") as log:
            return subprocess.Popen(cmd, env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT, cwd=self.data_dir)

    def _wait_ready(self, name: str, proc: subprocess.Popen, port: int, path: str) -> None:
        deadline = time.monotonic() + self.config.startup_timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                log = self.data_dir / f"{name.split()[0]}.log"
                tail = ""
                if log.exists():
                    lines = log.read_text(errors="replace").strip().splitlines()
                    tail = lines[-1] if lines else ""
                raise StackError(f"{name} exited with code {proc.returncode} during startup: {tail}")
            if _http_ok(self.config.host, port, path):
                return
            time.sleep(0.05)
        raise StackError(f"{name} did not answer http://{self.config.host}:{port}{path} within {self.config.startup_timeout_s:.0f} s")

    @staticmethod
    def _terminate(proc: subprocess.Popen | None, timeout_s: float = 10.0) -> None:
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def restart_portal(self) -> float:
        """Restart drill: stop and start the portal; returns the seconds it was down."""
        t0 = time.monotonic()
        self._terminate(self.portal_proc)
        self.start_portal()
        return time.monotonic() - t0

    def restart_media(self) -> float:
        """Restart drill: stop and start the relay (it loses its path configuration, as MediaMTX does)."""
        t0 = time.monotonic()
        self._terminate(self.media_proc)
        self.start_media()
        return time.monotonic() - t0

    def kill_portal(self) -> None:
        if self.portal_proc is not None and self.portal_proc.poll() is None:
            self.portal_proc.kill()
            self.portal_proc.wait()

    def stop(self) -> None:
        self._terminate(self.portal_proc)
        self._terminate(self.media_proc)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def pids(self) -> dict[str, int]:
        return {name: p.pid for name, p in (("portal", self.portal_proc), ("media", self.media_proc)) if p is not None and p.poll() is None}

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
