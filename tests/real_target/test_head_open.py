"""The contract's HEAD in open mode (BOOTH_ACCESS_TOKEN empty): both rehearsals and every probe, one VoxBento.

Each command runs from its own temporary directory with relative paths, against `--host`, as an operator runs it
against a deployment. Findings are compared with the contract's verified facts ([V]).
"""

from __future__ import annotations

import csv

import pytest

from harness.errors import ExitCode

from .conftest import explain, finding, operator_env, running_voxbento, scenario_into, verdict, voxload

# Contract 7.3: the local provider loads faster-whisper on the first chunk, downloading it from the Hugging Face hub;
# offline here (HF_HUB_OFFLINE=1) no caption is ever produced, so caption SLOs have no data. The worker does read the
# booth over our relay's RTSP; tests/real_target/test_transcription_rtsp.py captions an English booth with a packaged model.
NO_CAPTIONS = ("VoxBento's local transcription provider downloads its faster-whisper model at the first audio chunk "
               "(contract 7.3); offline here, so no caption arrives for the smoke run's Spanish booth")
CAPTION_SLOS = {"caption_delay_ms"}


@pytest.fixture(scope="module")
def voxbento(tmp_path_factory):
    with running_voxbento(tmp_path_factory.mktemp("voxbento-head")) as stack:
        yield stack


@pytest.fixture(scope="module")
def smoke(voxbento, tmp_path_factory):
    cwd = tmp_path_factory.mktemp("smoke")
    done = voxload(cwd, "rehearse", scenario_into(cwd, "real-smoke"), "--host", voxbento.portal_url, "--run-id", "smoke",
                   env=operator_env(voxbento))
    return done, cwd


def _slos(v: dict) -> dict[str, dict]:
    return {s["metric"]: s for s in v["slos"]}


def test_smoke_rehearsal_meets_every_slo_that_does_not_need_captions(smoke):
    done, cwd = smoke
    v = verdict(cwd, "smoke")
    slos = _slos(v)
    failing = {m: (s["state"], s["measured"]) for m, s in slos.items() if m not in CAPTION_SLOS and s["state"] != "pass"}
    assert not failing, f"{failing}\n{explain(done, cwd, 'smoke')}"
    assert all(slos[m]["sample_count"] > 0 for m in slos if m not in CAPTION_SLOS)
    # Caption data is missing, which is never a pass: the run is not signable, and says so by its exit code.
    assert slos["caption_delay_ms"]["state"] == "no_data"
    assert done.returncode == v["exit_code"] != ExitCode.OK, explain(done, cwd, "smoke")


@pytest.mark.xfail(strict=True, reason=NO_CAPTIONS)
def test_smoke_rehearsal_caption_slo(smoke):
    done, cwd = smoke
    assert _slos(verdict(cwd, "smoke"))["caption_delay_ms"]["state"] == "pass"


def test_smoke_rehearsal_removes_its_event(smoke, voxbento):
    """keep: false: the event the run provisioned (ids as VoxBento gave them) is deleted from VoxBento's database
    afterwards. Its booths stay in VoxBento's memory registry (contract 8.1: nothing removes them but a restart), still
    unlocked: the state route answers 200 for a deleted event. That is VoxBento's behaviour, asserted so a change shows."""
    import json

    import httpx

    done, cwd = smoke
    event = json.loads((cwd / "reports" / "smoke" / "event.json").read_text())
    assert set(event["booths"]) == {"Main Hall/es", "Main Hall/fr"}, event
    assert httpx.get(f"{voxbento.portal_url}/listener/{event['slug']}", timeout=10).status_code == 404
    for ref, booth in event["booths"].items():
        language = ref.split("/")[1]
        assert booth["booth_id"] == f"{event['slug']}-{booth['room_id']}-{language}"  # contract 5.1 at HEAD
        r = httpx.get(f"{voxbento.portal_url}/api/events/{event['slug']}/booths/{language}/state",
                      params={"room_id": booth["room_id"]}, timeout=10)
        assert r.status_code == 200 and r.json()["booth_id"] == booth["booth_id"], (ref, r.status_code, r.text)
        assert r.json()["participants"] == []


def test_handover_drill_rehearsal_with_json_provisioning(voxbento, tmp_path):
    done = voxload(tmp_path, "rehearse", scenario_into(tmp_path, "real-handover"), "--host", voxbento.portal_url,
                   "--run-id", "handover", env=operator_env(voxbento))
    v = verdict(tmp_path, "handover")
    assert done.returncode == ExitCode.OK, explain(done, tmp_path, "handover")
    assert all(s["state"] == "pass" for s in v["slos"] if s["required"]), explain(done, tmp_path, "handover")
    # Requested handovers on both booths (every 7 s from 12 s), all completed.
    assert _slos(v)["handover_failure_rate"]["sample_count"] >= 4, explain(done, tmp_path, "handover")


