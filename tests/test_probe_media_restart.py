"""The media-restart probe and its reconnecting actors, against real reference stacks (portal + media relay).

- ``Backoff`` walks contract 6.2 step 3 exactly (100 ms, x1.5, cap 8000 ms, reset after success).
- A listener actor in this process, on a real relay: a stalled relay (sessions up, no packets) is detected as
  silence within a few seconds and the actor reconnects; its whole state sequence is asserted.
- The probe through the real CLI: the relay restart drops every listener and the publisher, the path loses
  ``alwaysAvailable`` (Control API before/after, and a WHEP answered 404 while the publisher is away), every
  listener's attempts follow the back-off schedule, and every listener hears audio again.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from harness.media.bridge import MediaBridge
from harness.probes.reconnect import ActorState, Backoff, DeathCause, ReconnectActor, Role

REPO = Path(__file__).resolve().parents[1]
S = ActorState


def rows(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_backoff_is_the_browsers_whep_schedule():
    backoff = Backoff()
    delays = [backoff.next_delay_ms() for _ in range(13)]
    assert delays[:4] == [100.0, 150.0, 225.0, 337.5]
    assert delays[10] == 100.0 * 1.5 ** 10 and delays[11] == delays[12] == 8000.0  # 100 x 1.5^11 > 8000: capped
    assert all(b == min(a * 1.5, 8000.0) for a, b in zip(delays, delays[1:]))
    backoff.reset()
    assert backoff.next_delay_ms() == 100.0


def test_listener_actor_detects_a_silent_session_and_reconnects(stack, tmp_path):
    whip = f"{stack.media_http_url}/drill/1/es/whip"
    whep = f"{stack.media_http_url}/drill/1/es/whep"
    actors: dict[str, ReconnectActor] = {}

    def on_stats(record: dict) -> None:
        for group in record["groups"]:
            if group["booth"] in actors and group["sessions"]:
                actors[group["booth"]].on_interval_packets(group["packets"])

    def on_event(data: dict) -> None:
        if data.get("booth") in actors:
            actors[data["booth"]].on_disconnected(data["handle"])

    attempts = []
    faults = f"{stack.media_api_url}/v3/refstack/faults"
    with MediaBridge(tmp_path / "media", engines=1, on_stats=on_stats, on_event=on_event) as bridge:
        publisher = bridge.publish(whip, "publisher")
        actor = ReconnectActor("listener-1", Role.LISTENER, whep, bridge, attempts.append)
        actors[actor.key] = actor
        actor.start()
        try:
            assert actor.wait_live(20.0)
            # The relay keeps every session up but forwards nothing: no `disconnected` event will come.
            assert httpx.post(faults, json={"stall": True}).status_code == 200
            deadline = time.monotonic() + 10.0
            while not actor.statistics().deaths and time.monotonic() < deadline:
                time.sleep(0.1)
            assert httpx.post(faults, json={"stall": False}).status_code == 200
            deadline = time.monotonic() + 20.0
            while actor.statistics().successes < 2 and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            actor.stop()
            bridge.close(publisher)
    stats = actor.statistics()
    assert [d.cause for d in stats.deaths] == [DeathCause.SILENCE]
    assert stats.successes == 2
    # Silence is two silent engine intervals: detected within a few seconds, not after an ICE timeout.
    assert stats.deaths[0].t_s - stats.live_since_s[0] < 8.0
    first_retry = next(a for a in attempts if a.t_s > stats.deaths[0].t_s)
    assert (first_retry.number, first_retry.delay_ms) == (1, 100.0)
    assert actor.transitions[:3] == [(S.NEW, S.CONNECTING), (S.CONNECTING, S.LIVE), (S.LIVE, S.BACKING_OFF)]
    assert actor.transitions[-2:] == [(S.CONNECTING, S.LIVE), (S.LIVE, S.STOPPED)]
    assert set(actor.transitions[3:-2]) <= {(S.BACKING_OFF, S.CONNECTING), (S.CONNECTING, S.BACKING_OFF)}


def test_media_restart_probe_finds_lost_paths_recovery_and_the_storm(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "harness", "probe", "media-restart", "--results-dir", str(tmp_path), "--run-id", "m",
         "--set", "REFSTACK_BCRYPT_ROUNDS=4", "--listeners", "4", "--republish-delay-s", "3"],
        capture_output=True, text=True, timeout=240, cwd=REPO)
    assert done.returncode == 0, done.stderr
    probe_dir = tmp_path / "m" / "probes" / "media-restart"
    finding = json.loads((probe_dir / "finding.json").read_text())
    assert finding["probe"] == "media-restart" and "\n" not in finding["paragraph"]
    for data in finding["data"]:
        assert set(data["columns"]) <= set(next(csv.reader(open(probe_dir / data["file"], newline=""))))

    # Contract 12.2 / 14.20: the path had alwaysAvailable, the restarted relay has no configuration for it, and
    # the portal's cached ensure-path does not re-add it on the next listener page.
    paths = {r["moment"]: r for r in rows(probe_dir / "paths.csv")}
    assert (paths["before_restart"]["configured"], paths["before_restart"]["always_available"]) == ("1", "1")
    assert (paths["relay_back"]["configured"], paths["after_listener_page"]["always_available"]) == ("0", "0")
    assert paths["relay_back"]["publisher_live"] == "0" and paths["relay_back"]["whep_status"] == "404"
    assert paths["publisher_back"]["conf_name"] == "all_others"
    assert "alwaysAvailable lost" in finding["paragraph"] and finding["severity"] == "critical"

    recovery = {r["actor"]: r for r in rows(probe_dir / "recovery.csv")}
    assert set(recovery) == {"publisher", "listener-1", "listener-2", "listener-3", "listener-4"}
    assert all(r["died_s"] and r["recovered_s"] for r in recovery.values())
    assert all(float(recovery[a]["recovered_s"]) >= float(recovery["publisher"]["recovered_s"]) for a in recovery)
    assert finding["limit"]["value"] == max(float(r["recovered_s"]) for n, r in recovery.items() if n != "publisher")

    # Contract 6.2 step 3: after the death every listener retries at 100, 150, 225, ... ms until it succeeds.
    attempts = [r for r in rows(probe_dir / "attempts.csv") if r["role"] == "listener" and r["after_restart_s"]]
    for name in ("listener-1", "listener-4"):
        mine = [r for r in attempts if r["actor"] == name]
        assert [float(r["delay_ms"]) for r in mine] == pytest.approx([100.0 * 1.5 ** i for i in range(len(mine))], abs=0.001)
        assert [r["ok"] for r in mine] == ["0"] * (len(mine) - 1) + ["1"]
        assert {r["outcome"] for r in mine[:-1]} <= {"post", "http_404"} and "http_404" in {r["outcome"] for r in mine}
    storm = rows(probe_dir / "storm.csv")
    assert sum(int(r["attempts"]) for r in storm) == len(attempts)
    assert max(int(r["attempts"]) for r in storm) == 4  # the four listeners retry in lock step
