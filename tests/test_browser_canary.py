"""A real headless Chromium canary playing a booth through the reference relay, beside a synthetic probe listener.

Real parts only: the relay subprocess, an aiortc publisher and probe listener in a media engine process, and a
canary process driving Debian's Chromium through Playwright (harness/browser/fleet.py, as a rehearsal starts it).
Skips with one line when Chromium or Playwright is missing.
"""

from __future__ import annotations

import os
import statistics
import threading
import time

import httpx
import pytest

from harness.browser import pagelog
from harness.browser.chromium import unavailable_reason
from harness.results.browser_files import read_canaries, read_status
from harness.browser.fleet import CanaryFleet
from harness.media.bridge import MediaBridge

CHROMIUM_MISSING = unavailable_reason()
pytestmark = pytest.mark.skipif(CHROMIUM_MISSING is not None, reason=CHROMIUM_MISSING or "")

PLAYING_SECONDS = 10  # seconds of playback to measure, however long Chromium takes to start on a busy machine
STEADY_AFTER_PLAYING_S = 3  # NetEq starts deep and adapts within a few seconds: markers after these count as steady
STEADY_MARKER_SAMPLES = 8  # steady-state marker latencies the comparison with the probe needs
START_DEADLINE_S = 90.0


class ProbeStats:
    def __init__(self) -> None:
        self.records: list[dict] = []
        self._lock = threading.Lock()

    def on_stats(self, record: dict) -> None:
        with self._lock:
            self.records.append(record)

    def marker_latencies_ms(self, booth: str, since_epoch_s: float) -> list[float]:
        with self._lock:
            return [g["marker_latency_ms"]["p50"] for r in self.records if r["t_epoch_s"] >= since_epoch_s for g in r["groups"]
                    if g["booth"] == booth and g["role"] == "probe" and g.get("marker_latency_ms")]


def add_path(relay, path: str) -> None:
    response = httpx.post(f"{relay.media_api_url}/v3/config/paths/add/{path}", json={"alwaysAvailable": True})
    assert response.status_code == 200, response.text


def _steady_marker_ms(playing: list[dict]) -> list[float]:
    if len(playing) <= STEADY_AFTER_PLAYING_S:
        return []
    steady_s = playing[STEADY_AFTER_PLAYING_S]["t_epoch_s"]
    return [x for s in playing if s["t_epoch_s"] > steady_s for x in s["latencies_ms"]]


def _measured_enough(playing: list[dict]) -> bool:
    return len(playing) >= PLAYING_SECONDS and len(_steady_marker_ms(playing)) >= STEADY_MARKER_SAMPLES


def test_chromium_plays_a_booth_through_the_relay(relay, tmp_path):
    path, booth = "canary/1/es", "canary-1-es"
    add_path(relay, path)
    probe_stats = ProbeStats()
    fleet = CanaryFleet(tmp_path)
    with MediaBridge(tmp_path / "media", engines=1, on_stats=probe_stats.on_stats) as bridge:
        publisher = bridge.publish(f"{relay.media_http_url}/{path}/whip", booth)
        bridge.listen(f"{relay.media_http_url}/{path}/whep", booth, probe=True)
        canary = fleet.start("l0", {"role": "listener", "booth_id": booth, "whep_url": f"{relay.media_http_url}/{path}/whep"})
        fleet.add_schedule(booth, publisher.schedule)
        deadline = time.monotonic() + START_DEADLINE_S
        # Play until both are there: PLAYING_SECONDS seconds, and enough steady-state marker samples (a busy 2-core
        # machine drops the odd marker second, so 10 s alone sometimes held fewer than the comparison needs).
        while not _measured_enough(playing := [s for s in read_canaries(tmp_path).get("l0", {}).get("seconds", []) if s["state"] == "playing"]):
            assert canary.proc.poll() is None, "the canary died"
            assert time.monotonic() < deadline, (f"in {START_DEADLINE_S:.0f} s the canary played {len(playing)} s with "
                                                 f"{len(_steady_marker_ms(playing))} steady-state marker samples")
            time.sleep(0.5)
        fleet.stop()
    assert canary.exit_code == 0

    data = read_canaries(tmp_path)["l0"]
    seconds = data["seconds"]
    playing = [s for s in seconds if s["state"] == "playing"]
    assert len(playing) >= PLAYING_SECONDS, [s["state"] for s in seconds]
    # Packets received at about the publisher's 50 packets/s, none lost on loopback.
    packets = sum(s["packets"] for s in seconds)
    assert packets >= 0.8 * 50 * len(playing), packets
    assert sum(s["lost"] for s in seconds) == 0
    assert all((s["concealed_pct"] or 0) < 5 for s in playing[1:])
    jbd = [s["jitter_buffer_delay_ms"] for s in playing if s["jitter_buffer_delay_ms"] is not None]
    assert jbd and 0 < statistics.median(jbd) < 200

    # Mouth-to-ear from the markers in what Chromium played: present, plausible, and in steady state (NetEq
    # starts deep and adapts within a few seconds) below the synthetic probe's decoded figure over the same
    # seconds (that one includes aiortc's fixed 80 ms jitter-buffer prefetch).
    assert any(s["latencies_ms"] for s in playing[:3])
    steady_s = playing[STEADY_AFTER_PLAYING_S]["t_epoch_s"]
    browser_ms = _steady_marker_ms(playing)
    assert len(browser_ms) >= STEADY_MARKER_SAMPLES, browser_ms
    probe_ms = probe_stats.marker_latencies_ms(booth, steady_s)
    assert probe_ms, "the synthetic probe measured no marker latency"
    assert 0 < statistics.median(browser_ms) < statistics.median(probe_ms), (browser_ms, probe_ms)

    events = data["events"]
    assert [e for e in events if e["event"] == "player"][0]["player"] == "canary"
    whep = [e for e in events if e["event"] == "whep_post"]
    assert [e["status"] for e in whep] == [201]
    # A listener without microphone permission: its offer's host candidates are mDNS names only, and the relay
    # still connected (ICE answered through the peer's actual address).
    assert whep[0]["offer_candidates"]["host"] >= 1
    assert whep[0]["offer_candidates"]["mdns"] == whep[0]["offer_candidates"]["host"], whep[0]
    first_audio = [e for e in events if e["event"] == "first_audio"]
    assert first_audio and 0 < first_audio[0]["pick_to_first_audio_ms"] <= first_audio[0]["page_to_first_audio_ms"] < 30_000
    assert [e["new"] for e in events if e["event"] == "state"] == ["loading", "waiting_audio", "playing", "stopped"]
    # Cost of one canary is measured every second.
    health = [s["health"] for s in seconds[1:]]
    assert all(h["rss_mb"] > 50 and h["processes"] >= 3 for h in health)
    assert any((h["cpu_pct"] or 0) > 0 for h in health)
    assert data["page"] == []  # a blank page of the relay's origin: nothing to complain about
    assert [s["kind"] for s in read_status(tmp_path)] == ["started"]


