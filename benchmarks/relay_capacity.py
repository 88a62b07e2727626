"""Relay CPU per reader: one publisher fanned out to N WHEP (or RTSP) readers through the reference media relay.

Run from the repository root::

    python3 -m benchmarks.relay_capacity --readers 50,100,200 --settle-s 3 --window-s 10
    python3 -m benchmarks.relay_capacity --protocol rtsp --readers 10,50,100   # RTSP/TCP readers, as VoxBento's workers

For each reader count it starts a fresh relay process, one pre-encoded Opus publisher (50 packets/s) and N
loopback readers (RTP tap, no decoding) in this process, waits ``--settle-s``, then measures over
``--window-s``: the relay process's CPU time / wall time (100 % = one core, via psutil), CPU % per reader,
and the packet rate each reader actually received (50/s means the relay kept up). Time-bounded; not a test.
Readers and publisher share this process, so its own CPU is reported too (both processes share the cores).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

from harness.rtc.audio import load_loop
from harness.refstack.media.loopback_peers import LoopPublisher, RecordingSubscriber, RtspClient
from harness.refstack.stack import Stack, StackConfig

CONNECT_BATCH = 20  # readers set up concurrently (media-design 3: ~150-200 setups/s on loopback)


class _RtspReader:
    """An RTSP/TCP reader with the WHEP subscriber's interface here: start, packet_count, close."""

    def __init__(self, stack: Stack, path: str) -> None:
        self._url = f"{stack.media_rtsp_url}/{path}"
        self._client: RtspClient | None = None

    async def start(self) -> _RtspReader:
        self._client = await RtspClient.connect(self._url, record=False)
        await self._client.play(self._url)
        return self

    @property
    def packet_count(self) -> int:
        return self._client.frame_count if self._client is not None else 0

    async def close(self, delete: bool = False) -> None:
        if self._client is not None:
            await self._client.close()


async def _measure(stack: Stack, readers: int, settle_s: float, window_s: float, payloads, protocol: str = "whep") -> dict:
    relay_proc = psutil.Process(stack.media_proc.pid)
    own_proc = psutil.Process()
    limits = httpx.Limits(max_connections=CONNECT_BATCH * 2)
    async with httpx.AsyncClient(limits=limits, timeout=30) as http:
        publisher = await LoopPublisher(http, stack.media_http_url, "bench/1/es", payloads).start()
        subscribers: list[RecordingSubscriber] = []
        setup_t0 = time.monotonic()
        try:
            for start in range(0, readers, CONNECT_BATCH):
                batch = [RecordingSubscriber(http, stack.media_http_url, "bench/1/es", record=False) if protocol == "whep"
                         else _RtspReader(stack, "bench/1/es") for _ in range(start, min(readers, start + CONNECT_BATCH))]
                await asyncio.gather(*(s.start() for s in batch))
                subscribers.extend(batch)
            setup_s = time.monotonic() - setup_t0
            await asyncio.sleep(settle_s)
            counts0 = [s.packet_count for s in subscribers]
            relay0, own0, t0 = relay_proc.cpu_times(), own_proc.cpu_times(), time.monotonic()
            await asyncio.sleep(window_s)
            counts1 = [s.packet_count for s in subscribers]
            relay1, own1, t1 = relay_proc.cpu_times(), own_proc.cpu_times(), time.monotonic()
        finally:
            await asyncio.gather(*(s.close(delete=False) for s in subscribers), return_exceptions=True)
            await publisher.close()
    wall_s = t1 - t0
    relay_pct = 100.0 * ((relay1.user - relay0.user) + (relay1.system - relay0.system)) / wall_s
    own_pct = 100.0 * ((own1.user - own0.user) + (own1.system - own0.system)) / wall_s
    rates = [(c1 - c0) / wall_s for c0, c1 in zip(counts0, counts1)]
    return {
        "protocol": protocol,
        "readers": readers,
        "setup_s": round(setup_s, 2),
        "relay_cpu_pct": round(relay_pct, 1),
        "relay_cpu_pct_per_reader": round(relay_pct / readers, 3),
        "client_cpu_pct": round(own_pct, 1),
        "rx_pps_per_reader_min": round(min(rates), 1),
        "rx_pps_per_reader_median": round(statistics.median(rates), 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m benchmarks.relay_capacity", description=__doc__.split("\n\n")[0])
    parser.add_argument("--readers", default="50,100,200", help="comma-separated reader counts (default 50,100,200)")
    parser.add_argument("--settle-s", type=float, default=3.0, metavar="S", help="seconds after setup before measuring")
    parser.add_argument("--window-s", type=float, default=10.0, metavar="S", help="measurement window in seconds")
    parser.add_argument("--protocol", choices=["whep", "rtsp"], default="whep", help="how readers read (default whep)")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    try:
        counts = [int(x) for x in args.readers.split(",") if x.strip()]
    except ValueError:
        print(f"error: --readers {args.readers!r}: expected comma-separated integers", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING)
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    payloads = load_loop().payloads
    results = []
    print(f"{'readers':>7} {'setup s':>8} {'relay CPU %':>11} {'% / reader':>10} {'client CPU %':>12} {'rx pps min':>10} {'rx pps med':>10}")
    for readers in counts:
        with tempfile.TemporaryDirectory(prefix="relay-bench-") as tmp:
            stack = Stack(StackConfig.ephemeral(with_media=True, data_dir=Path(tmp), media_args=["--log-level", "WARNING"]))
            stack.start_media()
            try:
                r = asyncio.run(_measure(stack, readers, args.settle_s, args.window_s, payloads, args.protocol))
            finally:
                stack.stop()
        results.append(r)
        print(f"{r['readers']:>7} {r['setup_s']:>8} {r['relay_cpu_pct']:>11} {r['relay_cpu_pct_per_reader']:>10} "
              f"{r['client_cpu_pct']:>12} {r['rx_pps_per_reader_min']:>10} {r['rx_pps_per_reader_median']:>10}", flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps({"version": 1, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
