"""End-to-end media through the reference relay: real aiortc WHIP publisher -> relay process -> WHEP readers.

Payload bytes must arrive unchanged (the harness identifies packets by payload hash), injected delay and loss
must be measurable from outside, and a publisher override must keep readers connected with a bounded gap.
"""

from __future__ import annotations

import asyncio
import statistics

import httpx
import pytest

from harness.rtc.audio import load_loop, payload_hash
from harness.refstack.stack import Stack
from harness.refstack.media.loopback_peers import LoopPublisher, RecordingSubscriber, WhipWhepError

ALWAYS_AVAILABLE = {"alwaysAvailable": True, "alwaysAvailableTracks": [{"codec": "Opus"}], "overridePublisher": True}


@pytest.fixture(scope="module")
def loop_payloads():
    return load_loop().payloads


# Flags for the shared `relay` fixture (tests/conftest.py).
RELAY_ARGS = ['--seed', '7']


@pytest.fixture
def faults(relay):
    """Set relay faults for one test; always reset afterwards (the relay is shared by the module)."""

    def set_faults(**knobs):
        response = httpx.post(f"{relay.media_api_url}/v3/refstack/faults", json=knobs)
        assert response.status_code == 200, response.text
        return response.json()

    yield set_faults
    set_faults(delay_ms=0, loss_pct=0, stall=False, seed=7)


def latencies_ms(publisher: LoopPublisher, subscriber: RecordingSubscriber) -> list[float]:
    sent = publisher.track.sent_at_s
    return [(a.time_s - sent[a.hash]) * 1000.0 for a in subscriber.arrivals if a.hash in sent]


async def _forward(relay: Stack, path: str, payloads, packets: int, readers: int = 1, conf: dict | None = None):
    async with httpx.AsyncClient() as http:
        if conf is not None:
            assert (await http.post(f"{relay.media_api_url}/v3/config/paths/add/{path}", json=conf)).status_code == 200
        publisher = await LoopPublisher(http, relay.media_http_url, path, payloads).start()
        subscribers = [await RecordingSubscriber(http, relay.media_http_url, path).start() for _ in range(readers)]
        try:
            # Count what the publisher sends from now on; each reader must see (about) that many.
            sent_before = publisher.track.sent_count
            while publisher.track.sent_count - sent_before < packets:
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.4)  # let the tail (and any injected delay) drain
            stats = (await http.get(f"{relay.media_api_url}/v3/refstack/stats")).json()
        finally:
            for s in subscribers:
                await s.close()
            await publisher.close()
        return publisher, subscribers, stats


def test_payload_bytes_arrive_unchanged_and_in_order(relay, loop_payloads):
    publisher, (subscriber,), _ = asyncio.run(_forward(relay, "bytes/1/es", loop_payloads, packets=100))
    index = load_loop().index_by_hash
    received = [a for a in subscriber.arrivals if a.hash in index]
    # Every arrival is a payload the publisher sent, byte for byte (hash of the exact bytes).
    assert len(received) == len(subscriber.arrivals) >= 90
    assert all(a.hash in publisher.track.sent_at_s for a in received)
    positions = [index[a.hash] for a in received]
    assert positions == sorted(positions)
    # The relay rewrites the sequence numbers onto its own contiguous stream (no loss injected).
    seqs = [a.seq for a in subscriber.arrivals]
    assert all((b - a) % 65536 == 1 for a, b in zip(seqs, seqs[1:]))
    # Timestamps advance 960 ticks per 20 ms packet, as sent.
    assert all((b.ts - a.ts) % (1 << 32) == 960 for a, b in zip(subscriber.arrivals, subscriber.arrivals[1:]))


@pytest.mark.parametrize("delay_ms", [0, 200])
def test_injected_delay_is_measured(relay, loop_payloads, faults, delay_ms):
    faults(delay_ms=delay_ms)
    publisher, (subscriber,), _ = asyncio.run(_forward(relay, f"delay/{delay_ms}/es", loop_payloads, packets=100))
    measured = latencies_ms(publisher, subscriber)
    assert len(measured) >= 80
    median_ms = statistics.median(measured)
    assert abs(median_ms - delay_ms) < 5.0, f"median {median_ms:.1f} ms with {delay_ms} ms injected"


def test_injected_loss_is_measured_as_sequence_gaps(relay, loop_payloads, faults):
    faults(loss_pct=5, seed=11)
    readers = 8
    publisher, subscribers, stats = asyncio.run(_forward(relay, "loss/1/es", loop_payloads, packets=400, readers=readers))
    expected = lost = 0
    for s in subscribers:
        seqs = [a.seq for a in s.arrivals]
        span = (seqs[-1] - seqs[0]) % 65536 + 1
        expected += span
        lost += span - len(seqs)
    loss_pct = 100.0 * lost / expected
    assert expected >= 3000
    assert 4.0 <= loss_pct <= 6.0, f"{loss_pct:.2f} % measured over {expected} packets"
    # The relay's own count agrees with what the readers saw as gaps (edges excluded, hence the tolerance).
    (path_stats,) = [p for name, p in stats["paths"].items() if name == "loss/1/es"]
    dropped = sum(r["packetsDroppedLoss"] for r in path_stats["readers"])
    assert abs(dropped - lost) <= readers * 3


