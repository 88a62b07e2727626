"""The one target of rehearsals and probes: the embedded reference stack (default) or a deployment given with ``--host``.

:func:`open_target` is the one place that decides embedded vs ``--host`` (rehearsals and probes both call it). Owns
the embedded stack as a child process (``harness.target.embedded``), reaching a remote target, and the restart
drills: built in for the embedded stack, ``--restart-cmd`` / ``--media-restart-cmd`` (shell commands the operator
supplies) for a real deployment. After any restart the portal is awaited on ``/healthz``. Secrets: the embedded
admin password and JWT secret are generated for the child and handed to it through its environment; a remote
one comes from ``$VOXLOAD_ADMIN_PASSWORD`` (and ``$VOXLOAD_TARGET_SECRET_KEY``); none is ever logged.
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from ..clients.errors import ClientError, TransportError
from ..clients.health import healthz
from ..errors import VoxloadError
from ..waiting import WaitTimeout, poll_until
from . import embedded
from ..clients.http import PortalHttp
from ..clients.media_api import MediaControlApi
from ..clients.tokens import ADMIN_PASSWORD_ENV_VAR, SECRET_ENV_VAR

log = logging.getLogger(__name__)

RESTART_TIMEOUT_S = 120.0


class TargetError(VoxloadError, RuntimeError):
    """The target cannot be started, reached or restarted (one line for the CLI, exit 2)."""


class RestartUnavailable(TargetError):
    """A restart drill was asked of a remote target without the matching ``--*restart-cmd``."""


def _wait_answering(ask, what: str, timeout_s: float, poll_s: float) -> float:
    """Seconds until `ask()` stopped raising ClientError; TargetError naming `what` and the last error after `timeout_s`."""
    last: list[ClientError] = []

    def answered() -> bool:
        try:
            ask()
            return True
        except ClientError as exc:
            last[:] = [exc]
            return False

    t0 = time.monotonic()
    try:
        poll_until(answered, timeout_s, poll_s, what=what)
    except WaitTimeout:
        raise TargetError(f"{what} within {timeout_s:.0f} s: {last[0] if last else 'no answer'}") from None
    return time.monotonic() - t0


def wait_media_api(api_url: str, timeout_s: float, poll_s: float = 0.1) -> float:
    """Seconds until the media server's Control API listed its paths again (contract 12.2); TargetError after `timeout_s`."""
    api = MediaControlApi.for_url(api_url, timeout_s=2.0)
    try:
        return _wait_answering(api.paths, f"media Control API {api_url} not back", timeout_s, poll_s)
    finally:
        api.close()


def wait_healthy(portal_url: str, timeout_s: float, poll_s: float = 0.1) -> float:
    """Seconds until `/healthz` answered 200; TargetError after `timeout_s`."""
    http = PortalHttp.for_url(portal_url, timeout_s=2.0)
    try:
        return _wait_answering(lambda: healthz(http), f"{portal_url} not healthy", timeout_s, poll_s)
    finally:
        http.close()


