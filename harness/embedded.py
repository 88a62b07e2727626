"""The embedded reference target as the harness sees it: a child process, reached only over loopback.

The harness never imports ``harness.refstack``; it runs ``python -m harness stack up`` on free loopback
ports with a generated admin password in the child's environment, waits for its ready line, and stops it
with SIGTERM. A real deployment given with ``--host`` is driven the same way from there on.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


class EmbeddedTargetError(RuntimeError):
    pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EmbeddedTarget:
    def __init__(self, data_dir: Path, knobs: dict[str, str] | None = None, startup_timeout_s: float = 60.0) -> None:
        self.data_dir = Path(data_dir)
        self.knobs = dict(knobs or {})
        self.startup_timeout_s = startup_timeout_s
        self.portal_port = _free_port()
        self.admin_password = secrets.token_urlsafe(12)
        # The harness chooses the target's JWT secret so it can mint tokens (listener JWTs in auth mode); never logged.
        self.secret_key = secrets.token_hex(32)
        self.proc: subprocess.Popen | None = None

    @property
    def portal_url(self) -> str:
        return f"http://127.0.0.1:{self.portal_port}"

    def start(self) -> EmbeddedTarget:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "harness", "stack", "up", "--portal-port", str(self.portal_port),
               "--media-port", str(_free_port()), "--media-api-port", str(_free_port()), "--data-dir", str(self.data_dir)]
        for key, value in self.knobs.items():
            cmd += ["--set", f"{key}={value}"]
        env = {**os.environ, "ADMIN_PASSWORD": self.admin_password, "SECRET_KEY": self.secret_key}
        env.pop("JWT_SECRET", None)
        self._log = open(self.data_dir / "stack-up.log", "w")
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=self._log, text=True)
        deadline = time.monotonic() + self.startup_timeout_s
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                self.proc.wait()
                err = (self.data_dir / "stack-up.log").read_text().strip().splitlines()
                raise EmbeddedTargetError(err[-1] if err else f"voxload stack up exited with code {self.proc.returncode}")
            if line.startswith("Ctrl-C"):
                return self
        self.stop()
        raise EmbeddedTargetError(f"embedded reference stack not ready within {self.startup_timeout_s:.0f} s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "_log", None):
            self._log.close()
