"""What one Chromium canary listener costs on this machine: processes, memory (PSS and summed RSS) and CPU.

Starts the reference relay, one pre-encoded aiortc publisher in a media engine, and one canary listener
(harness/browser/fleet.py, as a rehearsal starts it); lets it play for a while, then measures the canary's
whole process tree (canary process, Playwright driver, every Chromium process) with psutil over a window.
Needs Chromium and Playwright (harness/browser/chromium.py says why not, and the script exits 2).

    PYTHONPATH=. python3 benchmarks/browser_canary_cost.py [--settle-s 15] [--window-s 10]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

from harness.browser.chromium import unavailable_reason
from harness.browser.fleet import CanaryFleet
from harness.media.bridge import MediaBridge
from harness.refstack.stack import Stack, StackConfig


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settle-s", type=float, default=15.0, metavar="S", help="play this long before measuring")
    parser.add_argument("--window-s", type=float, default=10.0, metavar="S", help="CPU measuring window")
    args = parser.parse_args()
    reason = unavailable_reason()
    if reason:
        print(f"browser_canary_cost: {reason}", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="voxload-canary-cost-"))
    stack = Stack(StackConfig.ephemeral(with_media=True, data_dir=work / "relay"))
    stack.start_media()
    try:
        httpx.post(f"{stack.media_api_url}/v3/config/paths/add/cost/1/es", json={"alwaysAvailable": True}).raise_for_status()
        with MediaBridge(work / "media", engines=1) as bridge:
            publisher = bridge.publish(f"{stack.media_http_url}/cost/1/es/whip", "cost")
            fleet = CanaryFleet(work)
            canary = fleet.start("l0", {"role": "listener", "booth_id": "cost", "whep_url": f"{stack.media_http_url}/cost/1/es/whep"})
            fleet.add_schedule("cost", publisher.schedule)
            try:
                time.sleep(args.settle_s)
                root = psutil.Process(canary.proc.pid)
                tree = [root] + root.children(recursive=True)
                chromium = sum(1 for p in tree if "chrom" in p.name())
                pss = sum(p.memory_full_info().pss for p in tree)
                rss = sum(p.memory_info().rss for p in tree)
                before = {p.pid: sum(p.cpu_times()[:2]) for p in tree}
                started = time.monotonic()
                time.sleep(args.window_s)
                busy_s = sum(sum(p.cpu_times()[:2]) - before[p.pid] for p in tree if p.is_running())
                elapsed_s = time.monotonic() - started
            finally:
                fleet.stop()
    finally:
        stack.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"one canary listener: {len(tree)} processes ({chromium} Chromium), PSS {pss / 2**20:.0f} MiB "
          f"(RSS summed {rss / 2**20:.0f} MiB), CPU {100 * busy_s / elapsed_s:.1f} % of one core over {elapsed_s:.0f} s; "
          f"load average {psutil.getloadavg()[0]:.1f} on {psutil.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
