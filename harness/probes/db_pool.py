"""Probe ``db-pool``: DB-bound request latency against concurrency, reads and writes apart (contract 9, 14.9-11).

Walks a stepped concurrency ramp (:class:`~harness.scenario.ramp.StepPlan`). At each level N threads loop
over DB-bound requests as fast as the portal answers: reads are the listener's audio-delay poll (one DB
session each, contract 6.2 step 4, the main steady-state read load) and, one in four by default, writes
are the booth-create shortcut (a new invite row per call, contract 4.2). Every request is streamed to
requests.csv; each step is summarised per kind (p50/p95 latency, throughput, 5xx, timeouts) in steps.csv.
The knee is found with kneedle on the read p95 latency against concurrency; the first step with a 5xx or
a timeout is reported as the first failure (pool timeout and SQLite "database is locked" both answer a
bare 500, contract 9.3; only the portal's log tells them apart).
"""

from __future__ import annotations

import argparse
import itertools
import math
import threading
import time

import numpy as np

from ..clients.booth_api import BoothApi
from ..clients.errors import ClientError, RequestTimeout, TransportError, UnexpectedStatus
from ..clients.listener import ListenerClient
from .base import Probe, ProbeContext
from .event import provision
from .finding import DataFile, Finding, KneePoint, Limit, Plot, PlotKind, Severity
from .knee import METHOD_NAME, CurveShape, kneedle
from ..scenario.ramp import StepPlan

READ = "read"
WRITE = "write"
# A step "fails" from this share of failed requests on: one stray 500 under CPU contention is noise, not the pool.
FAILURE_PCT = 1.0

REQUEST_COLUMNS = {
    "t_s": "seconds since the probe started, at the answer",
    "level": "concurrent request loops at the time (count)",
    "kind": "read = GET /listener/{slug}/rooms/{room}/audio-delay; write = POST /api/events/{slug}/booths",
    "latency_ms": "request round trip (ms)",
    "status": "HTTP status (0 = no answer)",
    "outcome": "ok | http_5xx | timeout | other",
}
STEP_COLUMNS = {
    "level": "concurrent request loops (count)",
    "kind": "read | write",
    "requests": "requests answered in the step (count)",
    "ok": "2xx answers (count)",
    "errors_5xx": "5xx answers: pool timeout or database is locked (count)",
    "timeouts": "requests with no answer within the client timeout (count)",
    "error_pct": "(errors_5xx + timeouts) / requests (%)",
    "p50_ms": "median latency of ok answers (ms)",
    "p95_ms": "95th percentile latency of ok answers (ms)",
    "throughput_per_s": "ok answers per second (1/s)",
}


