"""The real VoxBento portal, run from a checkout with its own Python environment, with our relay as its media server.

Owns: where a VoxBento install is (``$VOXLOAD_VOXBENTO_DIR``, or ``<repo>/../shared/voxbento/setup.sh`` into a cache
directory), the environment VoxBento reads (its own setting names, as ``shared/voxbento/run.sh`` sets them), and the
two processes: VoxBento's uvicorn (one process on loopback, as VoxBento deploys) and ``python -m harness.refstack.media``
(the MediaMTX-compatible relay). Both are supervised like a systemd ``Restart=always`` unit: when one exits while the
stack is up, it is started again on the same ports. That is what makes restart drills real shell commands
(``restart_cmd("portal")`` kills the process by pid and waits until it is gone) for ``--restart-cmd`` and
``--media-restart-cmd``. Used by ``voxload stack up --voxbento`` and by the conformance suite (tests/real_target).

Secrets (admin password, SECRET_KEY, BOOTH_ACCESS_TOKEN) go to the portal through its environment only; never logged.
"""

from __future__ import annotations

import enum
import logging
import os
import secrets
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from ..contract import routes
from ..refstack.stack import LOOPBACK, Stack, StackConfig, StackError, _http_ok, free_port
from ..errors import VoxloadError
from ..waiting import WaitTimeout, poll_until

log = logging.getLogger(__name__)

VOXBENTO_DIR_ENV = "VOXLOAD_VOXBENTO_DIR"
# The contract's HEAD (shared/voxbento/README.md); 7cc5f3e is the deployment ten days behind.
HEAD_COMMIT = "0c0ddc3"
OLD_COMMIT = "7cc5f3e"
REPO_ROOT = Path(__file__).resolve().parents[2]


def _shared_voxbento() -> Path:
    """`<repo>/../shared/voxbento` (CI checks out shared/ as a sibling of the repo); for a `git worktree`, the
    main checkout's sibling (its .git file names `<main>/.git/worktrees/NAME`)."""
    here = REPO_ROOT.parent / "shared" / "voxbento"
    dot_git = REPO_ROOT / ".git"
    if not here.is_dir() and dot_git.is_file():
        gitdir = dot_git.read_text().partition("gitdir:")[2].strip()
        if gitdir:
            main = Path(gitdir).resolve().parents[2]
            return main.parent / "shared" / "voxbento"
    return here


SHARED_VOXBENTO = _shared_voxbento()
# setup.sh: Python 3.13 venv from VoxBento's lock, about 30 s the first time, then instant (it is idempotent).
SETUP_TIMEOUT_S = 900.0
STARTUP_TIMEOUT_S = 120.0  # a fresh schema on a loaded 2-core machine took 39 s
# How often the supervisor looks for an exited child; a restart drill's `kill` is noticed within this.
SUPERVISE_POLL_S = 0.05


class VoxBentoUnavailable(VoxloadError, RuntimeError):
    """No VoxBento install can be found or set up here (tests skip with this one line)."""


class VoxBentoError(VoxloadError, RuntimeError):
    """VoxBento or the relay did not start, or died (one line for the CLI)."""


def unavailable_reason(commit: str | None = None, *, environ: Mapping[str, str] | None = None) -> str | None:
    """Why `locate(commit)` cannot work here, checked without setting anything up; None when it can be tried."""
    env = os.environ if environ is None else environ
    if commit is None and env.get(VOXBENTO_DIR_ENV):
        return None if Path(env[VOXBENTO_DIR_ENV]).is_dir() else f"${VOXBENTO_DIR_ENV}={env[VOXBENTO_DIR_ENV]} is not a directory"
    commit = commit or HEAD_COMMIT
    if not (SHARED_VOXBENTO / f"voxbento-{commit}.tar.gz").is_file():
        return (f"no VoxBento snapshot {commit} at {SHARED_VOXBENTO}"
                + (f" and ${VOXBENTO_DIR_ENV} is not set" if commit == HEAD_COMMIT else ""))
    return None


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "voxload"


