"""The real VoxBento for tests: find an installed copy (or install one from the shared snapshot), start it.

Where it comes from, first match wins:
- ``$VOXLOAD_VOXBENTO_DIR_<COMMIT>`` (e.g. ``VOXLOAD_VOXBENTO_DIR_7cc5f3e``), or ``$VOXLOAD_VOXBENTO_DIR`` for the
  contract's HEAD (0c0ddc3): a directory made by ``shared/voxbento/setup.sh DEST COMMIT`` (it holds ``run.sh``);
- ``<repo>/../shared/voxbento/setup.sh``, run once into ``$VOXLOAD_VOXBENTO_CACHE`` (default ``~/.cache/voxload/voxbento``).
Neither present: the caller skips with :data:`SKIP_REASON`.

A started VoxBento is one uvicorn process on a free loopback port with a fresh SQLite file, its MediaMTX URLs
pointing at a relay the caller started (contract 12.3), SMTP off; it is stopped by process group.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import time
from pathlib import Path

import requests

from harness.refstack.stack import free_port

REPO = Path(__file__).resolve().parents[1]
HEAD_COMMIT = "0c0ddc3"
SHARED = REPO.parent / "shared" / "voxbento"
SKIP_REASON = ("real VoxBento not available: set $VOXLOAD_VOXBENTO_DIR (a DEST of shared/voxbento/setup.sh) "
               "or provide ../shared/voxbento beside the repository")
STARTUP_TIMEOUT_S = 60.0


def installed(commit: str = HEAD_COMMIT) -> Path | None:
    """A DEST holding run.sh for `commit`, installing it from ../shared/voxbento when needed; None when impossible."""
    for name in (f"VOXLOAD_VOXBENTO_DIR_{commit}", "VOXLOAD_VOXBENTO_DIR" if commit == HEAD_COMMIT else ""):
        value = os.environ.get(name) if name else None
        if value and (Path(value) / "run.sh").exists():
            return Path(value)
    setup = SHARED / "setup.sh"
    if not setup.exists() or not (SHARED / f"voxbento-{commit}.tar.gz").exists():
        return None
    cache = Path(os.environ.get("VOXLOAD_VOXBENTO_CACHE", Path.home() / ".cache" / "voxload" / "voxbento")) / commit
    done = subprocess.run([str(setup), str(cache), commit], capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"{setup} {cache} {commit} failed: {(done.stderr or done.stdout).strip().splitlines()[-1:]}")
    return cache


class RealVoxBento:
    """One running VoxBento portal (started by :meth:`start`, stopped by :meth:`stop`)."""

    def __init__(self, dest: Path, workdir: Path, *, whip_port: int, api_port: int, env: dict[str, str] | None = None) -> None:
        self.dest = dest
        self.workdir = workdir
        self.port = free_port()
        self.admin_password = secrets.token_urlsafe(12)
        self.env = {
            **os.environ, **(env or {}),
            "ADMIN_PASSWORD": self.admin_password, "PORT": str(self.port), "DB": str(workdir / "voxbento.db"),
            "MEDIAMTX_WHIP_PORT": str(whip_port), "MEDIAMTX_API_PORT": str(api_port), "MEDIAMTX_RTSP_PORT": str(free_port()),
        }
        self.proc: subprocess.Popen | None = None
        self.log_path = workdir / "voxbento.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> RealVoxBento:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("w") as log:
            self.proc = subprocess.Popen([str(self.dest / "run.sh")], env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"VoxBento exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                if requests.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"VoxBento not healthy within {STARTUP_TIMEOUT_S:.0f} s: {self.log_tail()}")

    def log_tail(self, lines: int = 5) -> str:
        try:
            return " | ".join(self.log_path.read_text().strip().splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
