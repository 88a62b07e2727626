"""A deployment that lags HEAD: VoxBento 7cc5f3e (2026-08-12), before room ids entered booth ids, paths and routes
(upstream d2bee53) and before the listener page's listener-data script (6134303). Contract 15.

The smoke rehearsal and the workers probe must pass against it, and a booth socket that lands in a booth other than
the provisioned one must fail loudly: this commit parses a booth id of the newer shape (`slug-1-es`) as booth `es` of
an event `slug-1` and joins that phantom booth without any error.
"""

from __future__ import annotations

import pytest

from harness.clients.booth_ws import BoothSocket
from harness.clients.errors import BoothMismatch
from harness.errors import ExitCode
from harness.probes.event import provision
from harness.target.targets import RemoteTarget
from harness.target.voxbento import OLD_COMMIT, unavailable_reason

from .conftest import CAPTION_SLOS, explain, finding, operator_env, running_voxbento, scenario_into, verdict, voxload

if unavailable_reason(OLD_COMMIT):
    pytest.skip(f"real VoxBento {OLD_COMMIT} unavailable: {unavailable_reason(OLD_COMMIT)}", allow_module_level=True)

@pytest.fixture(scope="module")
def voxbento(tmp_path_factory):
    with running_voxbento(tmp_path_factory.mktemp("voxbento-old"), OLD_COMMIT) as stack:
        yield stack


def test_smoke_rehearsal_against_the_old_commit(voxbento, tmp_path):
    done = voxload(tmp_path, "rehearse", scenario_into(tmp_path, "real-smoke"), "--host", voxbento.portal_url,
                   "--run-id", "smoke", env=operator_env(voxbento))
    v = verdict(tmp_path, "smoke")
    slos = {s["metric"]: s for s in v["slos"]}
    failing = {m: (s["state"], s["measured"]) for m, s in slos.items() if m not in CAPTION_SLOS and s["state"] != "pass"}
    assert not failing, f"{failing}\n{explain(done, tmp_path, 'smoke')}"
    # Contract 7.3: started without the packaged model, this VoxBento's worker cannot caption (test_head_open.py
    # runs the same scenario with it): never a pass, the run is not signable.
    assert {slos[m]["state"] for m in CAPTION_SLOS} == {"no_data"}
    assert done.returncode == v["exit_code"] != ExitCode.OK, explain(done, tmp_path, "smoke")
    import json

    event = json.loads((tmp_path / "reports" / "smoke" / "event.json").read_text())
    # The ids the run used are the ones this commit hands out: no room id in them.
    for ref, booth in event["booths"].items():
        assert booth["booth_id"] == f"{event['slug']}-{ref.split('/')[1]}", event


def test_workers_probe_against_the_old_commit(voxbento, tmp_path):
    done = voxload(tmp_path, "probe", "workers", "--host", voxbento.portal_url, "--booths", "12", "--observe-s", "2",
                   "--cycles", "1", "--no-audio", "--run-id", "workers", env=operator_env(voxbento))
    assert done.returncode == ExitCode.OK, explain(done)
    f = finding(tmp_path, "workers", "workers")
    # The cap and its symptoms predate this commit (contract 7.2: 2026-06-08).
    assert f["limit"]["value"] == 10
    evidence = "\n".join(f["evidence"])
    assert "refused with 429" in evidence and "answered 500" in evidence
    # The start route has no room id here: the probe recognised the layout from the server.
    assert "/rooms/" not in f["trigger"] and f["trigger"].endswith("transcription/start -> 429"), f["trigger"]


def test_a_booth_socket_in_a_phantom_booth_fails_with_one_line(voxbento):
    target = RemoteTarget(voxbento.portal_url, voxbento.admin_password)
    event = provision(target, "phantom", 1)
    try:
        booth = event.booths[0]
        assert not event.room_scoped  # recognised from the ids this commit hands out
        newer_shape = f"{event.slug}-{event.room_id}-{booth.language}"
        # What the harness did before it took ids from the server: the old commit joins a phantom booth silently.
        blind = BoothSocket.for_portal(event.admin.http, newer_shape)
        blind.connect()
        try:
            state = blind.join("Phantom", "interpreter")
            assert state.event_slug == f"{event.slug}-{event.room_id}" != event.slug
        finally:
            blind.close()
        # The join now names its event: this commit already checks event_slug and refuses with booth:error
        # "Booth ... does not belong to event ...", which the client raises as BoothMismatch: one line naming both.
        checked = BoothSocket.for_portal(event.admin.http, newer_shape, event_slug=event.slug)
        checked.connect()
        try:
            with pytest.raises(BoothMismatch) as caught:
                checked.join("Phantom", "interpreter")
        finally:
            checked.close()
        message = str(caught.value)
        assert "does not belong to event" in message, message
        assert "\n" not in message and newer_shape in message and event.slug in message, message
    finally:
        event.teardown()
        target.close()