class DbPoolProbe(Probe):
    name = "db-pool"
    help = "stepped concurrency of DB-bound reads and writes: latency knee, first 500s and timeouts"
    knobs = ("REFSTACK_DB_POOL_SIZE", "REFSTACK_DB_MAX_OVERFLOW", "REFSTACK_DB_POOL_TIMEOUT_S")
    # Contract 9.1: SQLAlchemy's QueuePool defaults, which VoxBento does not override.
    knob_defaults = {"REFSTACK_DB_POOL_SIZE": 5, "REFSTACK_DB_MAX_OVERFLOW": 10, "REFSTACK_DB_POOL_TIMEOUT_S": 30.0}
    default_budget_s = 300.0

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--levels", default="1,2,4,8,16,32,64", metavar="N,N,...",
                            help="concurrency steps, strictly increasing (default 1,2,4,8,16,32,64)")
        parser.add_argument("--step-s", type=float, default=10.0, metavar="SECONDS", help="time per step (default 10)")
        parser.add_argument("--write-every", type=int, default=4, metavar="N",
                            help="every Nth request of a loop is a write (default 4; 0 = reads only)")
        parser.add_argument("--request-timeout-s", type=float, default=40.0, metavar="SECONDS",
                            help="client timeout per request (default 40, above VoxBento's 30 s pool timeout)")

    @classmethod
    def check_arguments(cls, args: argparse.Namespace) -> None:
        args.plan = StepPlan.parse(args.levels, args.step_s)
        if args.write_every < 0 or args.request_timeout_s <= 0:
            raise ValueError("--write-every must be >= 0 and --request-timeout-s > 0")

    def run(self, ctx: ProbeContext) -> Finding:
        args = ctx.args
        plan: StepPlan = args.plan
        requests_csv = ctx.csv("requests.csv", REQUEST_COLUMNS)
        steps_csv = ctx.csv("steps.csv", STEP_COLUMNS)
        event = provision(ctx.target, self.name, 1)
        booth = event.booths[0]
        try:
            loops = _Loops(ctx, event, booth.language, requests_csv, args.write_every, args.request_timeout_s)
            for level, _, _ in plan.steps():
                if ctx.remaining_s() < plan.step_s:
                    break
                results = loops.run_step(level, plan.step_s)
                for kind in (READ, WRITE):
                    steps_csv.write(level=level, kind=kind, **_summary(results.get(kind, []), plan.step_s))
        finally:
            event.teardown()
        return self._finding(ctx, steps_csv.rows(), event.slug)

    def _finding(self, ctx: ProbeContext, steps: list[dict], slug: str) -> Finding:
        reads = [s for s in steps if s["kind"] == READ]
        writes = [s for s in steps if s["kind"] == WRITE]
        knee = kneedle([s["level"] for s in reads], [s["p95_ms"] if s["p95_ms"] is not None else math.nan for s in reads],
                       CurveShape.CONVEX_INCREASING)
        knee_column = "p95_ms"
        if knee is None:
            # A portal that is CPU-bound from the first steps queues at once: its latency grows in proportion to the
            # concurrency (Little's law), a straight line without a knee, while its throughput stops growing.
            knee = kneedle([s["level"] for s in reads], [s["throughput_per_s"] for s in reads], CurveShape.CONCAVE_INCREASING)
            knee_column = "throughput_per_s"
        failing = [s for s in steps if s["error_pct"] >= FAILURE_PCT]
        first_fail = min(failing, key=lambda s: s["level"]) if failing else None
        served = [s["level"] for s in reads if first_fail is None or s["level"] < first_fail["level"]]
        # The limit is the last step every kind got through: below the pool's breaking point for this pool timeout.
        limit_value = max(served) if served and first_fail is not None else None
        configured = self.configured(ctx.target)
        pool = ""
        if "REFSTACK_DB_POOL_SIZE" in configured:
            pool = (f" with a pool of {configured['REFSTACK_DB_POOL_SIZE']}+{configured.get('REFSTACK_DB_MAX_OVERFLOW', '?')} "
                    f"connections and a {configured.get('REFSTACK_DB_POOL_TIMEOUT_S', '?')} s pool timeout")
        levels = [s["level"] for s in reads]
        evidence = [f"level {s['level']}: read p95 {_ms(s['p95_ms'])}, write p95 {_ms(w['p95_ms'])}, "
                    f"5xx {s['errors_5xx'] + w['errors_5xx']}, timeouts {s['timeouts'] + w['timeouts']}"
                    for s, w in zip(reads, writes)]
        parts = [f"DB-bound requests were ramped over {', '.join(map(str, levels))} concurrent loops{pool}."]
        if knee is not None and knee_column == "p95_ms":
            parts.append(f"Read latency bends upward at {knee.x:.0f} concurrent requests (p95 {knee.y:.0f} ms there): "
                         f"beyond it each added listener poll waits longer for a connection.")
        elif knee is not None:
            parts.append(f"Read latency grew in proportion to concurrency from the start (queueing, no bend), and read "
                         f"throughput stopped growing at {knee.x:.0f} concurrent requests ({knee.y:.0f} reads/s there): "
                         f"beyond it added polls only wait longer.")
        else:
            parts.append("Neither read latency nor read throughput showed a knee over this ramp.")
        if first_fail is not None:
            fails = [s for s in steps if s["level"] == first_fail["level"]]
            parts.append(f"Requests started failing at {first_fail['level']} concurrent requests "
                         f"({sum(s['errors_5xx'] for s in fails)} bare 500s and {sum(s['timeouts'] for s in fails)} timeouts in that step), "
                         f"so this deployment serves about {limit_value} concurrent DB-bound requests; beyond that listeners "
                         f"see failing audio-delay polls and admins 500 pages while /healthz stays 200.")
        else:
            parts.append("No request failed.")
        return Finding(
            probe=self.name,
            title="Database pool: latency knee and first failures",
            limit=Limit("concurrent DB-bound requests served before failures began", limit_value, "requests"),
            configured=configured,
            method=(f"first failing step: the lowest concurrency where >= {FAILURE_PCT:g} % of requests got a 5xx or timed out "
                    f"(the limit is the step below it); latency knee: {METHOD_NAME} on p95 read latency vs concurrency, "
                    f"or, where latency has none (a straight queueing line), on read throughput vs concurrency"),
            knee=KneePoint(knee.x, knee.y, "level", knee_column) if knee is not None else None,
            symptom="rising poll latency, then bare 500s (pool timeout or database is locked); /healthz stays 200",
            trigger=f"GET /listener/{slug}/rooms/[id]/audio-delay and POST /api/events/{slug}/booths at rising concurrency",
            evidence=evidence,
            paragraph=" ".join(parts),
            severity=Severity.CRITICAL if first_fail is not None else (Severity.WARNING if knee is not None else Severity.INFO),
            recommendation=("Keep concurrent DB-bound requests (about listeners/3 polls per second plus admin and join traffic) "
                            "below the knee, size the pool above it, and keep slow work (email) out of DB transactions."),
            data=[
                DataFile("steps.csv", "per step and kind: latency percentiles, throughput, failures", STEP_COLUMNS,
                         Plot(x="level", y=("p95_ms", "p50_ms"), series="kind", kind=PlotKind.LINE)),
                DataFile("requests.csv", "every request as it was answered", REQUEST_COLUMNS,
                         Plot(x="t_s", y=("latency_ms",), series="kind", kind=PlotKind.SCATTER)),
            ],
        )


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f} ms"


