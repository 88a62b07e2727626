"""The contract's HEAD in auth mode (BOOTH_ACCESS_TOKEN set, contract 3.5/3.6): both provisioning modes and the probes
whose sockets change with the mode. The operator gives the harness the target's JWT secret
($VOXLOAD_TARGET_SECRET_KEY) so listeners take the embed-token path (contract 6.5), as on a real deployment."""

from __future__ import annotations

import secrets

import pytest

from harness.errors import ExitCode

from .conftest import explain, finding, operator_env, running_voxbento, scenario_into, verdict, voxload


@pytest.fixture(scope="module")
def voxbento(tmp_path_factory):
    with running_voxbento(tmp_path_factory.mktemp("voxbento-auth"), BOOTH_ACCESS_TOKEN=secrets.token_urlsafe(16)) as stack:
        yield stack


@pytest.mark.parametrize("scenario", ["short-auth", "real-auth-json"], ids=["admin-forms", "json-shortcut"])
def test_rehearsal_in_auth_mode(voxbento, tmp_path, scenario):
    done = voxload(tmp_path, "rehearse", scenario_into(tmp_path, scenario), "--host", voxbento.portal_url,
                   "--run-id", "auth", env=operator_env(voxbento, with_secret=True))
    slos = {s["metric"]: s for s in verdict(tmp_path, "auth")["slos"]}
    assert done.returncode == ExitCode.OK, explain(done, tmp_path, "auth")
    assert slos["listeners_receiving_ratio"]["observed"] == 1
    # The secrets an operator exported never reach the run folder or the console.
    for path in (tmp_path / "reports").rglob("*"):
        if path.is_file() and path.suffix in (".json", ".md", ".html", ".csv", ".xml", ".log"):
            text = path.read_text(errors="replace")
            assert voxbento.admin_password not in text and voxbento.secret_key not in text, path
    assert voxbento.booth_access_token not in done.stdout + done.stderr


def test_workers_probe_in_auth_mode(voxbento, tmp_path):
    done = voxload(tmp_path, "probe", "workers", "--host", voxbento.portal_url, "--booths", "11", "--observe-s", "1",
                   "--cycles", "1", "--no-audio", "--run-id", "workers", env=operator_env(voxbento))
    assert done.returncode == ExitCode.OK, explain(done)
    f = finding(tmp_path, "workers", "workers")
    assert f["limit"]["value"] == 10 and "answered 500" in "\n".join(f["evidence"])


def test_booth_state_restart_drill_in_auth_mode(voxbento, tmp_path):
    done = voxload(tmp_path, "probe", "booth-state", "--host", voxbento.portal_url, "--participants", "2",
                   "--no-slow-reader", "--worker-wait-s", "3", "--restart-cmd", voxbento.restart_cmd("portal"),
                   "--run-id", "booth", env=operator_env(voxbento))
    assert done.returncode == ExitCode.OK, explain(done)
    f = finding(tmp_path, "booth", "booth-state")
    # Contract 8.1: the same three pieces of memory state are lost whatever the auth mode.
    assert f["limit"]["value"] == 3, f["evidence"]
