"""Report speed: how long `build_report` takes on a one-hour, 500-listener run folder, against a 60 s one.

Synthesises run folders in the real formats (``harness.results.run_folder``: run.json, summary.json, samples/*.jsonl;
``harness.media.samples``: media-*-{listeners,publishers}.csv, -events.jsonl, -seconds.jsonl; Locust's
stats history CSV) with the row counts a real run of that size writes: one listener row per listener and
second, one seconds.jsonl line per engine and second with a group per booth and role, ~0.3 audio-delay
polls per listener and second (what the smoke run measures), caption samples of the transcribed booths and
the hub-lag probe every 100 ms, and harness.rehearsal.plugin's stats history. Values are random but plausible; the timing is what is measured.

Issue 6 budget: a one-hour run with 500 listeners reports in under 30 s.

    python3 benchmarks/report_speed.py                       # 60 s and 3600 s, 500 listeners, side by side
    python3 benchmarks/report_speed.py --durations 3600 --keep /tmp/bench-run
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from harness.media.samples import LISTENER_COLUMNS, PUBLISHER_COLUMNS  # noqa: E402
from harness.report import build_report  # noqa: E402
from harness.results.run_folder import write_json_atomic  # noqa: E402

T0 = 1_795_000_000.0
BUDGET_S = 30.0
POLLS_PER_LISTENER_S = 0.3  # audio-delay polls (contract 14.11), as measured by the smoke run
PROBE_SHARE = 0.1
TRANSCRIBED_BOOTHS = 10


def _iso(t: float) -> str:
    return pd.Timestamp(t, unit="s", tz="UTC").isoformat().replace("+00:00", "Z")


def _slo(metric: str, source: str, aggregation: str, op: str, bound: float, unit: str, observed: float, n: int, line: int) -> dict:
    state = "pass" if eval(f"{observed} {op} {bound}") else "fail"  # noqa: S307 - our own literal operators
    return {"metric": metric, "source": source, "file": "scenarios/bench.yaml", "line": line, "aggregation": aggregation, "op": op,
            "bound": bound, "unit": unit, "required": True, "state": state, "observed": observed, "sample_count": n}


def synthesise(run: Path, *, duration_s: int, listeners: int, booths: int, engines: int, seed: int = 0) -> dict[str, int]:
    rng = np.random.default_rng(seed)
    (run / "samples").mkdir(parents=True)
    (run / "media").mkdir()
    slug = "vl-bench"
    booth_ids = [f"{slug}-{1 + b // 10}-{chr(97 + b % 26)}{chr(97 + b // 26 % 26)}" for b in range(booths)]
    refs = [f"Room {1 + b // 10}/{chr(97 + b % 26)}{chr(97 + b // 26 % 26)}" for b in range(booths)]
    per_booth = listeners // booths
    scenario = {
        "name": "bench", "description": "synthetic run for the report benchmark", "source_path": "scenarios/bench.yaml",
        "target": {"host": None, "auth_mode": "open", "provisioning": "forms", "keep": False},
        "event": {"rooms": [{"name": f"Room {r + 1}", "booths": [
            {"room": f"Room {r + 1}", "language": refs[b].split("/")[1], "interpreters": 2, "listeners": per_booth, "transcribed": b < TRANSCRIBED_BOOTHS}
            for b in range(booths) if b // 10 == r]} for r in range((booths + 9) // 10)]},
        "load": {"stages": [{"index": 0, "start_s": 0.0, "duration_s": float(duration_s), "listeners": listeners, "spawn_rate_per_s": 10.0}],
                 "admins": 1, "coordinators": 1, "think_time_s": {}},
        "handovers": {"method": "offer", "schedule": [], "every_s": 60.0},
        "media": {"probe_listener_share": PROBE_SHARE, "silence_threshold_ms": 200.0, "engines": engines},
        "slos": [],
    }
    write_json_atomic(run / "event.json", {"slug": slug, "event_id": 1, "booths": {
        ref: {"booth_id": bid, "room_id": 1 + i // 10, "transcribed": i < TRANSCRIBED_BOOTHS} for i, (ref, bid) in enumerate(zip(refs, booth_ids))}})

    # media: one listener row per listener and second, split over the engines
    seconds = np.arange(duration_s, dtype=float)
    handles = np.arange(listeners)
    booth_of = handles % booths
    probe = handles < booths * max(1, int(per_booth * PROBE_SHARE))
    n = listeners * duration_s
    h = np.tile(handles, duration_s)
    frame = pd.DataFrame({
        "t_epoch_s": np.repeat(T0 + seconds + 1, listeners).round(3),
        "engine": np.array([f"e{e}" for e in range(engines)])[h % engines],
        "handle": np.char.add("l", h.astype(str)),
        "booth": np.array(booth_ids)[booth_of[h]],
        "role": np.where(probe[h], "probe", "listener"),
        "packets": 50, "expected": 50, "lost": rng.binomial(50, 0.001, n),
        "jitter_ms": rng.gamma(2.0, 0.8, n).round(3),
        "latency_p50_ms": rng.gamma(4.0, 1.0, n).round(3), "latency_p95_ms": rng.gamma(6.0, 1.0, n).round(3),
        "latency_max_ms": rng.gamma(8.0, 1.0, n).round(3), "gaps": 0, "gap_packets_max": 0, "silence_max_ms": 0.0,
        "max_interarrival_ms": (20 + rng.gamma(2.0, 2.0, n)).round(1), "restarts": 0, "unknown_payloads": 0,
    })
    frame["marker_latency_ms"] = np.where(frame["role"] == "probe", (85 + rng.gamma(2.0, 3.0, n)).round(3), np.nan)
    frame["markers"] = np.where(frame["role"] == "probe", 2.0, np.nan)
    frame["markers_skipped"] = np.where(frame["role"] == "probe", 0.0, np.nan)
    frame["decoded_gap_ms"] = np.where(frame["role"] == "probe", 0.0, np.nan)
    for e in range(engines):
        frame[frame["engine"] == f"e{e}"].to_csv(run / "media" / f"media-e{e}-listeners.csv", index=False, columns=list(LISTENER_COLUMNS))
        pubs = pd.DataFrame({"t_epoch_s": np.repeat(T0 + seconds + 1, booths), "engine": f"e{e}",
                             "handle": np.tile([f"p{b}" for b in range(booths)], duration_s), "booth": np.tile(booth_ids, duration_s),
                             "packets_sent": 50, "lateness_p95_ms": 0.8, "lateness_max_ms": 2.1})
        pubs[pubs.index % engines == e].to_csv(run / "media" / f"media-e{e}-publishers.csv", index=False, columns=list(PUBLISHER_COLUMNS))
        with open(run / "media" / f"media-e{e}-events.jsonl", "w") as fh:
            for l in handles[handles % engines == e]:
                fh.write(json.dumps({"event": "setup", "t_epoch_s": T0 + l / 10, "handle": f"l{l}", "booth": booth_ids[booth_of[l]],
                                     "role": "probe" if probe[l] else "listener", "ok": True, "offer_ms": 2.0, "post_ms": 8.0,
                                     "connected_ms": 38.0, "first_packet_ms": float(50 + rng.gamma(2, 5))}) + "\n")
        group = json.dumps({"booth": "B", "role": "listener", "sessions": per_booth, "packets": 50 * per_booth, "expected": 50 * per_booth,
                            "lost": 0, "loss_pct": 0.0, "jitter_ms_mean": 1.2, "jitter_ms_max": 3.1,
                            "latency_ms": {"count": 500, "p50": 4.0, "p95": 6.0, "p99": 8.0, "max": 9.0}, "gaps": 0, "silences": 0,
                            "silence_ms_max": 0.0, "interarrival_ms_max": 23.0, "restarts": 0, "unknown_payloads": 0,
                            "setups": {"ok": 0, "failed": 0, "connected_ms": None, "first_packet_ms": None}}, separators=(",", ":"))
        groups = "[" + ",".join(group.replace('"B"', f'"{bid}"') for bid in booth_ids[e::engines]) + "]"
        with open(run / "media" / f"media-e{e}-seconds.jsonl", "w") as fh:
            for s in seconds:
                cpu, lag = float(rng.normal(40, 5)), float(rng.gamma(2, 1))
                health = {"cpu_pct": round(cpu, 1), "loop_lag_p95_ms": round(lag, 2), "loop_lag_max_ms": round(lag * 3, 2),
                          "listeners": listeners // engines, "publishers": 0, "packets_per_listener_s": 50.0, "saturated": False, "reasons": []}
                fh.write(f'{{"engine":"e{e}","t_epoch_s":{T0 + s + 1:.3f},"interval_s":1.0,"health":{json.dumps(health, separators=(",", ":"))},"groups":{groups}}}\n')

    # samples/locust.jsonl: HTTP polls, hub lag, captions, handovers
    lines = []
    n_http = int(listeners * POLLS_PER_LISTENER_S * duration_s)
    t_http = np.sort(T0 + rng.uniform(0, duration_s, n_http))
    d_http = rng.gamma(3.0, 6.0, n_http)
    err = rng.random(n_http) < 0.001
    for t, d, e in zip(t_http.tolist(), d_http.tolist(), err.tolist()):
        lines.append(f'{{"t":{t},"metric":"http_req_duration_ms","value":{d},"tags":{{"name":"/listener/[slug]/rooms/[id]/audio-delay"}}}}\n')
        lines.append(f'{{"t":{t},"metric":"http_error_rate","value":{1.0 if e else 0.0},"tags":{{"name":"/listener/[slug]/rooms/[id]/audio-delay"}}}}\n')
    for t in (T0 + np.arange(0, duration_s, 0.1)).tolist():
        lines.append(f'{{"t":{t},"metric":"generator_loop_lag_ms","value":{float(rng.gamma(2, 0.5))},"tags":{{"process":"locust"}}}}\n')
    for b in range(min(TRANSCRIBED_BOOTHS, booths)):
        for t in (T0 + np.arange(5, duration_s, 0.1)).tolist():
            lines.append(f'{{"t":{t},"metric":"caption_delay_ms","value":{float(1500 + rng.gamma(2, 400))},"tags":{{"booth":"{booth_ids[b]}"}}}}\n')
    handovers = 0
    for b in range(booths):
        for t in (T0 + np.arange(5 + b % 15, duration_s, 60)).tolist():
            lines.append(f'{{"t":{t},"metric":"handover_failure_rate","value":0.0,"tags":{{"booth":"{booth_ids[b]}"}}}}\n')
            lines.append(f'{{"t":{t},"metric":"handover_duration_ms","value":3.0,"tags":{{"booth":"{booth_ids[b]}"}}}}\n')
            handovers += 1
    lines.sort(key=lambda line: float(line[5:line.index(",")]))
    (run / "samples" / "locust.jsonl").write_text("".join(lines))

    users = np.minimum(listeners, (seconds + 1) * 10).astype(int) + 2 * booths + 2
    rps = listeners * POLLS_PER_LISTENER_S
    history = pd.DataFrame({"timestamp": (T0 + seconds + 1).round(3), "user_count": users, "requests_per_s": rps, "failures_per_s": 0.0,
                            "p50_ms": 15, "p95_ms": 40, "p99_ms": 60, "total_requests": (rps * (seconds + 1)).astype(int), "total_failures": 0})
    history.to_csv(run / "locust_stats_history.csv", index=False)

    m2e = frame.loc[frame["role"] == "probe", "marker_latency_ms"]
    write_json_atomic(run / "run.json", {
        "schema_version": 1, "run_id": run.name, "status": "finished", "started_at": _iso(T0), "ended_at": _iso(T0 + duration_s),
        "exit_code": 0, "scenario": scenario, "target": {"url": "http://127.0.0.1:8000", "version": None},
        "harness": {"version": "0.1.0", "git_sha": None}, "machine": {"cpu_usable": 2, "python": sys.version.split()[0], "platform": sys.platform},
        "command": ["benchmarks/report_speed.py"], "generator_health": {"saturated": False, "cpu_pct_max": 55.0, "loop_lag_p99_ms": 3.0, "notes": []},
        "error": None})
    slos = [_slo("mouth_to_ear_latency_ms", "p95 < 400", "p95", "<", 400.0, "ms", float(m2e.quantile(0.95)), int(m2e.size), 1),
            _slo("http_error_rate", "rate < 0.02", "rate", "<", 0.02, "ratio", float(err.mean()), n_http, 2)]
    write_json_atomic(run / "summary.json", {
        "schema_version": 1, "run_id": run.name, "scenario": "bench", "status": "finished", "verdict": "passed", "exit_code": 0,
        "timing": {"started_at": _iso(T0), "ended_at": _iso(T0 + duration_s), "duration_s": float(duration_s)},
        "slo_counts": {"pass": 2, "fail": 0, "no_data": 0}, "slos": slos,
        "counts": {"handovers": handovers, "handovers_ok": handovers, "listener_sessions": listeners},
        "generator_health": {"saturated": False, "cpu_pct_max": 55.0, "loop_lag_p99_ms": 3.0, "notes": []}, "harness_error": None})
    return {"listener_rows": n, "sample_lines": len(lines)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--durations", type=int, nargs="+", default=[60, 3600], metavar="S", help="run lengths to time (default 60 3600)")
    parser.add_argument("--listeners", type=int, default=500, metavar="N")
    parser.add_argument("--booths", type=int, default=50, metavar="N")
    parser.add_argument("--engines", type=int, default=4, metavar="N")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="keep the synthetic run folders under DIR")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="voxload-report-bench-")) if args.keep is None else args.keep
    print(f"command: python3 benchmarks/report_speed.py {' '.join(sys.argv[1:] if argv is None else argv)}".rstrip())
    print(f"{'run':>8} {'listener rows':>14} {'sample lines':>13} {'synthesise s':>13} {'report s':>9}")
    times = {}
    try:
        # The first report in a process pays one-time imports (matplotlib backends, Jinja2) and font loading;
        # a tiny warm-up keeps that out of the per-run times so the ratio compares data volume only.
        warm = root / "warm-up"
        if warm.exists():
            shutil.rmtree(warm)
        synthesise(warm, duration_s=5, listeners=4, booths=2, engines=1)
        t0 = time.perf_counter()
        build_report(warm)
        print(f"{'warm-up':>8} {'(one-time imports and fonts, not counted)':>42} {time.perf_counter() - t0:>9.1f}")
        for duration_s in args.durations:
            run = root / f"bench-{duration_s}s"
            if run.exists():
                shutil.rmtree(run)
            t0 = time.perf_counter()
            sizes = synthesise(run, duration_s=duration_s, listeners=args.listeners, booths=args.booths, engines=args.engines)
            t1 = time.perf_counter()
            build_report(run)
            times[duration_s] = time.perf_counter() - t1
            print(f"{duration_s:>7}s {sizes['listener_rows']:>14,} {sizes['sample_lines']:>13,} {t1 - t0:>13.1f} {times[duration_s]:>9.1f}", flush=True)
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    if len(times) > 1:
        shortest, longest = min(times), max(times)
        print(f"ratio {longest} s run / {shortest} s run: {times[longest] / times[shortest]:.1f}x the time for {longest / shortest:.0f}x the data")
    worst = max(times.values())
    print(f"budget {BUDGET_S:.0f} s: {'met' if worst < BUDGET_S else 'MISSED'} (slowest report {worst:.1f} s)")
    return 0 if worst < BUDGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