class Target:
    """What rehearsals and probes need of a target; subclasses differ in how it runs and how restarts happen."""

    embedded = False

    def __init__(self, portal_url: str, admin_password: str, knobs: Mapping[str, str] | None = None,
                 media_url: str | None = None, media_api_url: str | None = None, secret_key: str | None = None) -> None:
        self.portal_url = portal_url.rstrip("/")
        self.media_url = media_url
        # The media server's Control API (contract 12.2), when the harness can reach it (the embedded stack's).
        self.media_api_url = media_api_url
        self.knobs = dict(knobs or {})
        self.__admin_password = admin_password
        self.__secret_key = secret_key

    @property
    def admin_password(self) -> str:
        return self.__admin_password

    @property
    def secret_key(self) -> str | None:
        """The target's JWT secret when the harness knows it (listener tokens in auth mode), else None."""
        return self.__secret_key

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.portal_url!r}, knobs={self.knobs!r}, admin_password=<redacted>)"

    def http(self, **kwargs) -> PortalHttp:
        """A new identity (own cookie jar) on the portal."""
        return PortalHttp.for_url(self.portal_url, **kwargs)

    def restart_portal(self) -> float:
        raise RestartUnavailable("this target cannot restart its portal")

    def restart_media(self) -> float:
        raise RestartUnavailable("this target cannot restart its media server")

    def close(self) -> None:
        pass

    def __enter__(self) -> Target:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class RemoteTarget(Target):
    """A deployment the operator owns; restarts run the operator's shell commands."""

    def __init__(self, portal_url: str, admin_password: str, *, restart_cmd: str | None = None,
                 media_restart_cmd: str | None = None, media_api_url: str | None = None, connect_timeout_s: float = 5.0,
                 secret_key: str | None = None) -> None:
        super().__init__(portal_url, admin_password, media_api_url=media_api_url, secret_key=secret_key)
        self._restart_cmd = restart_cmd
        self._media_restart_cmd = media_restart_cmd
        # The commands run where the operator typed them, whatever directory the process is in by then.
        self._cwd = os.getcwd()
        http = self.http(timeout_s=connect_timeout_s)
        try:
            healthz(http)
        except TransportError as exc:
            raise TargetError(f"--host {self.portal_url} is unreachable: {exc.reason}") from None
        except ClientError as exc:
            raise TargetError(f"--host {self.portal_url} does not look like a VoxBento portal: {exc}") from None
        finally:
            http.close()

    def _run(self, cmd: str | None, flag: str, media: bool = False) -> float:
        if not cmd:
            raise RestartUnavailable(f"a restart drill against --host needs {flag} \"...\"")
        t0 = time.monotonic()
        done = subprocess.run(cmd, shell=True, timeout=RESTART_TIMEOUT_S, capture_output=True, text=True, cwd=self._cwd)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()
            raise TargetError(f"{flag} exited with code {done.returncode}: {tail[-1] if tail else ''}")
        # A restart command may return before the server answers again (a killed process restarted by its supervisor,
        # `systemctl restart`): wait for the restarted server itself. The portal's /healthz says nothing about a
        # restarted media server (its mediamtx_ok is cached 5 s, contract 12.2), so that waits on the Control API when known.
        if media and self.media_api_url:
            wait_media_api(self.media_api_url, RESTART_TIMEOUT_S)
        wait_healthy(self.portal_url, RESTART_TIMEOUT_S)
        return time.monotonic() - t0

    def restart_portal(self) -> float:
        return self._run(self._restart_cmd, "--restart-cmd")

    def restart_media(self) -> float:
        return self._run(self._media_restart_cmd, "--media-restart-cmd", media=True)


class EmbeddedTarget(Target):
    """The reference stack in a child process (``harness.target.embedded``), with built-in restart drills."""

    embedded = True

    def __init__(self, data_dir: Path, knobs: Mapping[str, str] | None = None, startup_timeout_s: float = 60.0) -> None:
        self._stack = embedded.EmbeddedStack(data_dir, knobs, startup_timeout_s)
        try:
            self._stack.start()
        except embedded.EmbeddedTargetError as exc:
            raise TargetError(f"embedded reference stack: {exc}") from None
        super().__init__(self._stack.portal_url, self._stack.admin_password, knobs,
                         media_url=self._stack.media_url, media_api_url=self._stack.media_api_url, secret_key=self._stack.secret_key)

    def _drill(self, restart) -> float:
        try:
            return restart()
        except embedded.EmbeddedTargetError as exc:
            raise TargetError(f"embedded reference stack: {exc}") from None

    def restart_portal(self) -> float:
        return self._drill(self._stack.restart_portal)

    def restart_media(self) -> float:
        return self._drill(self._stack.restart_media)

    def close(self) -> None:
        self._stack.stop()


def check_target_flags(host: str | None, knobs: Mapping[str, str] | None = None, restart_cmd: str | None = None,
                       media_restart_cmd: str | None = None) -> None:
    """Flags that belong to the other kind of target: TargetError (a usage error, before anything starts)."""
    if host and knobs:
        raise TargetError("--set applies to the embedded reference stack only, not to --host")
    if not host and (restart_cmd or media_restart_cmd):
        raise TargetError("--restart-cmd/--media-restart-cmd apply to --host; the embedded stack restarts by itself")


def remote_admin_password(host: str) -> str:
    password = os.environ.get(ADMIN_PASSWORD_ENV_VAR, "")
    if not password:
        raise TargetError(f"--host {host} needs the target's admin password in ${ADMIN_PASSWORD_ENV_VAR}")
    return password


def open_target(host: str | None, *, data_dir: Path, knobs: Mapping[str, str] | None = None, restart_cmd: str | None = None,
                media_restart_cmd: str | None = None, media_api_url: str | None = None) -> Target:
    """`host` (``--host``) is a deployment reached as it is; without it the embedded stack starts under `data_dir`
    with `knobs`. TargetError (one line) when the target cannot be started or reached."""
    check_target_flags(host, knobs, restart_cmd, media_restart_cmd)
    if host:
        return RemoteTarget(host, remote_admin_password(host), restart_cmd=restart_cmd, media_restart_cmd=media_restart_cmd,
                            media_api_url=media_api_url, secret_key=os.environ.get(SECRET_ENV_VAR) or None)
    return EmbeddedTarget(data_dir, knobs)
