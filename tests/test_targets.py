"""One target for rehearsals and probes (harness.target.targets.open_target): embedded child or --host, decided once.

Real parts: the embedded reference stack as its child process, a real restart drill, and --host pointed at that
running portal (as an operator's deployment) or at a closed loopback port.
"""

from __future__ import annotations

import pytest

from harness.clients.health import healthz
from harness.clients.tokens import ADMIN_PASSWORD_ENV_VAR, SECRET_ENV_VAR
from harness.target.targets import EmbeddedTarget, RemoteTarget, RestartUnavailable, TargetError, open_target


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    target = open_target(None, data_dir=tmp_path_factory.mktemp("embedded") / "stack")
    yield target
    target.close()


def test_without_host_the_embedded_stack_starts_with_its_secrets_and_restarts(embedded):
    assert isinstance(embedded, EmbeddedTarget) and embedded.embedded
    assert embedded.portal_url.startswith("http://127.0.0.1:") and embedded.media_api_url
    assert embedded.secret_key and embedded.admin_password
    assert embedded.secret_key not in repr(embedded) and embedded.admin_password not in repr(embedded)
    http = embedded.http(timeout_s=5.0)
    try:
        healthz(http)
        assert embedded.restart_portal() > 0.0  # the built-in drill: down, then healthy again
        healthz(http)
    finally:
        http.close()


def test_host_is_reached_as_it_is_with_the_operators_secrets(embedded, monkeypatch, tmp_path):
    monkeypatch.setenv(ADMIN_PASSWORD_ENV_VAR, embedded.admin_password)
    monkeypatch.setenv(SECRET_ENV_VAR, embedded.secret_key)
    remote = open_target(embedded.portal_url, data_dir=tmp_path / "unused")
    try:
        assert isinstance(remote, RemoteTarget) and not remote.embedded
        assert (remote.admin_password, remote.secret_key) == (embedded.admin_password, embedded.secret_key)
        assert not (tmp_path / "unused").exists()  # nothing was started for a remote target
        with pytest.raises(RestartUnavailable, match='needs --restart-cmd "..."'):
            remote.restart_portal()
    finally:
        remote.close()
    monkeypatch.delenv(SECRET_ENV_VAR)
    remote = open_target(embedded.portal_url, data_dir=tmp_path)
    assert remote.secret_key is None  # unknown: auth-mode tokens cannot be minted, and nothing pretends otherwise


@pytest.mark.parametrize("kwargs, message", [
    (dict(host="http://127.0.0.1:9"), "--host http://127.0.0.1:9 needs the target's admin password in $VOXLOAD_ADMIN_PASSWORD"),
    (dict(host="http://127.0.0.1:9", knobs={"REFSTACK_X": "1"}), "--set applies to the embedded reference stack only, not to --host"),
    (dict(host=None, restart_cmd="true"), "--restart-cmd/--media-restart-cmd apply to --host; the embedded stack restarts by itself"),
])
def test_flags_of_the_other_kind_of_target_are_one_line(monkeypatch, tmp_path, kwargs, message):
    monkeypatch.delenv(ADMIN_PASSWORD_ENV_VAR, raising=False)
    host = kwargs.pop("host")
    with pytest.raises(TargetError) as err:
        open_target(host, data_dir=tmp_path / "stack", **kwargs)
    assert str(err.value) == message
    assert not (tmp_path / "stack").exists()


def test_an_unreachable_host_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv(ADMIN_PASSWORD_ENV_VAR, "operator-secret-unreachable")
    with pytest.raises(TargetError, match=r"^--host http://127\.0\.0\.1:9 is unreachable: ") as err:
        open_target("http://127.0.0.1:9", data_dir=tmp_path)
    assert "operator-secret-unreachable" not in str(err.value)