def test_workers_probe_finds_the_cap_of_ten(voxbento, tmp_path):
    done = voxload(tmp_path, "probe", "workers", "--host", voxbento.portal_url, "--booths", "12", "--observe-s", "2",
                   "--cycles", "1", "--no-audio", "--run-id", "workers", env=operator_env(voxbento))
    assert done.returncode == ExitCode.OK, explain(done)
    f = finding(tmp_path, "workers", "workers")
    # Contract 7.2 [V]: MAX_TOTAL_WORKERS = 10; 429 from the API start route, 500 from the admin settings form.
    assert f["limit"]["value"] == 10
    assert f["trigger"].endswith("transcription/start -> 429")
    evidence = "\n".join(f["evidence"])
    assert "refused with 429" in evidence and "answered 500" in evidence
    # Contract 7.1: nothing stops a worker when its interpreter disconnects, so every slot leaks.
    assert "10 of 10 slots stayed taken" in evidence


def test_db_pool_probe_finds_a_knee(voxbento, tmp_path):
    done = voxload(tmp_path, "probe", "db-pool", "--host", voxbento.portal_url, "--levels", "2,8,24,48", "--step-s", "3",
                   "--run-id", "dbpool", env=operator_env(voxbento))
    assert done.returncode == ExitCode.OK, explain(done)
    f = finding(tmp_path, "dbpool", "db-pool")
    assert f["knee"] is not None and f["knee"]["x"] in (8.0, 24.0, 48.0), f["knee"]
    assert f["knee"]["x_column"] == "level"


def test_booth_state_probe_with_the_restart_drill(voxbento, tmp_path):
    restarts_before = voxbento.restarts["portal"]
    done = voxload(tmp_path, "probe", "booth-state", "--host", voxbento.portal_url, "--participants", "2,4",
                   "--slow-reader-s", "4", "--slow-reader-chats", "8", "--worker-wait-s", "4",
                   "--restart-cmd", voxbento.restart_cmd("portal"), "--run-id", "booth", env=operator_env(voxbento))
    assert done.returncode == ExitCode.OK, explain(done)
    assert voxbento.restarts["portal"] == restarts_before + 1  # the drill really restarted VoxBento
    rows = {r["item"]: r for r in csv.DictReader(open(tmp_path / "reports/booth/probes/booth-state/restart.csv"))}
    # Contract 8.1 [V]: registry, limiter counters and broadcast_unlocked live in memory; events and invites in the DB.
    lost = {item for item, r in rows.items() if r["lost"] == "1"}
    assert lost == {"booth registry (state route)", "join-code limiter counter", "broadcast_unlocked"}, rows
    assert rows["event, rooms and booths"]["lost"] == "0" and rows["unused invite token"]["lost"] == "0"
    f = finding(tmp_path, "booth", "booth-state")
    assert f["limit"]["value"] == 3
    # The worker never captions here: named, not counted as kept or lost.
    assert "transcription worker" not in rows
    assert any(e.startswith("transcription worker (memory): not checked") for e in f["evidence"]), f["evidence"]


def test_media_restart_probe_with_the_media_restart_command(voxbento, tmp_path):
    restarts_before = voxbento.restarts["media"]
    done = voxload(tmp_path, "probe", "media-restart", "--host", voxbento.portal_url, "--listeners", "3",
                   "--media-restart-cmd", voxbento.restart_cmd("media"), "--media-api-url", voxbento.media_api_url,
                   "--run-id", "media", env=operator_env(voxbento))
    assert done.returncode == ExitCode.OK, explain(done)
    assert voxbento.restarts["media"] == restarts_before + 1
    f = finding(tmp_path, "media", "media-restart")
    rows = {r["moment"]: r for r in csv.DictReader(open(tmp_path / "reports/media/probes/media-restart/paths.csv"))}
    # Contract 12.2 / 14.20: the restarted server lost alwaysAvailable and the portal's path cache never re-adds it.
    assert rows["before_restart"]["always_available"] == "1"
    assert rows["after_listener_page"]["always_available"] == "0"
    assert rows["relay_back"]["whep_status"] == "404"
    assert f["limit"]["value"] is not None  # every listener heard audio again


def test_security_probe(voxbento, tmp_path):
    done = voxload(tmp_path, "probe", "security", "--host", voxbento.portal_url, "--i-own-this-target", "--run-id", "sec",
                   env=operator_env(voxbento))
    assert done.returncode == ExitCode.OK, explain(done)
    f = finding(tmp_path, "sec", "security")
    evidence = set(f["evidence"])
    # Contract 10 [V]: /login 10 per e-mail, join codes 10 per IP (X-Forwarded-For trusted); /admin/login, /register none.
    assert "/login for one email (429 after 10 attempts)" in evidence
    assert "wrong listener join codes from one IP (429 after 10 attempts)" in evidence
    assert any(e.startswith("/admin/login (") and e.endswith("never a 429)") for e in evidence), evidence
    assert any(e.startswith("/register (") and e.endswith("never a 429)") for e in evidence), evidence
    assert "join code limiter bypassed by a new X-Forwarded-For" in evidence


@pytest.mark.skip(reason="VoxBento's e-mail (registration verification, magic links, invites by mail) needs SMTP, which is "
                         "off here (SMTP_HOST empty): those flows are not exercised against the real VoxBento")
def test_email_flows():
    """Named so the gap shows in every run's summary."""