def test_stall_stops_forwarding_and_resumes(relay, loop_payloads, faults):
    async def scenario():
        async with httpx.AsyncClient() as http:
            publisher = await LoopPublisher(http, relay.media_http_url, "stall/1/es", loop_payloads).start()
            subscriber = await RecordingSubscriber(http, relay.media_http_url, "stall/1/es").start()
            await subscriber.wait_packets(20)
            faults(stall=True)
            await asyncio.sleep(0.3)
            during_before = len(subscriber.arrivals)
            await asyncio.sleep(1.0)
            during_after = len(subscriber.arrivals)
            faults(stall=False)
            await subscriber.wait_packets(during_after + 20)
            await subscriber.close()
            await publisher.close()
            return during_before, during_after, subscriber

    before, after, subscriber = asyncio.run(scenario())
    assert after == before  # nothing forwarded for a second while stalled
    gaps = [(b.seq - a.seq) % 65536 for a, b in zip(subscriber.arrivals, subscriber.arrivals[1:])]
    assert max(gaps) >= 40  # the stall shows as a sequence gap of >= ~1 s of packets, as a real outage would
    assert subscriber.states[-1] in ("connected", "closed")


def test_override_keeps_reader_connected_and_gap_is_bounded(relay, loop_payloads):
    path = "override/1/es"

    async def scenario():
        async with httpx.AsyncClient() as http:
            assert (await http.post(f"{relay.media_api_url}/v3/config/paths/add/{path}", json=ALWAYS_AVAILABLE)).status_code == 200
            first = await LoopPublisher(http, relay.media_http_url, path, loop_payloads).start()
            subscriber = await RecordingSubscriber(http, relay.media_http_url, path).start()
            await subscriber.wait_packets(25)
            # The second publisher sends the loop from a different point, so its packets are told apart by hash.
            second = await LoopPublisher(http, relay.media_http_url, path, loop_payloads[3000:]).start()
            await asyncio.sleep(0.5)
            first_state = first.pc.connectionState
            await subscriber.wait_packets(len(subscriber.arrivals) + 50)
            listing = (await http.get(f"{relay.media_api_url}/v3/paths/list")).json()
            await subscriber.close()
            await second.close()
            await first.close(delete=False)
            return first, second, subscriber, first_state, listing

    first, second, subscriber, first_state, listing = asyncio.run(scenario())
    assert first_state in ("closed", "failed")  # the old publisher was evicted
    assert "connected" in subscriber.states and "failed" not in subscriber.states
    from_first = [i for i, a in enumerate(subscriber.arrivals) if a.hash in first.track.sent_at_s]
    from_second = [i for i, a in enumerate(subscriber.arrivals) if a.hash in second.track.sent_at_s]
    assert from_first and from_second and max(from_first) < min(from_second)
    last_old, first_new = subscriber.arrivals[max(from_first)], subscriber.arrivals[min(from_second)]
    gap_ms = (first_new.time_s - last_old.time_s) * 1000.0
    # The switch costs the new publisher's connect time at most; no packet is reported lost to the reader.
    assert gap_ms < 1000.0, f"override gap {gap_ms:.0f} ms"
    assert (first_new.seq - last_old.seq) % 65536 == 1
    ts_gap_ms = ((first_new.ts - last_old.ts) % (1 << 32)) / 48.0
    assert abs(ts_gap_ms - gap_ms) < 50.0  # the timestamp carries the wall-clock gap
    (item,) = [i for i in listing["items"] if i["name"] == path]
    assert item["ready"] and item["source"]["id"] and len(item["readers"]) == 1
    print(f"override gap: {gap_ms:.1f} ms (timestamps advanced {ts_gap_ms:.1f} ms)")


def test_always_available_whep_before_publisher_hears_it(relay, loop_payloads):
    path = "early/1/es"

    async def scenario():
        async with httpx.AsyncClient() as http:
            assert (await http.post(f"{relay.media_api_url}/v3/config/paths/add/{path}", json=ALWAYS_AVAILABLE)).status_code == 200
            subscriber = await RecordingSubscriber(http, relay.media_http_url, path).start()
            await asyncio.sleep(0.3)
            silent_before = len(subscriber.arrivals)
            publisher = await LoopPublisher(http, relay.media_http_url, path, loop_payloads).start()
            await subscriber.wait_packets(25)
            await publisher.close()
            await asyncio.sleep(0.3)
            still_connected = subscriber.pc.connectionState
            await subscriber.close()
            return silent_before, publisher, subscriber, still_connected

    silent_before, publisher, subscriber, still_connected = asyncio.run(scenario())
    assert silent_before == 0
    assert all(a.hash in publisher.track.sent_at_s for a in subscriber.arrivals)
    assert still_connected == "connected"  # alwaysAvailable: the reader outlives the publisher


def test_whep_without_publisher_is_404_and_reader_closes_when_stream_ends(relay, loop_payloads):
    async def scenario():
        async with httpx.AsyncClient() as http:
            with pytest.raises(WhipWhepError) as no_stream:
                await RecordingSubscriber(http, relay.media_http_url, "nobody/1/es").start()
            publisher = await LoopPublisher(http, relay.media_http_url, "plain/1/es", loop_payloads).start()
            subscriber = await RecordingSubscriber(http, relay.media_http_url, "plain/1/es").start()
            await subscriber.wait_packets(10)
            await publisher.close()
            for _ in range(100):
                if subscriber.pc.connectionState in ("closed", "failed"):
                    break
                await asyncio.sleep(0.05)
            state = subscriber.pc.connectionState
            await subscriber.close(delete=False)
            return no_stream.value, state

    no_stream, state = asyncio.run(scenario())
    assert no_stream.status == 404 and "no stream is available" in str(no_stream)
    # Not alwaysAvailable: MediaMTX closes the readers when the source goes away.
    assert state in ("closed", "failed")


def test_payload_hash_is_what_the_listener_sees(loop_payloads):
    # Guard for the other tests: distinct loop packets have distinct hashes.
    hashes = {payload_hash(p) for p in loop_payloads[:500]}
    assert len(hashes) == 500
