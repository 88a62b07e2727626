"""Process supervision of the embedded reference target: the portal and the media relay.

``Stack`` starts each component as its own OS process on loopback (the portal is single-process like
VoxBento; the relay gets its own core and GIL), waits until each answers, restarts either one on demand
(restart drills), and stops both. It imports neither component: they are started by module name, with
``PYTHONPATH`` pointing at this checkout so that works without ``pip install``. Of the portal it reads only
the settings (``portal/config.py``, stdlib only) that belong on uvicorn's command line.

The supervisor stays small on purpose (``voxload stack up`` idles for hours next to the load): no
``http.client`` or ``secrets`` here, whose ``ssl``/``_hashlib`` imports load OpenSSL (~4.5 MiB RSS).
"""

from __future__ import annotations

import base64
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .portal.config import Settings

LOOPBACK = "127.0.0.1"
# The directory holding the `harness` package: children import from this checkout even when it is not installed.
CHECKOUT_ROOT = Path(__file__).resolve().parents[2]
# VoxBento's default ports (contract section 0): portal 8000, WHIP/WHEP 8889, MediaMTX control API 9997, RTSP 8554.
DEFAULT_PORTAL_PORT = 8000
DEFAULT_MEDIA_HTTP_PORT = 8889
DEFAULT_MEDIA_API_PORT = 9997
DEFAULT_MEDIA_RTSP_PORT = 8554


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
    """A plain HTTP/1.0 GET answered with a status below 500 (readiness of a loopback server)."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as s:
            s.sendall(f"GET {path} HTTP/1.0\r\nHost: {host}:{port}\r\n\r\n".encode())
            status_line = s.makefile("rb").readline(256)
    except OSError:
        return False
    parts = status_line.split()
    return len(parts) >= 2 and parts[0].startswith(b"HTTP/") and parts[1].isdigit() and int(parts[1]) < 500


def _token_urlsafe(n_bytes: int) -> str:
    # secrets.token_urlsafe without importing secrets (see the module docstring): the same os.urandom source.
    return base64.urlsafe_b64encode(os.urandom(n_bytes)).rstrip(b"=").decode()


def child_pythonpath(existing: str | None) -> str:
    """``CHECKOUT_ROOT`` first, then whatever the caller had (tests add their own directories)."""
    entries = [str(CHECKOUT_ROOT)] + [e for e in (existing or "").split(os.pathsep) if e and e != str(CHECKOUT_ROOT)]
    return os.pathsep.join(entries)


@dataclasses.dataclass
class StackConfig:
    host: str = LOOPBACK
    portal_port: int = DEFAULT_PORTAL_PORT
    media_http_port: int = DEFAULT_MEDIA_HTTP_PORT
    media_api_port: int = DEFAULT_MEDIA_API_PORT
    media_rtsp_port: int = DEFAULT_MEDIA_RTSP_PORT
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
        kwargs.setdefault("media_rtsp_port", free_port())
        return cls(**kwargs)


class Stack:
    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self._tmp: tempfile.TemporaryDirectory | None = None
        # Absolute: the children run with the data folder as their working directory, and the SQLite URL is built from it.
        self.data_dir = Path(os.path.abspath(config.data_dir or self._tmpdir()))
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = dict(config.portal_env)
        # Secrets: taken from the caller's environment when set, generated otherwise; never logged.
        self.admin_password = env.get("ADMIN_PASSWORD") or os.environ.get("ADMIN_PASSWORD") or _token_urlsafe(12)
        self.secret_key = env.get("SECRET_KEY") or os.environ.get("SECRET_KEY") or os.urandom(32).hex()
        env["ADMIN_PASSWORD"] = self.admin_password
        env["SECRET_KEY"] = self.secret_key
        env.setdefault("DATABASE_URL", f"sqlite+aiosqlite:///{self.data_dir / 'interpretation.db'}")
        env.setdefault("PUBLIC_BASE_URL", self.portal_url)
        env.setdefault("MEDIAMTX_WHIP_BASE", self.media_http_url)
        env.setdefault("MEDIAMTX_API_BASE", self.media_api_url)
        env.setdefault("MEDIAMTX_RTSP_BASE", self.media_rtsp_url)
        env["PYTHONPATH"] = child_pythonpath(env.get("PYTHONPATH", os.environ.get("PYTHONPATH")))
        self.portal_env = env
        # Validated here (ConfigError, one line) rather than in the child's log; uvicorn's flags come from it.
        self.portal_settings = Settings.from_env({**os.environ, **env})
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

    @property
    def media_rtsp_url(self) -> str:
        """MEDIAMTX_RTSP_BASE: transcription workers read ``{this}/{path}`` (contract 7.1)."""
        return f"rtsp://{self.config.host}:{self.config.media_rtsp_port}"

    # --- lifecycle ---
    def check_ports(self) -> None:
        ports = [("portal", self.config.portal_port)]
        if self.config.with_media:
            ports += [("media WHIP/WHEP", self.config.media_http_port), ("media API", self.config.media_api_port),
                      ("media RTSP", self.config.media_rtsp_port)]
        for name, port in ports:
            if _port_in_use(self.config.host, port):
                raise StackError(f"{name} port {self.config.host}:{port} is already in use (choose another with the port flags)")

    def start(self) -> Stack:
        self.check_ports()
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
        log_dir = Path(os.path.abspath(self.config.log_dir)) if self.config.log_dir else self.data_dir
        log_dir.mkdir(parents=True, exist_ok=True)
        return open(log_dir / f"{name}.log", "ab")

    def start_portal(self) -> None:
        self.portal_proc = self._spawn_portal()
        self._wait_ready("portal", self.portal_proc, self.config.portal_port, "/healthz")

    def portal_uvicorn_args(self) -> list[str]:
        """uvicorn's command line for the portal: one process, like VoxBento's (contract 1.1)."""
        return [
            "--factory", "harness.refstack.portal.app:app_from_env",
            "--host", self.config.host, "--port", str(self.config.portal_port),
            "--log-level", "warning", "--no-access-log",
            # Contract 1.1: uvicorn trusts X-Forwarded-For from 127.0.0.1.
            "--proxy-headers", "--forwarded-allow-ips", "127.0.0.1",
            *self.uvicorn_ws_args(),
        ]

    def _spawn_portal(self) -> subprocess.Popen:
        cmd = [sys.executable, "-m", "uvicorn", *self.portal_uvicorn_args()]
        env = {**os.environ, **self.portal_env}
        with self._log_file("portal") as log:
            return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=self.data_dir)

    def serve_portal_here(self) -> None:
        """Run the portal in the calling process until SIGINT/SIGTERM (`voxload stack up`: one process fewer).

        The calling process becomes the portal: its environment gets the portal's settings and its stderr (where
        VoxBento logs, including verification links) goes to portal.log, as a child's would.
        """
        import uvicorn.main

        os.environ.update(self.portal_env)
        os.chdir(self.data_dir)
        saved_stderr = os.dup(2)
        with self._log_file("portal") as log:
            os.dup2(log.fileno(), 2)
            try:
                uvicorn.main.main(args=self.portal_uvicorn_args(), standalone_mode=False)
            finally:
                os.dup2(saved_stderr, 2)
                os.close(saved_stderr)

    def uvicorn_ws_args(self) -> list[str]:
        """Contract 1.1: VoxBento's uvicorn runs the `websockets` legacy protocol (uvicorn 0.47 picks it when
        websockets is installed; 0.54's `auto` picks websockets-sansio instead, so it is named explicitly), with
        20 s pings and a 20 s timeout. The legacy protocol is what reproduces contract 8.3: a stalled write
        breaks its keepalive, so a frozen reader is never reaped. Knobs: REFSTACK_UVICORN_WS,
        REFSTACK_WS_PING_INTERVAL_S, REFSTACK_WS_PING_TIMEOUT_S."""
        s = self.portal_settings
        return ["--ws", s.ws_impl, "--ws-ping-interval", str(s.ws_ping_interval_s), "--ws-ping-timeout", str(s.ws_ping_timeout_s)]

    def start_media(self) -> None:
        self.media_proc = self._spawn_media()
        self._wait_ready("media relay", self.media_proc, self.config.media_api_port, "/v3/paths/list")

    def _spawn_media(self) -> subprocess.Popen:
        cmd = [
            sys.executable, "-m", "harness.refstack.media",
            "--host", self.config.host,
            "--http-port", str(self.config.media_http_port),
            "--api-port", str(self.config.media_api_port),
            "--rtsp-port", str(self.config.media_rtsp_port),
            *self.config.media_args,
        ]
        env = {**os.environ, "PYTHONPATH": child_pythonpath(os.environ.get("PYTHONPATH"))}
        with self._log_file("media") as log:
            return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=self.data_dir)

    def wait_portal_ready(self, timeout_s: float) -> bool:
        """For a portal served in this process: poll /healthz from another thread."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if _http_ok(self.config.host, self.config.portal_port, "/healthz"):
                return True
            time.sleep(0.05)
        return False

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
