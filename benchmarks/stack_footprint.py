"""`voxload stack up` as an operator meets it: time to the ready line and idle memory.

Starts `python -m harness stack up` on free loopback ports N times; for each start prints the seconds until
its ready line and, 5 s later, the resident memory of the `stack up` process (which serves the portal) and
of the media relay (its child), then stops it with SIGTERM.

    python3 benchmarks/stack_footprint.py [--starts 3]
"""

from __future__ import annotations

import argparse
import signal
import socket
import subprocess
import sys
import time

import psutil

MIB = 2**20


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=3, metavar="N")
    parser.add_argument("--idle-s", type=float, default=5.0, metavar="SECONDS")
    args = parser.parse_args()
    print(f"command: {' '.join(sys.argv)}")
    print(f"{'start':>5} {'ready s':>8} {'portal MiB':>11} {'relay MiB':>10} {'total MiB':>10} {'total MB':>9}")
    for n in range(1, args.starts + 1):
        t0 = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-m", "harness", "stack", "up", "--portal-port", str(_free_port()),
                                 "--media-port", str(_free_port()), "--media-api-port", str(_free_port())],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        ready_s = None
        for line in proc.stdout:
            if line.startswith("voxload reference stack ready"):
                ready_s = time.monotonic() - t0
            if line.startswith("Ctrl-C"):
                break
        time.sleep(args.idle_s)
        stack_up = psutil.Process(proc.pid)
        portal = stack_up.memory_info().rss / MIB
        relay = sum(c.memory_info().rss for c in stack_up.children(recursive=True)) / MIB
        print(f"{n:>5} {ready_s:>8.2f} {portal:>11.1f} {relay:>10.1f} {portal + relay:>10.1f} {(portal + relay) * MIB / 1e6:>9.1f}")
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
