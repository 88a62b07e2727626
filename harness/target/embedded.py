"""The embedded reference target as the harness sees it: a child process, reached only over loopback.

The harness never imports ``harness.refstack``. ``EmbeddedStack`` runs ``python -m harness.target.stack_child``
on free loopback ports with a generated admin password and JWT secret in the child's environment, reads its
one-line JSON ready message, and asks it to restart the portal or the media relay (restart drills) or to
stop. ``harness.target.targets.EmbeddedTarget`` (the one target of rehearsals and probes) holds it.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from ..errors import VoxloadError
from .stack_child import KNOBS_ENV_VAR


class EmbeddedTargetError(VoxloadError, RuntimeError):
    """The embedded stack did not start, or did not do what it was asked (one line)."""


class EmbeddedStack:
    def __init__(self, data_dir: Path, knobs: Mapping[str, str] | None = None, startup_timeout_s: float = 60.0) -> None:
        self.data_dir = Path(os.path.abspath(data_dir))  # the child runs elsewhere: never a relative path
        self.knobs = dict(knobs or {})
        self.startup_timeout_s = startup_timeout_s
        self.admin_password = secrets.token_urlsafe(12)
        # The harness chooses the target's JWT secret so it can mint tokens (listener JWTs in auth mode); never logged.
        self.secret_key = secrets.token_hex(32)
        self.portal_url = self.media_url = self.media_api_url = ""
        self._proc: subprocess.Popen | None = None
        self._log = None

    def __repr__(self) -> str:
        return f"EmbeddedStack({self.portal_url!r}, knobs={self.knobs!r}, secrets=<redacted>)"

    def start(self) -> EmbeddedStack:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "harness.target.stack_child", "--data-dir", str(self.data_dir),
               "--startup-timeout-s", str(self.startup_timeout_s)]
        # Knobs travel in the environment, never on the command line: BOOTH_ACCESS_TOKEN is a secret, and a
        # command line is visible to every user of the machine (`ps`).
        env = {**os.environ, "ADMIN_PASSWORD": self.admin_password, "SECRET_KEY": self.secret_key,
               KNOBS_ENV_VAR: json.dumps(self.knobs)}
        env.pop("JWT_SECRET", None)
        self._log = open(self.data_dir / "stack-control.log", "w")
        # Own session: a terminal's Ctrl-C goes to Locust, which judges the run and then stops the stack (the
        # teardown needs the portal); the stack still stops when Locust dies (its stdin closes).
        self._proc = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True,
                                      start_new_session=True)
        ready = self._read_reply()
        if "error" in ready:
            self.stop()
            raise EmbeddedTargetError(ready["error"])
        self.portal_url, self.media_url, self.media_api_url = ready["portal_url"], ready["media_url"], ready["media_api_url"]
        return self

    def _read_reply(self) -> dict:
        assert self._proc is not None and self._proc.stdout is not None
        # The child answers each command within the stack's own timeouts; readline blocks until then.
        line = self._proc.stdout.readline()
        if not line:
            self._proc.wait(timeout=30)
            raise EmbeddedTargetError(f"the embedded reference stack exited with code {self._proc.returncode} "
                                      f"(log in {self.data_dir})")
        try:
            return json.loads(line)
        except ValueError:
            raise EmbeddedTargetError(f"the embedded reference stack said {line.strip()!r}") from None

    def _command(self, command: str) -> float:
        if self._proc is None or self._proc.poll() is not None:
            raise EmbeddedTargetError("the embedded reference stack is not running")
        assert self._proc.stdin is not None
        self._proc.stdin.write(command + "\n")
        self._proc.stdin.flush()
        reply = self._read_reply()
        if "error" in reply:
            raise EmbeddedTargetError(reply["error"])
        return float(reply["down_s"])

    def restart_portal(self) -> float:
        """Restart drill: seconds the portal was down (its in-memory state is gone afterwards)."""
        return self._command("restart-portal")

    def restart_media(self) -> float:
        """Restart drill: seconds the relay was down (it loses its path configuration, as MediaMTX does)."""
        return self._command("restart-media")

    def stop(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            try:
                assert proc.stdin is not None
                proc.stdin.write("stop\n")
                proc.stdin.flush()
                proc.stdin.close()
            except (BrokenPipeError, OSError):
                pass
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc is not None and proc.stdout is not None:
            proc.stdout.close()
        if self._log is not None:
            self._log.close()
            self._log = None