class Layout:
    """A VoxBento install: the application directory (holding fastapi_app.py) and the Python that runs it.

    Two layouts: a ``setup.sh DEST`` (DEST/voxbento + DEST/venv) and a developer's checkout with its venv inside
    (DIR/fastapi_app.py + DIR/.venv or DIR/venv)."""

    def __init__(self, root: Path, app_dir: Path, python: Path) -> None:
        self.root = root  # the directory named by the operator (DEST or checkout)
        self.app_dir = app_dir
        self.python = python

    @classmethod
    def find(cls, root: Path) -> Layout:
        root = Path(root).expanduser().resolve()
        candidates = [(root / "voxbento", root / "venv"), (root, root / ".venv"), (root, root / "venv")]
        for app_dir, venv in candidates:
            if (app_dir / "fastapi_app.py").is_file():
                python = venv / "bin" / "python"
                if python.exists():
                    return cls(root, app_dir, python)
                missing = f"{venv}/bin/python"
                break
        else:
            raise VoxBentoUnavailable(f"{root}: not a VoxBento install (no fastapi_app.py in it or in {root}/voxbento)")
        raise VoxBentoUnavailable(f"{root}: VoxBento found but no environment to run it ({missing} missing; "
                                  f"run its setup, e.g. `uv sync`, or shared/voxbento/setup.sh)")

    @property
    def commit(self) -> str | None:
        """The short commit a setup.sh DEST was made from (its .ready file), or None for a checkout."""
        ready = self.app_dir.parent / ".ready"
        return ready.read_text().strip() if ready.is_file() else None


