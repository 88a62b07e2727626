"""CPU time per received packet of a tap listener's receive path, this tree against another, in one run.

The path from the moment the event loop hands a datagram to the ICE protocol: RTP/RTCP/STUN demultiplexing,
SRTP unprotect (libsrtp, AEAD_AES_256_GCM as two aiortc peers negotiate), the listener's tap, and its share of
the per-second interval (header, RFC 3550 statistics, payload-to-schedule latency). Real code of each tree:
``aiortc_patches`` (TAP role), ``WhepListener`` with the real loop audio and a schedule; the datagrams are
protected by a real libsrtp session. What it leaves out, the same for both trees: the socket receive and
the event loop's dispatch (``benchmarks/media_capacity.py`` measures the whole engine).

    python benchmarks/tap_packet_cost.py                 # this tree
    python benchmarks/tap_packet_cost.py --compare main  # and main's tree, alternating rounds in two processes

Each round is 100 listener-seconds (5,000 packets) in 100 intervals; rounds alternate between the trees so
both see the same machine; the median of the rounds is printed, with min and max as the spread.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKETS_PER_INTERVAL = 50  # 20 ms packets, one interval a second
INTERVALS_PER_ROUND = 100

# Runs inside each tree's process (PYTHONPATH=tree): reads round requests on stdin, answers us per packet.
_WORKER = r'''
import asyncio, json, os, struct, sys, time
from pylibsrtp import Policy, Session
import aioice.ice
from harness.rtc import aiortc_patches
from harness.rtc.audio import load_loop
from harness.media.listener import WhepListener
from harness.media.schedule import BoothSchedules, PublisherSchedule
from harness.media.session import SessionTimeouts

PER, INTERVALS = int(sys.argv[1]), int(sys.argv[2])

async def main():
    aiortc_patches.install(aiortc_patches.Role.TAP)
    loop_audio = load_loop()
    schedules = BoothSchedules()
    epoch_ns = time.time_ns() - 10**12  # long enough ago that every loop index has been sent
    schedules.add(PublisherSchedule("bench", epoch_ns, loop_audio.length))
    listener = WhepListener("l0", "http://127.0.0.1:1/whep", "booth", loop_audio, schedules, None, SessionTimeouts())
    listener._awaiting_first_packet = False  # no session around it to tell
    key = os.urandom(44)
    profile = Policy.SRTP_PROFILE_AEAD_AES_256_GCM
    tx = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND, srtp_profile=profile))
    rx = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_INBOUND, srtp_profile=profile))

    class Connection:
        def data_received(self, data, component):
            raise AssertionError("an RTP datagram left the fast path")

    connection = Connection()
    protocol = aioice.ice.StunProtocol(connection)
    protocol.local_candidate = type("Candidate", (), {"component": 1})()
    if hasattr(aiortc_patches, "_fast_datagram_received"):
        receive = aiortc_patches._fast_datagram_received(protocol, rx, listener._on_rtp_datagram)
    else:
        setattr(connection, aiortc_patches._RTP_SINK_ATTR, aiortc_patches._rtp_sink(rx, listener._on_rtp_datagram))
        receive = protocol.datagram_received
    ext = b"\xbe\xde\x00\x01\x10" + b"0" + b"\x00\x00"  # the relay's MID extension block
    payloads = loop_audio.payloads
    seq = 0
    addr = ("127.0.0.1", 9)
    for line in sys.stdin:
        count = PER * INTERVALS
        datagrams = []
        for i in range(seq, seq + count):
            plain = struct.pack("!BBHII", 0x90, 111, i & 0xFFFF, (i * 960) & 0xFFFFFFFF, 4242) + ext + payloads[i % len(payloads)]
            datagrams.append(tx.protect(plain))
        seq += count
        start = time.process_time()
        for n in range(INTERVALS):
            for data in datagrams[n * PER:(n + 1) * PER]:
                receive(data, addr)
            stats, latencies, unknown, _ = listener.take_interval(time.time())
        used = time.process_time() - start
        assert stats.packets == PER and unknown == 0 and len(latencies) == PER, (stats, unknown, len(latencies))
        print(json.dumps({"us_per_packet": used / count * 1e6}), flush=True)

asyncio.run(main())
'''


def _start(tree: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.Popen([sys.executable, "-c", _WORKER, str(PACKETS_PER_INTERVAL), str(INTERVALS_PER_ROUND)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=tree, env=env)


def _round(proc: subprocess.Popen) -> float:
    proc.stdin.write("go\n")
    proc.stdin.flush()
    line = proc.stdout.readline()
    if not line:
        raise SystemExit(f"a benchmark process ended early (exit {proc.wait()})")
    return json.loads(line)["us_per_packet"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare", metavar="REF", help="also run REF's tree (git archive), alternating rounds")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)
    trees = {"this tree": REPO}
    with tempfile.TemporaryDirectory(prefix="tap-packet-cost-") as tmp:
        if args.compare:
            dest = Path(tmp) / "previous"
            dest.mkdir()
            archive = subprocess.run(["git", "-C", str(REPO), "archive", args.compare], check=True, capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
            trees[args.compare] = dest
        procs = {label: _start(tree) for label, tree in trees.items()}
        results: dict[str, list[float]] = {label: [] for label in trees}
        try:
            _ = [_round(proc) for proc in procs.values()]  # warm-up round (imports, caches)
            for _ in range(args.rounds):
                for label, proc in procs.items():
                    results[label].append(_round(proc))
        finally:
            for proc in procs.values():
                proc.stdin.close()
                proc.wait()
    print(f"tap receive path, CPU per packet ({args.rounds} alternating rounds of {PACKETS_PER_INTERVAL * INTERVALS_PER_ROUND} packets):")
    medians = {}
    for label, values in results.items():
        medians[label] = statistics.median(values)
        print(f"  {label:>12}: median {medians[label]:.2f} us (min {min(values):.2f}, max {max(values):.2f}) "
              f"-> {1e6 / (medians[label] * 50) * 0.8:,.0f} listeners per 80 % of a core on this path alone")
    if args.compare:
        print(f"  ratio {args.compare} / this tree: {medians[args.compare] / medians['this tree']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
