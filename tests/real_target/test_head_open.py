"""The contract's HEAD in open mode (BOOTH_ACCESS_TOKEN empty): both rehearsals and every probe, one VoxBento.

Each command runs from its own temporary directory with relative paths, against `--host`, as an operator runs it
against a deployment. Findings are compared with the contract's verified facts ([V]).
"""

from __future__ import annotations

import csv
import json

import pytest
from selectolax.lexbor import LexborHTMLParser as HTMLParser

from harness.browser.chromium import unavailable_reason as chromium_unavailable
from harness.results.browser_files import read_canaries
from harness.errors import ExitCode
from harness.results.run_folder import read_samples

from .conftest import (CAPTION_SLOS, explain, finding, offline_model_settings, operator_env, running_voxbento, scenario_into,
                       verdict, voxload)

BROWSER_SLOS = ("browser_mouth_to_ear_latency_ms", "browser_jitter_buffer_delay_ms", "browser_concealed_pct",
                "browser_listeners_receiving_ratio")
# What the listener page at 0c0ddc3 throws every 3 s (issue 13: the room's audio delay never reaches listeners).
LISTENER_PAGE_ERROR = "ReferenceError: updateRoomDelayData is not defined"
# How long the restart drill waits for the transcription worker's first caption: a cold worker loads Whisper at its
# first audio chunk (the smoke run's first captions took 7-13 s on this 2-core box). A wait, not a timed assertion.
WORKER_WAIT_S = 45