def locate(commit: str | None = None, *, environ: Mapping[str, str] | None = None) -> Layout:
    """The VoxBento to run. Without `commit`: $VOXLOAD_VOXBENTO_DIR when set (any VoxBento checkout with its own
    environment), else the contract's HEAD. With `commit`: that snapshot beside the repository. Snapshots are set up
    once into the cache directory (setup.sh is idempotent)."""
    env = os.environ if environ is None else environ
    if commit is None and env.get(VOXBENTO_DIR_ENV):
        return Layout.find(Path(env[VOXBENTO_DIR_ENV]))
    commit = commit or HEAD_COMMIT
    setup = SHARED_VOXBENTO / "setup.sh"
    if not (SHARED_VOXBENTO / f"voxbento-{commit}.tar.gz").is_file():
        raise VoxBentoUnavailable(unavailable_reason(commit, environ={}) or f"no VoxBento snapshot {commit}")
    dest = cache_dir() / f"voxbento-{commit}"
    if (dest / ".ready").is_file() and (dest / ".ready").read_text().strip() == commit:
        return Layout.find(dest)
    log.info("setting up VoxBento %s in %s (once)", commit, dest)
    try:
        done = subprocess.run(["bash", str(setup), str(dest), commit], capture_output=True, text=True, timeout=SETUP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise VoxBentoUnavailable(f"{setup} {dest} {commit} did not finish within {SETUP_TIMEOUT_S:.0f} s") from None
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()
        raise VoxBentoUnavailable(f"{setup} {dest} {commit} failed: {tail[-1] if tail else done.returncode}")
    return Layout.find(dest)


# Settings this module owns (loopback wiring, shared/voxbento/run.sh's list); callers cannot override them.
WIRING = frozenset({
    "PORT", "HOST", "DATABASE_URL", "PUBLIC_BASE_URL", "MEDIAMTX_WHIP_BASE", "MEDIAMTX_API_BASE", "MEDIAMTX_RTSP_BASE",
    "JITSI_BASE_URL", "JITSI_DOMAIN", "JITSI_INTERNAL_BASE", "FLOOR_BOT_BASE", "SMTP_HOST", "SMTP_USER", "SMTP_PASSWORD",
    "SUPERTONIC_BASE_URL", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY", "PYTHONUNBUFFERED",
})
# VoxBento settings an operator may pass through the environment to `voxload stack up --voxbento`.
OPERATOR_SETTINGS = ("ADMIN_PASSWORD", "SECRET_KEY", "JWT_SECRET", "BOOTH_ACCESS_TOKEN", "DEBUG", "API_KEY_ENCRYPTION_KEY")


class ProcState(enum.Enum):
    STOPPED = "stopped"
    STARTING = "starting"
    RUNNING = "running"
    RESTARTING = "restarting"  # exited while the stack was up; being started again
    FAILED = "failed"


# VoxBento's schema on a fresh SQLite file. `alembic upgrade head` stops at migration 018 on SQLite (contract 1.3),
# so, as shared/voxbento/run.sh does: tables from the models, then `alembic stamp head`.
_INIT_DB = """import asyncio, sys
sys.path.insert(0, ".")
from portal.database import init_db, dispose
async def main():
    await init_db(); await dispose()
asyncio.run(main())
"""


class VoxBentoStack:
    """The real VoxBento portal and our relay on free (or given) loopback ports, supervised until `stop()`."""

    def __init__(self, layout: Layout, data_dir: Path, *, portal_port: int | None = None, media_port: int | None = None,
                 media_api_port: int | None = None, rtsp_port: int | None = None, settings: Mapping[str, str] | None = None,
                 media_args: list[str] | None = None, startup_timeout_s: float = STARTUP_TIMEOUT_S) -> None:
        """`settings`: VoxBento's own setting names (ADMIN_PASSWORD, SECRET_KEY, BOOTH_ACCESS_TOKEN, DEBUG, ...); the
        loopback wiring (ports, database, MediaMTX URLs, nothing off the machine) is this module's and not overridable."""
        self.layout = layout
        self.data_dir = Path(data_dir).resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.host = LOOPBACK
        self.portal_port = portal_port or free_port()
        self.startup_timeout_s = startup_timeout_s
        self._settings = {k: v for k, v in (settings or {}).items() if k not in WIRING}
        self._settings["ADMIN_PASSWORD"] = self._settings.get("ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        # Known to the harness so it can mint VoxBento JWTs (contract 3.1, $VOXLOAD_TARGET_SECRET_KEY).
        self._settings["SECRET_KEY"] = self._settings.get("SECRET_KEY") or secrets.token_hex(32)
        # Fixed for the stack's life: provider keys stored encrypted stay readable across portal restarts.
        self._settings["API_KEY_ENCRYPTION_KEY"] = self._settings.get("API_KEY_ENCRYPTION_KEY") or secrets.token_hex(32)
        # Contract 3.5: a non-empty BOOTH_ACCESS_TOKEN switches VoxBento to auth mode.
        self._settings.setdefault("BOOTH_ACCESS_TOKEN", "")
        self._settings.setdefault("DEBUG", "false")
        # Where VoxBento's transcription workers read a booth's audio (MediaMTX's RTSP, 8554 there): our relay's RTSP
        # listener, on a free port unless given.
        self.rtsp_port = rtsp_port or free_port()
        self._relay = Stack(StackConfig(host=self.host, portal_port=self.portal_port,
                                        media_http_port=media_port or free_port(), media_api_port=media_api_port or free_port(),
                                        media_rtsp_port=self.rtsp_port,
                                        with_media=True, data_dir=self.data_dir, media_args=list(media_args or []),
                                        startup_timeout_s=startup_timeout_s))
        self.portal_proc: subprocess.Popen | None = None
        self.portal_state = ProcState.STOPPED
        self.media_state = ProcState.STOPPED
        self.restarts = {"portal": 0, "media": 0}
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._supervisor: threading.Thread | None = None
        self.problem: str | None = None

    def __repr__(self) -> str:
        return f"VoxBentoStack({self.portal_url!r}, app={self.layout.app_dir}, secrets=<redacted>)"

    @property
    def admin_password(self) -> str:
        return self._settings["ADMIN_PASSWORD"]

    @property
    def secret_key(self) -> str:
        return self._settings["SECRET_KEY"]

    @property
    def booth_access_token(self) -> str:
        return self._settings["BOOTH_ACCESS_TOKEN"]

    # --- addresses ---
    @property
    def portal_url(self) -> str:
        return f"http://{self.host}:{self.portal_port}"

    @property
    def media_url(self) -> str:
        return self._relay.media_http_url

    @property
    def media_api_url(self) -> str:
        return self._relay.media_api_url

    @property
    def media_proc(self) -> subprocess.Popen | None:
        return self._relay.media_proc

    @property
    def db_path(self) -> Path:
        return self.data_dir / "voxbento.db"

    # --- states ---
    def _set_state(self, which: str, new: ProcState) -> None:
        old = getattr(self, f"{which}_state")
        if old is not new:
            log.info("voxbento %s: %s -> %s", which, old.value, new.value)
            setattr(self, f"{which}_state", new)

    # --- environment ---
    def portal_env(self) -> dict[str, str]:
        """VoxBento's own settings (as shared/voxbento/run.sh sets them): loopback only, our relay as MediaMTX,
        nothing off the machine (Jitsi and the floor bot on unused loopback ports, SMTP off, model hubs offline)."""
        # Our PYTHONPATH and virtualenv must not leak into VoxBento's interpreter.
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
        relay = self._relay
        env.update(self._settings)
        env.update({
            "PORT": str(self.portal_port), "HOST": self.host,
            "DATABASE_URL": f"sqlite+aiosqlite:///{self.db_path}",
            "PUBLIC_BASE_URL": self.portal_url,
            "MEDIAMTX_WHIP_BASE": relay.media_http_url, "MEDIAMTX_API_BASE": relay.media_api_url,
            # Contract 7.1: workers run `ffmpeg -rtsp_transport tcp -i {MEDIAMTX_RTSP_BASE}/{path}` against our relay.
            "MEDIAMTX_RTSP_BASE": relay.media_rtsp_url,
            "JITSI_BASE_URL": "http://127.0.0.1:8080", "JITSI_DOMAIN": "127.0.0.1:8080",
            "JITSI_INTERNAL_BASE": "http://127.0.0.1:8080", "FLOOR_BOT_BASE": "http://127.0.0.1:8081",
            "SMTP_HOST": "", "SMTP_USER": "", "SMTP_PASSWORD": "", "SUPERTONIC_BASE_URL": "",
            "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "PYTHONUNBUFFERED": "1",
        })
        return env

    # --- lifecycle ---
    def start(self) -> VoxBentoStack:
        self._stopping.clear()
        try:
            self._relay.check_ports()
            self._set_state("media", ProcState.STARTING)
            self._relay.media_proc = self._relay._spawn_media()
            self._set_state("portal", ProcState.STARTING)
            self._init_schema()
            self.portal_proc = self._spawn_portal()
            self._wait_media()
            self._wait_portal()
        except BaseException:
            self.stop()
            raise
        self._supervisor = threading.Thread(target=self._supervise, name="voxbento-supervisor", daemon=True)
        self._supervisor.start()
        return self

    def _init_schema(self) -> None:
        if self.db_path.exists() and self.db_path.stat().st_size > 0:
            return
        env = self.portal_env()
        with self._log("portal") as out:
            for cmd in ([str(self.layout.python), "-c", _INIT_DB], [str(self.layout.python), "-m", "alembic", "stamp", "head"]):
                done = subprocess.run(cmd, cwd=self.layout.app_dir, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=120)
                if done.returncode != 0:
                    raise VoxBentoError(f"VoxBento schema set-up ({' '.join(cmd[1:3])}) exited with code {done.returncode} "
                                        f"(log in {self.data_dir / 'portal.log'})")

    def _log(self, name: str):
        return open(self.data_dir / f"{name}.log", "ab")

    def _spawn_portal(self) -> subprocess.Popen:
        # One uvicorn process on loopback, as VoxBento deploys (and as its run.sh runs it).
        cmd = [str(self.layout.python), "-m", "uvicorn", "fastapi_app:app", "--host", self.host, "--port", str(self.portal_port)]
        with self._log("portal") as out:
            proc = subprocess.Popen(cmd, cwd=self.layout.app_dir, env=self.portal_env(), stdout=out, stderr=subprocess.STDOUT)
        (self.data_dir / "portal.pid").write_text(f"{proc.pid}\n")
        return proc

    def _wait(self, name: str, proc_of, port: int, path: str) -> None:
        def answered() -> bool:
            if self._stopping.is_set() and self._supervisor is not None:
                raise VoxBentoError(f"{name}: stopped while starting")  # Ctrl-C during a supervised restart
            proc = proc_of()
            if proc is None or proc.poll() is not None:
                code = None if proc is None else proc.returncode
                raise VoxBentoError(f"{name} exited with code {code} during startup: {self._log_tail(name)}")
            return _http_ok(self.host, port, path)

        try:
            poll_until(answered, self.startup_timeout_s, 0.05, what=f"{name} answering {path}")
        except WaitTimeout:
            raise VoxBentoError(f"{name} did not answer http://{self.host}:{port}{path} within {self.startup_timeout_s:.0f} s "
                                f"(log in {self.data_dir / (name + '.log')})") from None

    def _wait_portal(self) -> None:
        self._wait("portal", lambda: self.portal_proc, self.portal_port, routes.HEALTHZ.path())
        self._set_state("portal", ProcState.RUNNING)

    def _wait_media(self) -> None:
        self._wait("media", lambda: self._relay.media_proc, self._relay.config.media_api_port, routes.MEDIAMTX_PATHS_LIST.path())
        (self.data_dir / "media.pid").write_text(f"{self._relay.media_proc.pid}\n")
        self._set_state("media", ProcState.RUNNING)

    def _log_tail(self, name: str) -> str:
        path = self.data_dir / f"{name}.log"
        lines = path.read_text(errors="replace").strip().splitlines() if path.exists() else []
        return lines[-1] if lines else "(empty log)"

    def _supervise(self) -> None:
        """Restart=always: a child that exits while the stack is up is started again (restart drills kill by pid)."""
        while not self._stopping.wait(SUPERVISE_POLL_S):
            with self._lock:
                if self._stopping.is_set():
                    return
                try:
                    if self.portal_proc is not None and self.portal_proc.poll() is not None:
                        self._set_state("portal", ProcState.RESTARTING)
                        self.restarts["portal"] += 1
                        self.portal_proc = self._spawn_portal()
                        self._wait_portal()
                    media = self._relay.media_proc
                    if media is not None and media.poll() is not None:
                        self._set_state("media", ProcState.RESTARTING)
                        self.restarts["media"] += 1
                        self._relay.media_proc = self._relay._spawn_media()
                        self._wait_media()
                except VoxBentoError as exc:
                    if self._stopping.is_set():
                        return
                    self.problem = str(exc)
                    self._set_state("portal" if "portal" in str(exc) else "media", ProcState.FAILED)
                    return

    def restart_cmd(self, which: str) -> str:
        """A shell command that restarts `which` ("portal" or "media") as an operator's would: it kills the process
        named in its pid file and returns once that process is gone; the supervisor starts it again."""
        pidfile = shlex.quote(str(self.data_dir / f"{which}.pid"))
        return (f"p=$(cat {pidfile}) && kill $p && "
                f"while kill -0 $p 2>/dev/null && [ \"$(cat {pidfile})\" = \"$p\" ]; do sleep 0.05; done")

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            if self.portal_proc is not None:
                Stack._terminate(self.portal_proc)
            self._relay.stop()
        if self._supervisor is not None and self._supervisor is not threading.current_thread():
            self._supervisor.join(timeout=5)
        self._set_state("portal", ProcState.STOPPED)
        self._set_state("media", ProcState.STOPPED)

    def __enter__(self) -> VoxBentoStack:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    """`python -m harness.target.voxbento [COMMIT]`: set up (once) and print the install's directory."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        layout = locate(argv[0] if argv else None)
    except VoxBentoUnavailable as exc:
        print(f"voxbento: {exc}", file=sys.stderr)
        return 2
    print(layout.app_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
