"""Media engine capacity on the machine it runs on, measured side by side in one run.

Prints, per engine core: RTP-tap listeners, stock-aiortc decoding listeners (the baseline) and publishers,
each at 50 packets/s per session, with the engine's loop lag p95 < 20 ms and CPU <= 80 % of a core; and the
ratio tap / stock. A side-by-side phase runs the same number of tap listeners with and without the raw fast
path (``aiortc_patches``: RTP bypasses aioice's queue and the DTLS task) at the same time, in two engines on
the same CPU fed by the same publisher, and prints the engine CPU time per received packet of each. A listener phase ends early with *source-lost* when its publisher is disconnected (an
overloaded relay or helper engine), which is not counted against the measured engine. Set-up: the reference relay and a helper engine that hosts the publisher are pinned to
one CPU, the measured engine (e0) to another; load is added in steps, each step settles and is then
measured over a window from the engine's own per-second pushes.

    python benchmarks/media_capacity.py --quick       # about a minute
    python benchmarks/media_capacity.py               # about three minutes
    python benchmarks/media_capacity.py --compare main  # and main's version of this benchmark at the same time

``--compare REF`` runs REF's tree (``git archive``) of this benchmark with the same arguments at the same time,
so both ramps see the same machine (their measured engines share the same CPU), and prints the tap listeners
per engine core of both and their ratio.

A step is *clean* when every session gets >= 49 packets/s (publishers: send lateness p95 < 20 ms), the
engine's mean per-second loop lag p95 is < 20 ms and its CPU <= 80 %. Per-session cost is the engine CPU
divided by the sessions at the largest clean step; capacity per core = 80 % / cost (an extrapolation when
the largest step stayed well below 80 %; the measured clean maximum is printed next to it). The relay's
CPU is printed too: when it is saturated, the step says so and it is not counted against the engine. A
step whose loop lag is over the limit while the engine's own CPU is low is marked *contended* (the shared
machine's other processes took the core) and the ramp continues.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)

from harness.media.bridge import MediaBridge, MediaHandle  # noqa: E402
from harness.refstack.stack import Stack, StackConfig  # noqa: E402

CPU_LIMIT_PCT = 80.0
LAG_LIMIT_MS = 20.0
MIN_PACKETS_S = 49.0
MEASURED = "e0"
HELPER = "e1"
COMPARED = "e2"  # side-by-side phase only: the tap without its fast path, on the measured engine's CPU


@dataclasses.dataclass
class Step:
    phase: str
    sessions: int
    cpu_pct: float
    lag_p95_ms: float
    packets_per_session_s: float
    relay_cpu_pct: float
    setup_failures: int
    extra: dict = dataclasses.field(default_factory=dict)
    sends_on_time: bool = True  # publishers: send lateness p95 < LAG_LIMIT_MS
    source_lost: bool = False  # the phase's publisher was disconnected (relay or helper overloaded)
    cpu_us_per_packet: float | None = None  # engine CPU time per packet received (listeners) or sent (publishers)

    @property
    def relay_limited(self) -> bool:
        return self.relay_cpu_pct > 90.0

    @property
    def contended(self) -> bool:
        # Loop lag over the limit (or packets late) while the engine itself is far from busy: other
        # processes of the shared machine took the core.
        return not self.clean and self.cpu_pct < 0.85 * CPU_LIMIT_PCT and self.setup_failures == 0

    @property
    def verdict(self) -> str:
        if self.source_lost:
            return "source-lost"
        if self.clean:
            return "clean"
        if self.relay_limited:
            return "relay-limited"
        return "contended" if self.contended else "over"

    @property
    def clean(self) -> bool:
        return (
            self.packets_per_session_s >= MIN_PACKETS_S
            and self.lag_p95_ms < LAG_LIMIT_MS
            and self.cpu_pct <= CPU_LIMIT_PCT
            and self.setup_failures == 0
            and self.sends_on_time
        )


class Collector:
    def __init__(self) -> None:
        self.records: list[dict] = []
        self.disconnected: set[str] = set()
        self._lock = threading.Lock()

    def on_event(self, event: dict) -> None:
        if event.get("event") == "disconnected":
            with self._lock:
                self.disconnected.add(event["handle"])

    def __call__(self, record: dict) -> None:
        with self._lock:
            self.records.append(record)

    def window(self, engine: str, start_s: float, end_s: float) -> list[dict]:
        with self._lock:
            return [r for r in self.records if r["engine"] == engine and start_s <= r["t_epoch_s"] <= end_s]


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


class Benchmark:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.collector = Collector()
        self.deadline_s = time.monotonic() + args.max_seconds
        cpus = sorted(os.sched_getaffinity(0))
        self.engine_cpu = cpus[0]
        self.shared_cpu = cpus[1] if len(cpus) > 1 else cpus[0]
        self.results_dir = Path(args.results_dir or tempfile.mkdtemp(prefix="voxload-media-bench-"))
        self.stack = Stack(StackConfig.ephemeral(with_media=True, data_dir=self.results_dir / "relay"))
        self.bridge: MediaBridge | None = None
        self.relay_proc: psutil.Process | None = None
        self.steps: list[Step] = []

    # --- set-up ---
    def start(self) -> None:
        self.stack.start_media()
        self.relay_proc = psutil.Process(self.stack.media_proc.pid)
        self.relay_proc.cpu_affinity([self.shared_cpu])
        self.bridge = MediaBridge(
            self.results_dir, engines=3, on_stats=self.collector, on_event=self.collector.on_event,
            cpu_affinity=[self.engine_cpu, self.shared_cpu, self.engine_cpu],
            engine_args=["--lag-limit-ms", str(LAG_LIMIT_MS), "--cpu-limit-pct", str(CPU_LIMIT_PCT)],
        ).start()

    def stop(self) -> None:
        if self.bridge is not None:
            self.bridge.stop()
        self.stack.stop()

    def add_path(self, path: str) -> None:
        httpx.post(f"{self.stack.media_api_url}/v3/config/paths/add/{path}", json={"alwaysAvailable": True}).raise_for_status()

    def _parallel(self, calls) -> tuple[list[MediaHandle], int]:
        handles, failures = [], 0
        with concurrent.futures.ThreadPoolExecutor(max_workers=self.args.setup_concurrency) as pool:
            for future in [pool.submit(call) for call in calls]:
                try:
                    handles.append(future.result())
                except Exception as exc:  # noqa: BLE001 - a failed setup is a measured outcome
                    failures += 1
                    print(f"    setup failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return handles, failures

    def _close(self, handles: list[MediaHandle]) -> None:
        self._parallel([lambda h=h: self.bridge.close(h) for h in handles])

    def _window(self) -> tuple[float, float, float]:
        """Settle, then measure one window: (start epoch s, end epoch s, relay CPU %)."""
        time.sleep(self.args.settle_s)
        self.relay_proc.cpu_percent(None)
        start = time.time()
        time.sleep(self.args.window_s)
        end = time.time()
        return start, end, self.relay_proc.cpu_percent(None)

    def _measure(self, phase: str, sessions: int, failures: int, role: str, source: MediaHandle | None = None) -> Step:
        start, end, relay_cpu = self._window()
        return self._step(MEASURED, start, end, relay_cpu, phase, sessions, failures, role, source)

    def _step(self, engine: str, start: float, end: float, relay_cpu: float, phase: str, sessions: int, failures: int,
              role: str, source: MediaHandle | None = None) -> Step:
        records = self.collector.window(engine, start, end + 0.5)
        health = [r["health"] for r in records]
        groups = [g for r in records for g in r["groups"] if g["role"] == role]
        per_second = [sum(g["packets"] for g in r["groups"] if g["role"] == role) for r in records]
        extra = {}
        if role == "publisher":
            lateness = [g["lateness_ms"]["p95"] for g in groups if g.get("lateness_ms")]
            extra["lateness_p95_ms"] = round(max(lateness), 2) if lateness else None
        else:
            lost = sum(g["lost"] for g in groups)
            expected = sum(g["expected"] for g in groups)
            extra["loss_pct"] = round(100.0 * lost / expected, 2) if expected else None
        step = Step(
            phase=phase,
            sessions=sessions,
            cpu_pct=round(_mean([h["cpu_pct"] for h in health]), 1),
            lag_p95_ms=round(_mean([h["loop_lag_p95_ms"] for h in health]), 2),
            packets_per_session_s=round(_mean(per_second) / max(1, sessions), 2),
            relay_cpu_pct=round(relay_cpu, 1),
            setup_failures=failures,
            extra=extra,
            source_lost=source is not None and source.handle in self.collector.disconnected,
        )
        packets_s = _mean(per_second)
        if packets_s > 0:
            step.cpu_us_per_packet = round(step.cpu_pct * 1e4 / packets_s, 2)
        if role == "publisher":
            step.sends_on_time = extra.get("lateness_p95_ms") is not None and extra["lateness_p95_ms"] < LAG_LIMIT_MS
        self.steps.append(step)
        verdict = step.verdict
        per_packet = f"{step.cpu_us_per_packet:5.1f}" if step.cpu_us_per_packet is not None else "  n/a"
        print(f"  {phase:9s} {sessions:5d} sessions: engine cpu {step.cpu_pct:5.1f} %  lag p95 {step.lag_p95_ms:6.2f} ms  "
              f"{step.packets_per_session_s:5.1f} pkt/s each  {per_packet} us cpu/pkt  relay cpu {step.relay_cpu_pct:5.1f} %  "
              f"{extra}  -> {verdict}", flush=True)
        return step

    # --- phases ---
    def listeners(self, phase: str, mode: str, steps: list[int]) -> list[Step]:
        path = f"bench/1/{phase}"
        self.add_path(path)
        url = f"{self.stack.media_http_url}/{path}"
        publisher = self.bridge.publish(f"{url}/whip", path, engine=HELPER)
        handles: list[MediaHandle] = []
        results = []
        try:
            for target in steps:
                if time.monotonic() > self.deadline_s:
                    print(f"  {phase}: time budget reached, stopping before {target}")
                    break
                new, failures = self._parallel(
                    [lambda: self.bridge.listen(f"{url}/whep", path, mode=mode, engine=MEASURED)] * (target - len(handles))
                )
                handles += new
                step = self._measure(phase, len(handles), failures, mode, source=publisher)
                results.append(step)
                if step.verdict in ("over", "source-lost"):
                    break  # past the engine's capacity: further steps only add noise
        finally:
            self._close(handles)
            self.bridge.close(publisher)
        return results

    def side_by_side(self, sessions: int) -> dict:
        """``sessions`` tap listeners with the fast path (e0) and as many without it (e2), at the same time."""
        path = "bench/1/side"
        self.add_path(path)
        url = f"{self.stack.media_http_url}/{path}"
        publisher = self.bridge.publish(f"{url}/whip", path, engine=HELPER)
        handles: list[MediaHandle] = []
        try:
            fast, fast_failures = self._parallel([lambda: self.bridge.listen(f"{url}/whep", path, mode="listener", engine=MEASURED)] * sessions)
            handles += fast
            queued, queued_failures = self._parallel([lambda: self.bridge.listen(f"{url}/whep", path, mode="queued", engine=COMPARED)] * sessions)
            handles += queued
            start, end, relay_cpu = self._window()
            steps = {
                "fast": self._step(MEASURED, start, end, relay_cpu, "tap", len(fast), fast_failures, "listener", publisher),
                "queued": self._step(COMPARED, start, end, relay_cpu, "queued", len(queued), queued_failures, "queued", publisher),
            }
        finally:
            self._close(handles)
            self.bridge.close(publisher)
        fast_us, queued_us = steps["fast"].cpu_us_per_packet, steps["queued"].cpu_us_per_packet
        result = {"sessions": sessions, "fast_us_per_packet": fast_us, "queued_us_per_packet": queued_us}
        if fast_us and queued_us:
            result["queued_over_fast"] = round(queued_us / fast_us, 2)
        return result

    def publishers(self, steps: list[int]) -> list[Step]:
        handles: list[MediaHandle] = []
        results = []
        try:
            for target in steps:
                if time.monotonic() > self.deadline_s:
                    print(f"  publishers: time budget reached, stopping before {target}")
                    break
                paths = [f"bench/pub/{i}" for i in range(len(handles), target)]
                for path in paths:
                    self.add_path(path)
                new, failures = self._parallel(
                    [lambda p=p: self.bridge.publish(f"{self.stack.media_http_url}/{p}/whip", p, engine=MEASURED) for p in paths]
                )
                handles += new
                step = self._measure("publisher", len(handles), failures, "publisher")
                results.append(step)
                if step.verdict == "over":
                    break
        finally:
            self._close(handles)
        return results


def capacity(steps: list[Step]) -> dict:
    clean = [s for s in steps if s.clean]
    if not clean:
        return {"per_core": None, "cost_pct": None, "max_clean": 0}
    best = max(clean, key=lambda s: s.sessions)
    cost = best.cpu_pct / best.sessions
    return {"per_core": int(CPU_LIMIT_PCT / cost) if cost > 0 else None, "cost_pct": round(cost, 4), "max_clean": best.sessions}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter steps (about a minute)")
    parser.add_argument("--tap-steps", type=lambda s: [int(x) for x in s.split(",")], metavar="N,N,...")
    parser.add_argument("--stock-steps", type=lambda s: [int(x) for x in s.split(",")], metavar="N,N,...")
    parser.add_argument("--publisher-steps", type=lambda s: [int(x) for x in s.split(",")], metavar="N,N,...")
    parser.add_argument("--side-by-side", type=int, default=None, metavar="N",
                        help="tap listeners per engine in the fast-path side-by-side phase (0 skips it)")
    parser.add_argument("--settle-s", type=float, default=None, metavar="SECONDS")
    parser.add_argument("--window-s", type=float, default=None, metavar="SECONDS")
    parser.add_argument("--max-seconds", type=float, default=None, metavar="SECONDS", help="overall time budget")
    parser.add_argument("--setup-concurrency", type=int, default=20, metavar="N")
    parser.add_argument("--results-dir", default=None, metavar="DIR")
    parser.add_argument("--compare", default=None, metavar="REF",
                        help="also run REF's version of this benchmark (git archive) at the same time and print both")
    args = parser.parse_args(argv)
    quick = args.quick
    args.tap_steps = args.tap_steps or ([200, 400, 600] if quick else [200, 400, 600, 800, 1000])
    args.stock_steps = args.stock_steps or ([40, 80] if quick else [50, 100, 150])
    args.publisher_steps = args.publisher_steps or ([50, 150] if quick else [50, 150, 300])
    args.side_by_side = args.side_by_side if args.side_by_side is not None else (150 if quick else 200)
    args.settle_s = args.settle_s if args.settle_s is not None else (2.0 if quick else 3.0)
    args.window_s = args.window_s if args.window_s is not None else (3.0 if quick else 6.0)
    args.max_seconds = args.max_seconds if args.max_seconds is not None else (120.0 if quick else 300.0)
    return args


def _start_previous(ref: str, argv: list[str]) -> tuple[subprocess.Popen, Path, Path]:
    """REF's version of this benchmark, with the same arguments (minus --compare/--results-dir), started now."""
    work = Path(tempfile.mkdtemp(prefix="voxload-media-bench-previous-"))
    tree = work / "tree"
    tree.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO_ROOT), "archive", ref], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    passed, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("--compare", "--results-dir"):
            skip = True
        elif not arg.startswith(("--compare=", "--results-dir=")):
            passed.append(arg)
    results = work / "results"
    log = open(work / "output.txt", "w")
    proc = subprocess.Popen([sys.executable, str(tree / "benchmarks" / "media_capacity.py"), *passed, "--results-dir", str(results)],
                            stdout=log, stderr=subprocess.STDOUT, cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)})
    return proc, results, work


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print("command:", shlex.join([sys.executable, *sys.argv]))
    print(f"machine: {os.cpu_count()} CPUs, load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    previous = _start_previous(args.compare, list(sys.argv[1:] if argv is None else argv)) if args.compare else None
    bench = Benchmark(args)
    print(f"measured engine on CPU {bench.engine_cpu}; relay and publisher engine on CPU {bench.shared_cpu}; results in {bench.results_dir}")
    started = time.monotonic()
    try:
        bench.start()
        side = None
        if args.side_by_side > 0:
            print(f"tap listeners with and without the raw fast path, side by side ({args.side_by_side} each, same CPU):")
            side = bench.side_by_side(args.side_by_side)
        print("RTP-tap listeners:")
        tap = bench.listeners("tap", "listener", args.tap_steps)
        print("stock aiortc decoding listeners:")
        stock = bench.listeners("stock", "stock", args.stock_steps)
        print("publishers (pre-encoded Opus loop):")
        pubs = bench.publishers(args.publisher_steps)
    except BaseException:
        if previous is not None:  # ours failed or was interrupted: do not leave the other ramp running
            previous[0].send_signal(signal.SIGINT)
        raise
    finally:
        bench.stop()
    summary = {"tap": capacity(tap), "stock": capacity(stock), "publishers": capacity(pubs), "fast_path": side}
    if summary["tap"]["per_core"] and summary["stock"]["per_core"]:
        summary["tap_over_stock"] = round(summary["tap"]["per_core"] / summary["stock"]["per_core"], 2)
    summary["steps"] = [dataclasses.asdict(s) | {"verdict": s.verdict} for s in bench.steps]
    summary["command"] = shlex.join([sys.executable, *sys.argv])
    (bench.results_dir / "media_capacity.json").write_text(json.dumps(summary, indent=2))
    print(f"\nper engine core (<= {CPU_LIMIT_PCT:g} % CPU, loop lag p95 < {LAG_LIMIT_MS:g} ms, >= {MIN_PACKETS_S:g} packets/s each):")
    for name, label in (("tap", "RTP-tap listeners"), ("stock", "stock aiortc listeners"), ("publishers", "publishers")):
        c = summary[name]
        print(f"  {label:24s} {c['per_core'] or 'n/a':>6}  (cost {c['cost_pct']} % of a core each; largest clean step {c['max_clean']})")
    if "tap_over_stock" in summary:
        print(f"  tap / stock ratio        {summary['tap_over_stock']:>6}x")
    if side:
        print(f"  fast path: {side['fast_us_per_packet']} us engine CPU per packet with it, {side['queued_us_per_packet']} us "
              f"without ({side.get('queued_over_fast', 'n/a')}x), {side['sessions']} listeners each, side by side")
    if any(step.verdict == "contended" for step in bench.steps):
        print("  note: some steps were contended by other processes on the engine's CPU; rerun on a quieter machine for a clean ramp")
    if previous is not None:
        proc, results, work = previous
        try:
            proc.wait(timeout=args.max_seconds + 300)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        try:
            before = json.loads((results / "media_capacity.json").read_text())
        except (OSError, ValueError):
            before = None
        if before is None:
            print(f"  {args.compare}'s run left no summary (see {work / 'output.txt'}): no side-by-side figure")
        else:
            ours, theirs = summary["tap"]["per_core"], before["tap"]["per_core"]
            ratio = f"{ours / theirs:.2f}x" if ours and theirs else "n/a"
            print(f"  RTP-tap listeners per engine core, side by side: this tree {ours or 'n/a'}, {args.compare} "
                  f"{theirs or 'n/a'} (this tree / {args.compare}: {ratio}; both ramps at the same time; {args.compare}'s "
                  f"output in {work / 'output.txt'})")
        shutil.rmtree(work / "tree", ignore_errors=True)
    print(f"took {time.monotonic() - started:.0f} s; load average now {', '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"summary in {bench.results_dir / 'media_capacity.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