def test_page_problems_are_recorded_and_summarised(tmp_path):
    """A page that throws every 200 ms, logs console errors, fetches a 404 and a host outside the machine."""
    from harness.refstack.stack import free_port
    import http.server
    import socketserver

    html = b"""<!doctype html><script>
      setInterval(() => { updateRoomDelayData(); }, 200);
      console.error('boom ' + Date.now());
      fetch('/missing.json');
      fetch('https://cdn.example.invalid/x.js').catch(() => {});
    </script>"""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            if self.path.startswith("/listener"):
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.end_headers()
                self.wfile.write(html)
            else:
                self.send_response(404)
                self.end_headers()

        def log_message(self, *args):
            pass

    port = free_port()
    server = socketserver.ThreadingTCPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        fleet = CanaryFleet(tmp_path)
        canary = fleet.start("l0", {"role": "listener", "booth_id": "x-1-es", "listener_url": f"http://127.0.0.1:{port}/listener/x",
                                    "join_code": "SECRET", "room_name": "Main", "language": "es", "select_timeout_s": 2})
        canary.proc.wait(timeout=60)  # no room select on this page: the canary fails, saying why
        fleet.stop()
    finally:
        server.shutdown()
    assert canary.exit_code == 3
    data = read_canaries(tmp_path)["l0"]
    errors = [e for e in data["events"] if e["event"] == "error"]
    assert errors and "room-select" in errors[0]["error"]
    rows = pagelog.summarise(data["page"])
    by_kind = {r["kind"]: r for r in rows}
    thrown = by_kind["uncaught_exception"]
    assert thrown["text"] == "ReferenceError: updateRoomDelayData is not defined"
    assert thrown["count"] >= 3 and thrown["first_epoch_s"] <= thrown["last_epoch_s"]
    assert by_kind["console_error"]["count"] == 1  # one row, although each text carries a different timestamp
    assert by_kind["http_error"]["url"].endswith("/missing.json")
    assert by_kind["blocked"]["url"] == "https://cdn.example.invalid/x.js"
    assert rows[-1]["kind"] == "blocked"  # the canary's own doing comes last
    assert "SECRET" not in (tmp_path / "browser" / "canary-l0.log").read_text()


def test_a_booth_that_never_plays_counts_as_not_receiving_and_a_dead_canary_is_said(relay, tmp_path):
    """Hostile cases: a WHEP URL the relay answers 404, and a canary killed mid-run. Neither reads as a pass."""
    import signal

    from harness.results.measures import browser_metrics

    fleet = CanaryFleet(tmp_path)
    lost = fleet.start("l0", {"role": "listener", "booth_id": "none-1-es", "whep_url": f"{relay.media_http_url}/no/such/path/whep"})
    killed = fleet.start("l1", {"role": "listener", "booth_id": "none-1-es", "whep_url": f"{relay.media_http_url}/no/such/path/whep"})
    deadline = time.monotonic() + START_DEADLINE_S
    while not [e for e in read_canaries(tmp_path).get("l0", {}).get("events", []) if e["event"] == "whep_post"]:
        assert time.monotonic() < deadline and lost.proc.poll() is None
        time.sleep(0.5)
    killed.proc.send_signal(signal.SIGKILL)
    killed.proc.wait(timeout=30)
    assert [c.name for c in fleet.dead()] == ["l1"]
    fleet.stop()
    assert not os.path.exists(killed.user_data_dir)  # its Chromium profile does not outlive it
    assert lost.exit_code == 0
    data = read_canaries(tmp_path)["l0"]
    assert [e["status"] for e in data["events"] if e["event"] == "whep_post"] == [404]
    assert any("answered 404" in (e.get("error") or "") for e in data["events"] if e["event"] == "error")
    assert {s["state"] for s in data["seconds"]} == {"waiting_audio"}
    metrics = browser_metrics(tmp_path)
    assert list(metrics["browser_listeners_receiving_ratio"]) == [0.0]  # two started, none received
    assert "browser_mouth_to_ear_latency_ms" not in metrics  # no sample rather than an invented one
    died = [s for s in read_status(tmp_path) if s["kind"] == "died"]
    assert len(died) == 1 and died[0]["canary"] == "l1" and "its figures end there" in died[0]["text"]
    assert [e["status"] for e in data["events"] if e["event"] == "whep_post"]