def _summary(results: list[tuple[float, int, str]], step_s: float) -> dict:
    ok = [lat for lat, _, outcome in results if outcome == "ok"]
    arr = np.asarray(ok, dtype=float)
    return {
        "requests": len(results),
        "ok": len(ok),
        "errors_5xx": sum(1 for _, _, o in results if o == "http_5xx"),
        "timeouts": sum(1 for _, _, o in results if o == "timeout"),
        "error_pct": 100.0 * sum(1 for _, _, o in results if o in ("http_5xx", "timeout")) / len(results) if results else 0.0,
        "p50_ms": float(np.percentile(arr, 50)) if ok else None,
        "p95_ms": float(np.percentile(arr, 95)) if ok else None,
        "throughput_per_s": len(ok) / step_s,
    }


class _Loops:
    """Request loops for one step; each loop is one simulated client with its own IP (contract 1.1)."""

    def __init__(self, ctx: ProbeContext, event, language: str, stream, write_every: int, timeout_s: float) -> None:
        self.ctx = ctx
        self.event = event
        self.language = language
        self.stream = stream
        self.write_every = write_every
        self.timeout_s = timeout_s
        self._ips = itertools.count(1)

    def _client(self) -> tuple[ListenerClient, BoothApi]:
        n = next(self._ips)
        http = self.ctx.target.http(forwarded_for=f"198.19.{n // 250}.{n % 250 + 1}", timeout_s=self.timeout_s)
        listener = ListenerClient(http)
        listener.open_page(self.event.slug, self.event.join_code)  # sets the join-code cookie (contract 6.1)
        # Contract 3.5: the admin's cookie passes the booth API guard in both auth modes.
        api = BoothApi(self.ctx.target.http(timeout_s=self.timeout_s))
        api.http.session.cookies.update(self.event.admin.http.session.cookies)
        return listener, api

    def run_step(self, level: int, step_s: float) -> dict[str, list[tuple[float, int, str]]]:
        clients = [self._client() for _ in range(level)]
        results: dict[str, list[tuple[float, int, str]]] = {READ: [], WRITE: []}
        lock = threading.Lock()
        stop_at = time.monotonic() + step_s

        def loop(listener: ListenerClient, api: BoothApi) -> None:
            i = 0
            while time.monotonic() < stop_at:
                i += 1
                kind = WRITE if self.write_every and i % self.write_every == 0 else READ
                t0 = time.perf_counter()
                status, outcome = 200, "ok"
                try:
                    if kind == READ:
                        listener.audio_delay_ms(self.event.slug, self.event.room_id)
                    else:
                        api.create_booth(self.event.slug, self.language, room_id=self.event.room_id)
                        status = 201
                except RequestTimeout:
                    status, outcome = 0, "timeout"
                except UnexpectedStatus as exc:
                    status, outcome = exc.status, "http_5xx" if exc.status >= 500 else "other"
                except (TransportError, ClientError):
                    status, outcome = 0, "other"
                latency_ms = (time.perf_counter() - t0) * 1000.0
                self.stream.write(t_s=self.ctx.elapsed_s(), level=level, kind=kind, latency_ms=latency_ms, status=status, outcome=outcome)
                with lock:
                    results[kind].append((latency_ms, status, outcome))

        threads = [threading.Thread(target=loop, args=c, daemon=True) for c in clients]
        for t in threads:
            t.start()
        for t in threads:
            t.join(step_s + self.timeout_s + 5.0)
        for listener, api in clients:
            listener.http.close()
            api.http.close()
        return results