# Contract 7.3: the local provider loads faster-whisper's model on the first audio chunk from the Hugging Face hub,
# offline here; harness/target/offline_models.py gives it the packaged Whisper tiny.en instead, so the smoke run's
# English booth is captioned by a real recogniser. Without that package no caption can arrive.
@pytest.fixture(scope="module")
def voxbento(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("voxbento-head")
    settings, no_model = offline_model_settings(tmp / "hf-hub")
    with running_voxbento(tmp / "stack", **settings) as stack:
        stack.no_model = no_model  # why captions cannot be judged, or None
        yield stack


@pytest.fixture(scope="module")
def smoke(voxbento, tmp_path_factory):
    cwd = tmp_path_factory.mktemp("smoke")
    done = voxload(cwd, "rehearse", scenario_into(cwd, "real-smoke"), "--host", voxbento.portal_url, "--run-id", "smoke",
                   env=operator_env(voxbento))
    return done, cwd


def _slos(v: dict) -> dict[str, dict]:
    return {s["metric"]: s for s in v["slos"]}


def booth_id(cwd, ref: str) -> str:
    """The id VoxBento gave the run's booth ROOM/LANG (event.json, written by the run's provisioning)."""
    return json.loads((cwd / "reports" / "smoke" / "event.json").read_text())["booths"][ref]["booth_id"]


def test_smoke_rehearsal_meets_every_slo(smoke, voxbento):
    done, cwd = smoke
    v = verdict(cwd, "smoke")
    slos = _slos(v)
    judged = {m: s for m, s in slos.items() if not (voxbento.no_model and m in CAPTION_SLOS)}
    failing = {m: (s["state"], s["measured"]) for m, s in judged.items() if s["state"] != "pass"}
    assert not failing, f"{failing}\n{explain(done, cwd, 'smoke')}"
    assert all(s["sample_count"] > 0 for s in judged.values()), explain(done, cwd, "smoke")
    if voxbento.no_model:
        # Caption data is missing, which is never a pass: the run is not signable, and says so by its exit code.
        assert {slos[m]["state"] for m in CAPTION_SLOS} == {"no_data"}
        assert done.returncode == v["exit_code"] != ExitCode.OK, explain(done, cwd, "smoke")
        pytest.skip(f"captions not checked: {voxbento.no_model}")
    assert done.returncode == v["exit_code"] == ExitCode.OK, explain(done, cwd, "smoke")


def test_smoke_rehearsal_captions_the_english_booth_with_a_speech_recogniser(smoke, voxbento):
    """VoxBento's worker reads the booth over the relay's RTSP and its Whisper captions (partial and final, contract
    6.3/7.4) are matched with the corpus transcript: delays and word error rate have data from the speech recogniser."""
    if voxbento.no_model:
        pytest.skip(voxbento.no_model)
    done, cwd = smoke
    slos = _slos(verdict(cwd, "smoke"))
    for metric in CAPTION_SLOS:
        assert slos[metric]["state"] == "pass" and slos[metric]["sample_count"] > 0, (metric, explain(done, cwd, "smoke"))
    # The recogniser is tagged on every caption sample, and it is the speech one (not the marker stand-in).
    samples = read_samples(cwd / "reports" / "smoke")
    captions = samples[samples["metric"].isin(sorted(CAPTION_SLOS))]
    assert set(captions["recogniser"]) == {"speech"}, captions["recogniser"].value_counts()
    assert set(captions["booth"]) == {booth_id(cwd, "Main Hall/en")}
    report = HTMLParser((cwd / "reports" / "smoke" / "report.html").read_text()).body.text()
    rows = [line.strip() for line in report.splitlines() if "captioned by" in line]
    assert any(r.startswith("Booth Main Hall/en, captioned by a speech recogniser:") and "word error rate" in r
               for r in rows), rows
    assert not any("stand-in" in r or "Main Hall/fr" in r for r in rows), rows


def test_smoke_rehearsal_browser_canaries_beside_the_synthetic_peers(smoke):
    """One canary listener on VoxBento's own listener page and one canary interpreter on its booth page (issue 13):
    browser metrics with data, browser and synthetic side by side, and the listener page's error in plain words."""
    if chromium_unavailable():
        pytest.skip(f"browser canaries not checked: {chromium_unavailable()}")
    done, cwd = smoke
    run = cwd / "reports" / "smoke"
    slos = _slos(verdict(cwd, "smoke"))
    for metric in BROWSER_SLOS:
        assert slos[metric]["state"] == "pass" and slos[metric]["sample_count"] > 0, (metric, explain(done, cwd, "smoke"))
    assert slos["browser_listeners_receiving_ratio"]["observed"] == 1
    canaries = read_canaries(run)
    assert set(canaries) == {"l0", "i0"}, sorted(canaries)
    # The listener canary played through VoxBento's own page player (not the canary's stand-in player).
    assert [e["player"] for e in canaries["l0"]["events"] if e["event"] == "player"] == ["page"]
    # The canary interpreter reached VoxBento's booth page through its invite: the booth-page read-back works there.
    interpreter = canaries["i0"]["events"]
    assert any(e["event"] == "state" and e["new"] == "waiting_audio" and "/interpreter/" in (e["detail"] or "")
               for e in interpreter), interpreter
    assert not [e for e in interpreter if e["event"] == "error"], interpreter
    section = HTMLParser((run / "report.html").read_text()).css_first("#browser")
    assert section is not None
    booth = canaries["l0"]["seconds"][0]["booth"]
    calibration = section.css_first(f"tr.calibration-row[data-booth='{booth}']")
    assert calibration is not None, section.html[:3000]
    assert calibration.text().count("ms") >= 4 and "no data" not in calibration.text().split("ms")[0], calibration.text()
    problems = [li.text() for li in section.css("li.page-problem")]
    assert any(LISTENER_PAGE_ERROR in p for p in problems), problems
    assert "Browser canaries:" in (run / "summary.md").read_text()


def test_smoke_rehearsal_removes_its_event(smoke, voxbento):
    """keep: false: the event the run provisioned (ids as VoxBento gave them) is deleted from VoxBento's database
    afterwards. Its booths stay in VoxBento's memory registry (contract 8.1: nothing removes them but a restart), still
    unlocked: the state route answers 200 for a deleted event. That is VoxBento's behaviour, asserted so a change shows."""
    import httpx

    done, cwd = smoke
    event = json.loads((cwd / "reports" / "smoke" / "event.json").read_text())
    assert set(event["booths"]) == {"Main Hall/en", "Main Hall/fr"}, event
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
    done = voxload(tmp_path, "probe", "db-pool", "--host", voxbento.portal_url, "--levels", "1,8,24,48", "--step-s", "3",
                   "--run-id", "dbpool", env=operator_env(voxbento))
    assert done.returncode == ExitCode.OK, explain(done)
    f = finding(tmp_path, "dbpool", "db-pool")
    assert f["knee"] is not None and f["knee"]["x"] in (8.0, 24.0, 48.0), f["knee"]
    assert f["knee"]["x_column"] == "level"


def test_booth_state_probe_with_the_restart_drill(voxbento, tmp_path):
    restarts_before = voxbento.restarts["portal"]
    done = voxload(tmp_path, "probe", "booth-state", "--host", voxbento.portal_url, "--participants", "2,4",
                   "--slow-reader-s", "4", "--slow-reader-chats", "8", "--worker-wait-s", str(WORKER_WAIT_S),
                   "--restart-cmd", voxbento.restart_cmd("portal"), "--run-id", "booth", env=operator_env(voxbento))
    assert done.returncode == ExitCode.OK, explain(done)
    assert voxbento.restarts["portal"] == restarts_before + 1  # the drill really restarted VoxBento
    rows = {r["item"]: r for r in csv.DictReader(open(tmp_path / "reports/booth/probes/booth-state/restart.csv"))}
    # Contract 8.1 [V]: registry, limiter counters and broadcast_unlocked live in memory; events and invites in the DB.
    lost = {item for item, r in rows.items() if r["lost"] == "1"}
    f = finding(tmp_path, "booth", "booth-state")
    if voxbento.no_model is None:
        # With the packaged Whisper model the worker captions before the restart (once its model has loaded: cold,
        # that took longer than the 4 s this test used to wait, warm after the smoke run it did not, so the outcome
        # depended on test order). Contract 8.1: the worker registry is process memory, so the restart loses it.
        assert lost == {"booth registry (state route)", "join-code limiter counter", "broadcast_unlocked",
                        "transcription worker"}, rows
        assert (rows["transcription worker"]["before"], rows["transcription worker"]["after"]) == ("captions flowing", "no captions")
    else:
        # Without a model the worker never captions: named, not counted as kept or lost.
        assert lost == {"booth registry (state route)", "join-code limiter counter", "broadcast_unlocked"}, rows
        assert "transcription worker" not in rows
        assert any(e.startswith("transcription worker (memory): not checked") for e in f["evidence"]), f["evidence"]
    assert rows["event, rooms and booths"]["lost"] == "0" and rows["unused invite token"]["lost"] == "0"
    assert f["limit"]["value"] == (4 if voxbento.no_model is None else 3)  # the memory items lost, all of them


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
