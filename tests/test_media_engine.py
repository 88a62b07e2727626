"""End to end through the reference relay: engine processes publish (WHIP) and listen (WHEP) via the bridge.

Real parts only: the relay subprocess (harness.refstack.media via Stack), engine subprocesses, aiortc peers on
loopback, relay faults injected through its control API.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest

from harness.media.bridge import MediaBridge
from harness.media.errors import EngineCrashed, FirstPacketTimeout, HttpStatusError, SignalingError
from harness.refstack.stack import Stack

# Short timeouts keep failure-path tests fast. The synthetic loop: a marker every 500 ms, which the marker-latency
# checks here count on (the speech corpus has markers only between utterances: test_speech_corpus.py).
ENGINE_ARGS = ["--first-packet-timeout-s", "1.5", "--connect-timeout-s", "5", "--post-timeout-s", "5", "--audio", "synthetic"]


REPO_ROOT = str(Path(__file__).resolve().parents[1])




class Pushes:
    """Collects the per-second pushes (what the Locust layer would receive)."""

    def __init__(self) -> None:
        self.records: list[dict] = []
        self.events: list[dict] = []
        self._lock = threading.Lock()

    def on_stats(self, record: dict) -> None:
        with self._lock:
            self.records.append(record)

    def on_event(self, event: dict) -> None:
        with self._lock:
            self.events.append(event)

    def since(self, t_epoch_s: float) -> list[dict]:
        with self._lock:
            return [r for r in self.records if r["t_epoch_s"] >= t_epoch_s]

    def groups(self, t_epoch_s: float, booth: str, roles=("listener", "probe")) -> list[dict]:
        return [g for r in self.since(t_epoch_s) for g in r["groups"] if g["booth"] == booth and g["role"] in roles]


@pytest.fixture(scope="module")
def pushes():
    return Pushes()


@pytest.fixture(scope="module")
def bridge(tmp_path_factory, pushes):
    with MediaBridge(tmp_path_factory.mktemp("results"), engines=2, on_stats=pushes.on_stats, on_event=pushes.on_event,
                     engine_args=ENGINE_ARGS) as bridge:
        yield bridge


def add_path(relay: Stack, path: str) -> None:
    response = httpx.post(f"{relay.media_api_url}/v3/config/paths/add/{path}", json={"alwaysAvailable": True})
    assert response.status_code == 200, response.text


def set_faults(relay: Stack, **knobs) -> None:
    response = httpx.post(f"{relay.media_api_url}/v3/refstack/faults", json=knobs)
    assert response.status_code == 200, response.text


@pytest.fixture(autouse=True)
def _reset_faults(relay):
    yield
    set_faults(relay, delay_ms=0, loss_pct=0, stall=False)


def median_latency(groups: list[dict], key: str = "latency_ms") -> float:
    values = [g[key]["p50"] for g in groups if g.get(key)]
    assert values, f"no {key} samples"
    return sorted(values)[len(values) // 2]


def test_engine_is_plain_asyncio(bridge):
    hello = bridge.hello("e0")
    assert hello["imported"] == {"gevent": False, "locust": False}
    assert hello["loop"].startswith("uvloop")
    assert hello["pid"] != os.getpid()


def test_latency_tracks_injected_relay_delay(relay, bridge, pushes):
    path = "lat/1/es"
    add_path(relay, path)
    publisher = bridge.publish(f"{relay.media_http_url}/{path}/whip", "lat-1-es")
    assert publisher.setup["first_packet_ms"] is not None
    # Listeners on both engines: the one without the publisher gets its schedule from the bridge.
    listeners = [bridge.listen(f"{relay.media_http_url}/{path}/whep", "lat-1-es", probe=(i == 0)) for i in range(4)]
    assert {h.engine for h in listeners} == {"e0", "e1"}
    for handle in listeners:
        assert handle.setup["post_ms"] > 0 and handle.setup["connected_ms"] >= handle.setup["post_ms"]
        assert handle.setup["first_packet_ms"] >= handle.setup["connected_ms"] - 5

    start = time.time()
    time.sleep(2.6)
    groups = pushes.groups(start, "lat-1-es")
    assert sum(g["packets"] for g in groups) > 0.8 * 4 * 50 * 2
    assert all(g["unknown_payloads"] == 0 and g["lost"] == 0 for g in groups)
    base_ms = median_latency(groups)
    assert 0 <= base_ms <= 5.0  # within 5 ms of the injected 0 ms

    set_faults(relay, delay_ms=200)
    time.sleep(1.2)  # let packets held before the change drain
    start = time.time()
    time.sleep(2.6)
    groups = pushes.groups(start, "lat-1-es")
    delayed_ms = median_latency(groups)
    assert abs(delayed_ms - 200.0) <= 5.0
    # The probe hears the same shift in decoded audio (mouth-to-ear adds jitter buffer + codec delay).
    probe_groups = [g for g in groups if g["role"] == "probe"]
    assert median_latency(probe_groups, "marker_latency_ms") > delayed_ms
    assert sum(g["markers"] for g in probe_groups) >= 3
    for handle in listeners + [publisher]:
        bridge.close(handle)


def test_injected_loss_is_measured(relay, bridge, pushes):
    path = "loss/1/es"
    add_path(relay, path)
    set_faults(relay, loss_pct=5, seed=11)
    publisher = bridge.publish(f"{relay.media_http_url}/{path}/whip", "loss-1-es")
    listeners = [bridge.listen(f"{relay.media_http_url}/{path}/whep", "loss-1-es") for _ in range(8)]
    # Default probe choice: the booth's first listener decodes (probe), the rest are RTP-tap listeners.
    assert [h.role for h in listeners] == ["probe"] + ["listener"] * 7
    time.sleep(0.5)
    start = time.time()
    time.sleep(8.2)
    groups = pushes.groups(start, "loss-1-es")
    expected = sum(g["expected"] for g in groups)
    lost = sum(g["lost"] for g in groups)
    assert expected > 8 * 50 * 7
    assert abs(100.0 * lost / expected - 5.0) <= 1.0, (lost, expected)
    assert sum(g["gaps"] for g in groups) > 0
    for handle in listeners + [publisher]:
        bridge.close(handle)


def test_publisher_override_keeps_listeners_and_measures_the_gap(relay, bridge, pushes):
    path = "over/1/es"
    add_path(relay, path)
    first = bridge.publish(f"{relay.media_http_url}/{path}/whip", "over-1-es")
    listeners = [bridge.listen(f"{relay.media_http_url}/{path}/whep", "over-1-es") for _ in range(3)]
    time.sleep(1.2)
    switch = time.time()
    second = bridge.publish(f"{relay.media_http_url}/{path}/whip", "over-1-es")  # overridePublisher (contract 12.1)
    assert second.engine != first.engine or second.handle != first.handle
    time.sleep(2.5)
    groups = pushes.groups(switch, "over-1-es", roles=("listener",))
    # Listeners stayed connected and kept receiving, now the second publisher's packets.
    last_second = [g for r in pushes.since(time.time() - 1.2) for g in r["groups"] if g["booth"] == "over-1-es" and g["role"] == "listener"]
    assert last_second and all(g["packets"] >= 40 * g["sessions"] for g in last_second)
    assert all(g["unknown_payloads"] == 0 for g in groups)
    # Latency stays attributable (the second schedule explains the new packets).
    assert median_latency(groups) <= 20.0
    # The switch gap is measured: the longest inter-arrival time around the switch is reported.
    gap_ms = max(g["interarrival_ms_max"] for g in groups)
    assert 20.0 <= gap_ms < 2000.0
    assert not [e for e in pushes.events if e.get("handle") in {h.handle for h in listeners}]
    for handle in listeners + [second]:
        bridge.close(handle)
    bridge.close(first)


def test_failures_are_typed_per_phase(relay, bridge):
    # POST to a port where nothing listens: the POST phase.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    with pytest.raises(SignalingError):
        bridge.listen(f"http://127.0.0.1:{dead_port}/x/1/es/whep", "x-1-es")
    # The relay refuses: HTTP status kept.
    with pytest.raises(HttpStatusError) as refused:
        bridge.listen(f"{relay.media_http_url}/nowhere/1/es/whep", "nowhere-1-es")
    assert refused.value.status == 404
    # Connected, but nobody publishes on an always-available path: the first-packet phase.
    add_path(relay, "quiet/1/es")
    with pytest.raises(FirstPacketTimeout):
        bridge.listen(f"{relay.media_http_url}/quiet/1/es/whep", "quiet-1-es")


def test_killed_engine_gives_a_typed_error_promptly(relay, tmp_path):
    path = "kill/1/es"
    add_path(relay, path)
    # A WHEP endpoint that accepts connections and never answers keeps one call in flight.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    with MediaBridge(tmp_path, engines=2, engine_args=ENGINE_ARGS) as bridge:
        publisher = bridge.publish(f"{relay.media_http_url}/{path}/whip", "kill-1-es")
        listener = bridge.listen(f"{relay.media_http_url}/{path}/whep", "kill-1-es")
        victim = bridge.engines[listener.engine]
        outcome: dict = {}

        def hanging_call():
            try:
                bridge.engines[listener.engine].call(
                    "listen", {"whep_url": f"http://127.0.0.1:{silent.getsockname()[1]}/a/whep", "booth": "a"}, 30.0)
            except Exception as exc:  # noqa: BLE001 - the test inspects it
                outcome["error"] = exc

        caller = threading.Thread(target=hanging_call)
        caller.start()
        time.sleep(2.2)  # at least one sample flush
        killed_at = time.time()
        os.kill(victim.proc.pid, signal.SIGKILL)
        caller.join(timeout=10)
        assert not caller.is_alive(), "a call in flight hung after the engine died"
        assert isinstance(outcome["error"], EngineCrashed)
        assert outcome["error"].engine == victim.name and outcome["error"].exit_code == -signal.SIGKILL
        with pytest.raises(EngineCrashed, match=f"{victim.name} died \\(exit code -9\\)"):
            bridge.close(listener)
        # The survivor still serves.
        survivor = bridge.listen(f"{relay.media_http_url}/{path}/whep", "kill-1-es")
        assert survivor.engine != victim.name
        bridge.close(survivor)
        bridge.close(publisher)
    silent.close()
    # Samples written before the kill stay readable.
    with open(tmp_path / f"media-{victim.name}-listeners.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows and rows[0]["handle"] == listener.handle and int(rows[-1]["packets"]) > 0
    seconds = (tmp_path / f"media-{victim.name}-seconds.jsonl").read_text().splitlines()
    assert json.loads(seconds[0])["engine"] == victim.name
    # The death is recorded with its time for the run's verdict; the orderly stop of the survivor is not a death.
    (death,) = [json.loads(line) for line in (tmp_path / f"media-{victim.name}-exit.jsonl").read_text().splitlines()]
    assert death["engine"] == victim.name and death["exit_code"] == -signal.SIGKILL
    assert killed_at <= death["t_epoch_s"] < killed_at + 2.0
    assert sorted(p.name for p in tmp_path.glob("media-*-exit.jsonl")) == [f"media-{victim.name}-exit.jsonl"]


def test_probes_per_booth_are_capped_and_replaced(relay, tmp_path):
    # A share of 0.5 would make every other listener a probe; a cap of 2 keeps a booth at 2 live probes, the
    # audience beyond them are RTP-tap listeners, and a probe that leaves is replaced by the next listener.
    path = "cap/1/es"
    add_path(relay, path)
    url = f"{relay.media_http_url}/{path}"
    with MediaBridge(tmp_path / "results", engines=1, engine_args=ENGINE_ARGS, probe_share=0.5, probes_per_booth_max=2) as bridge:
        publisher = bridge.publish(f"{url}/whip", "cap-1-es")
        listeners = [bridge.listen(f"{url}/whep", "cap-1-es") for _ in range(6)]
        assert [h.role for h in listeners] == ["probe", "listener", "probe", "listener", "listener", "listener"]
        other_booth = bridge.listen(f"{url}/whep", "cap-2-fr")  # a booth's cap is its own
        assert other_booth.role == "probe"
        bridge.close(listeners[0])
        bridge.close(listeners[2])
        replacement = bridge.listen(f"{url}/whep", "cap-1-es")
        assert replacement.role == "probe"  # no live probe left in the booth: the next listener decodes
        for handle in [listeners[1], *listeners[3:], other_booth, replacement, publisher]:
            bridge.close(handle)
    with pytest.raises(ValueError):
        MediaBridge(tmp_path / "bad", probes_per_booth_max=0)


def test_default_is_one_probe_per_booth(relay, bridge):
    # PROBES_PER_BOOTH_MAX: with the default share a booth's first listener decodes, and however many join
    # after it (here more than the share's period of 50) none of them does while it is live.
    path = "one/1/es"
    add_path(relay, path)
    url = f"{relay.media_http_url}/{path}"
    publisher = bridge.publish(f"{url}/whip", "one-1-es")
    bridge._listeners_per_booth["one-1-es"] = 0
    first = bridge.listen(f"{url}/whep", "one-1-es")
    bridge._listeners_per_booth["one-1-es"] = 50  # the share (0.02) would make this one a probe
    second = bridge.listen(f"{url}/whep", "one-1-es")
    assert (first.role, second.role) == ("probe", "listener")
    for handle in (first, second, publisher):
        bridge.close(handle)
