"""Shared fixtures: real reference-stack processes on free loopback ports.

``stack_factory(portal_env=..., with_media=..., media_args=...)`` starts a real uvicorn portal (and the
media relay when asked) in subprocesses with a fresh SQLite file; everything started is stopped at teardown.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.refstack.stack import Stack, StackConfig

# Contract 1.2 defaults the tests rely on: fast bcrypt keeps login tests quick without changing behaviour.
TEST_PORTAL_ENV = {"REFSTACK_BCRYPT_ROUNDS": "4"}


@pytest.fixture(autouse=True)
def _quiet_ice_logs():
    # media-design 6.3: aioice logs several INFO lines per connection.
    for name in ("aioice", "aiortc"):
        logging.getLogger(name).setLevel(logging.WARNING)
    yield


@pytest.fixture
def stack_factory(tmp_path):
    started: list[Stack] = []

    def make(portal_env: dict[str, str] | None = None, with_media: bool = False, media_args: list[str] | None = None) -> Stack:
        env = {**TEST_PORTAL_ENV, **(portal_env or {})}
        config = StackConfig.ephemeral(
            with_media=with_media,
            portal_env=env,
            media_args=list(media_args or []),
            data_dir=tmp_path / f"stack{len(started)}",
        )
        stack = Stack(config)
        started.append(stack)
        return stack.start()

    yield make
    for stack in started:
        stack.stop()


@pytest.fixture(scope="module")
def relay(request, tmp_path_factory) -> Stack:
    """The media relay alone (no portal), shared by a test module; `RELAY_ARGS` in the module adds flags."""
    args = list(getattr(request.module, "RELAY_ARGS", []))
    stack = Stack(StackConfig.ephemeral(with_media=True, data_dir=tmp_path_factory.mktemp("relay"), media_args=args))
    try:
        stack.start_media()
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def portal(stack_factory) -> Stack:
    """A running reference portal in open mode (BOOTH_ACCESS_TOKEN empty), no media relay."""
    return stack_factory()


@pytest.fixture
def stack(stack_factory) -> Stack:
    """Portal plus media relay."""
    return stack_factory(with_media=True)


REPO = Path(__file__).resolve().parents[1]


def run_locust(results_dir: Path, scenario: str, run_id: str, *extra: str, timeout_s: float = 300) -> subprocess.CompletedProcess:
    """The locustfile as CI runs it, in a subprocess (importing locust here would monkey-patch pytest)."""
    return subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(REPO / "scenarios" / "conference.py"), "--headless", "--only-summary",
         "--scenario", scenario, "--results-dir", str(results_dir), "--run-id", run_id, *extra],
        capture_output=True, text=True, timeout=timeout_s, cwd=REPO,
    )


def cli_env() -> dict[str, str]:
    """An operator's environment: no VOXLOAD_* settings of ours leak in; this checkout first on the path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOXLOAD_")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])
    return env


def voxload_command() -> list[str]:
    # The console script as the README types it; `python -m harness` where the checkout is not pip-installed.
    script = shutil.which("voxload")
    return [script] if script else [sys.executable, "-m", "harness"]


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    """One real smoke rehearsal against the embedded stack, shared by every test that reads its results.

    Run as the README's first command: `voxload rehearse smoke`, unchanged, from a directory that is not the checkout,
    so the run folder is `<that directory>/reports/<run id>` (test_cli_paths checks the relative default). One ~80 s
    rehearsal serves the CLI-path, report, browser-section, exit-code and distributed tests."""
    cwd = tmp_path_factory.mktemp("smoke") / "somewhere"
    cwd.mkdir()
    done = subprocess.run([*voxload_command(), "rehearse", "smoke"], cwd=cwd, env=cli_env(), capture_output=True, text=True,
                          timeout=400)
    runs = [p for p in (cwd / "reports").iterdir() if p.is_dir()] if (cwd / "reports").is_dir() else []
    assert len(runs) == 1, (runs, done.stderr[-3000:])
    return done, runs[0]


# A pool of 2 connections without overflow and a 20 ms pool timeout: the knob set whose limit test_probes_cli compares
# with a larger pool, and whose finding test_report renders.
SMALL_DB_POOL_KNOBS = {"REFSTACK_DB_POOL_SIZE": "2", "REFSTACK_DB_MAX_OVERFLOW": "0", "REFSTACK_DB_POOL_TIMEOUT_S": "0.02"}


@pytest.fixture(scope="session")
def small_db_pool_probe(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    """One real `voxload probe db-pool` against the embedded stack with SMALL_DB_POOL_KNOBS, typed as a person types it
    (from a directory that is not the checkout, relative --results-dir), shared by the CLI-path, probe and report tests.
    Returns the finished process and the run folder (`out/pool2` under that directory)."""
    cwd = tmp_path_factory.mktemp("probe") / "probe-here"
    cwd.mkdir()
    knobs = [arg for key, value in SMALL_DB_POOL_KNOBS.items() for arg in ("--set", f"{key}={value}")]
    done = subprocess.run(
        [*voxload_command(), "probe", "db-pool", "--levels", "2,4,8,16,32", "--step-s", "2", *knobs,
         "--set", "REFSTACK_WEBHOOK_LOOP=false", *(arg for key, value in TEST_PORTAL_ENV.items() for arg in ("--set", f"{key}={value}")),
         "--results-dir", "out", "--run-id", "pool2"],
        cwd=cwd, env=cli_env(), capture_output=True, text=True, timeout=300)
    return done, cwd / "out" / "pool2"


@pytest.fixture(scope="session")
def short_auth_run_from_elsewhere(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    """The short auth-mode rehearsal (tests/data/scenarios/short-auth.yaml), run the way a person types it in another
    directory: `locust -f <relative locustfile> --scenario my/short-auth.yaml --results-dir out`. One ~35 s run serves
    the relative-path check (test_cli_paths) and the auth-mode check (test_conference_run).
    Returns the finished process and the run folder (`out/rel` under that directory, whose `my/` holds the scenario)."""
    cwd = tmp_path_factory.mktemp("rel") / "elsewhere"
    (cwd / "my").mkdir(parents=True)
    shutil.copy(REPO / "tests" / "data" / "scenarios" / "short-auth.yaml", cwd / "my" / "short-auth.yaml")
    locustfile = os.path.relpath(REPO / "scenarios" / "conference.py", cwd)
    assert not Path(locustfile).is_absolute()
    done = subprocess.run(
        [sys.executable, "-m", "locust", "-f", locustfile, "--headless", "--only-summary",
         "--scenario", "my/short-auth.yaml", "--results-dir", "out", "--run-id", "rel"],
        cwd=cwd, env=cli_env(), capture_output=True, text=True, timeout=300,
    )
    return done, cwd / "out" / "rel"
