"""The conformance suite: the harness against the real VoxBento (marker ``real_target``).

VoxBento comes from ``<repo>/../shared/voxbento`` (set up once into ~/.cache/voxload/voxbento-COMMIT) or from
``$VOXLOAD_VOXBENTO_DIR``; it runs with our relay as its media server (``harness.target.voxbento``). Without it the
suite is one skipped test (test_availability.py) with the reason, and nothing else is collected.
CLIs run as an operator runs them: a subprocess, from a temporary working directory, relative paths, the admin
password in $VOXLOAD_ADMIN_PASSWORD (contract 3.2) and never on a command line.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.clients.tokens import ADMIN_PASSWORD_ENV_VAR, SECRET_ENV_VAR
from harness.target.voxbento import VoxBentoStack, VoxBentoUnavailable, locate, unavailable_reason

HERE = Path(__file__).resolve().parent
SCENARIOS = HERE.parent / "data" / "scenarios"
UNAVAILABLE = unavailable_reason()
if UNAVAILABLE:
    # One skipped test says why (test_availability.py); the modules that need VoxBento are not collected at all.
    collect_ignore = [p.name for p in HERE.glob("test_*.py") if p.name != "test_availability.py"]


def pytest_collection_modifyitems(config, items):
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.real_target)


def layout_or_skip(commit: str | None = None):
    reason = unavailable_reason(commit)
    if reason:
        pytest.skip(f"real VoxBento unavailable: {reason}")
    try:
        return locate(commit)
    except VoxBentoUnavailable as exc:
        pytest.skip(f"real VoxBento unavailable: {exc}")


@contextlib.contextmanager
def running_voxbento(data_dir: Path, commit: str | None = None, **settings: str):
    """The real VoxBento (`commit`, default the one under test) and our relay on free loopback ports."""
    stack = VoxBentoStack(layout_or_skip(commit), data_dir, settings=settings)
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


def operator_env(stack: VoxBentoStack, *, with_secret: bool = False) -> dict[str, str]:
    """What an operator exports before running voxload against their deployment."""
    env = {k: v for k, v in os.environ.items() if k not in (ADMIN_PASSWORD_ENV_VAR, SECRET_ENV_VAR)}
    env[ADMIN_PASSWORD_ENV_VAR] = stack.admin_password
    if with_secret:
        env[SECRET_ENV_VAR] = stack.secret_key
    return env


def voxload(cwd: Path, *args: str, env: dict[str, str], timeout_s: float = 240) -> subprocess.CompletedProcess:
    """`voxload ARGS` from `cwd`, as a person types it."""
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout_s)


def scenario_into(cwd: Path, name: str) -> str:
    """Copies tests/data/scenarios/NAME.yaml into the working directory; returns the relative file name."""
    shutil.copy(SCENARIOS / f"{name}.yaml", cwd / f"{name}.yaml")
    return f"{name}.yaml"


def finding(cwd: Path, run_id: str, probe: str) -> dict:
    return json.loads((cwd / "reports" / run_id / "probes" / probe / "finding.json").read_text())


def verdict(cwd: Path, run_id: str) -> dict:
    return json.loads((cwd / "reports" / run_id / "verdict.json").read_text())


def explain(done: subprocess.CompletedProcess, cwd: Path | None = None, run_id: str | None = None) -> str:
    """The tail of a failed command's output (and the run's verdict line when there is one), for assertion messages."""
    why = ""
    if cwd is not None and run_id is not None and (cwd / "reports" / run_id / "verdict.json").exists():
        v = verdict(cwd, run_id)
        slos = {s["metric"]: f"{s['state']} {s['measured']}" for s in v["slos"]}
        why = (f"verdict {v['verdict']} (exit {v['exit_code']}): {v['reason']}\nslos {slos}\nmissing {v.get('missing')}\n"
               f"generator {v.get('generator_health')}\n")
    return f"{why}exit {done.returncode}\n--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-2000:]}"
