"""The load generator's side of browser canaries: start canary processes, feed them schedules, stop them.

Owns: spawning ``python -m harness.browser.canary`` per canary (its configuration, join code or invite
included, goes down its stdin, never onto a command line), forwarding publisher schedules to the canaries of
the booth, the fleet's status lines (``browser/status.jsonl``: Chromium unavailable, a canary that could not
start or died), and stopping them at the end of the run.

gevent: like the media bridge, this module never imports gevent, locust or playwright; ``subprocess`` and
``threading`` are looked up at call time, so inside Locust they are gevent's cooperative versions. One lock
per canary around writes to its stdin (concurrent writes to one gevent pipe raise ConcurrentObjectUseError).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from . import chromium
from ..results.browser_files import JsonLines, browser_dir
from ..results.layout import BROWSER_STATUS_JSONL

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class CanaryProcess:
    name: str
    role: str
    booth_id: str
    proc: subprocess.Popen
    started_epoch_s: float
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    stop_sent: bool = False
    exit_code: int | None = None
    user_data_dir: str | None = None  # removed by the fleet even when the canary was killed

    def send(self, message: dict) -> bool:
        with self.lock:
            if self.proc.poll() is not None or self.proc.stdin is None or self.proc.stdin.closed:
                return False
            try:
                self.proc.stdin.write((json.dumps(message) + "\n").encode())
                self.proc.stdin.flush()
                return True
            except (BrokenPipeError, OSError, ValueError):
                return False


class CanaryFleet:
    def __init__(self, run_path: Path) -> None:
        self.run_path = Path(run_path)
        self.dir = browser_dir(self.run_path)
        self.canaries: list[CanaryProcess] = []
        self._status: JsonLines | None = None
        self._schedules: dict[str, list[dict]] = {}
        self._lock = threading.Lock()
        self.closed = False  # after stop(): no new canary starts

    def status(self, kind: str, text: str, **fields) -> None:
        """One line for the run's log and the report (status.jsonl)."""
        if self._status is None:
            self._status = JsonLines(self.dir / BROWSER_STATUS_JSONL)
        self._status.write({"kind": kind, "text": text, **fields})

    @staticmethod
    def unavailable_reason() -> str | None:
        return chromium.unavailable_reason()

    def start(self, name: str, config: dict) -> CanaryProcess | None:
        """Spawn one canary; None once the fleet is stopped (a late starter must not outlive the run)."""
        package_root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
        with self._lock:
            if self.closed:
                return None
            self.dir.mkdir(parents=True, exist_ok=True)
            config = {**config, "user_data_dir": tempfile.mkdtemp(prefix=f"voxload-canary-{name}-")}
            with open(self.dir / f"canary-{name}.log", "ab") as log:
                proc = subprocess.Popen([sys.executable, "-m", "harness.browser.canary", "--run-dir", str(self.run_path), "--name", name],
                                        stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT, env=env)
            canary = CanaryProcess(name, config["role"], config.get("booth_id", ""), proc, time.time(),
                                   user_data_dir=config["user_data_dir"])
            self.canaries.append(canary)
            known = list(self._schedules.get(canary.booth_id, []))
        canary.send(config)
        for schedule in known:
            canary.send({"op": "schedule", "schedule": schedule})
        self.status("started", f"browser canary {name} ({canary.role}) started for {canary.booth_id}", canary=name, role=canary.role,
                    pid=proc.pid)
        return canary

    def add_schedule(self, booth_id: str, schedule: dict) -> None:
        with self._lock:
            known = self._schedules.setdefault(booth_id, [])
            if schedule in known:
                return
            known.append(schedule)
            targets = [c for c in self.canaries if c.booth_id == booth_id]
        for canary in targets:
            canary.send({"op": "schedule", "schedule": schedule})

    def command(self, name: str, message: dict) -> bool:
        """Send one command (e.g. ``{"op": "handover"}``) to the canary called ``name``."""
        return any(c.send(message) for c in self.canaries if c.name == name)

    def dead(self) -> list[CanaryProcess]:
        """Canaries that exited before they were asked to stop (their figures end there)."""
        return [c for c in self.canaries if not c.stop_sent and c.proc.poll() is not None]

    def stop(self, timeout_s: float = 20.0) -> None:
        with self._lock:
            self.closed = True
        for canary in list(self.canaries):
            if canary.proc.poll() is not None and not canary.stop_sent:
                canary.exit_code = canary.proc.returncode
                self.status("died", f"browser canary {canary.name} exited with code {canary.exit_code} before the end of "
                            f"the run: its figures end there (see browser/canary-{canary.name}.log)", canary=canary.name,
                            exit_code=canary.exit_code)
            canary.send({"op": "stop"})
            canary.stop_sent = True
        deadline = time.monotonic() + timeout_s
        for canary in self.canaries:
            try:
                canary.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                canary.proc.kill()
                canary.proc.wait()
                self.status("killed", f"browser canary {canary.name} did not stop within {timeout_s:.0f} s and was killed",
                            canary=canary.name)
            if canary.exit_code is None:
                canary.exit_code = canary.proc.returncode
            if canary.proc.stdin is not None:
                try:
                    canary.proc.stdin.close()
                except OSError:
                    pass
            if canary.user_data_dir:
                shutil.rmtree(canary.user_data_dir, ignore_errors=True)
        if self._status is not None:
            self._status.close()
            self._status = None
