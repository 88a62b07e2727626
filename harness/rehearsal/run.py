"""One conference rehearsal inside a Locust process: what the users share, and the run's lifecycle.

Owns: loading the scenario, opening its target (``harness.target.targets.open_target``: embedded or ``--host``), provisioning
and teardown, the media bridge, interpreter seat assignment, handover orders, and the
end of the run (metrics -> SLO verdicts -> summary.json, JUnit, exit code). Locust reaches it through its
events only (``conference.py`` registers :func:`register`); users find it as ``environment.conference_run``.
"""

from __future__ import annotations

import dataclasses
import enum
import itertools
import logging
import queue
import secrets
import sys
import threading
import time
from pathlib import Path

import gevent

from ..results import measures
from ..results import slo
from ..errors import ExitCode, VoxloadError
from ..clients.admin import AdminClient
from ..clients.booth_api import BoothApi
from ..clients.errors import ClientError
from ..clients.http import PortalHttp
from ..clients.tokens import TokenMinter
from ..target.targets import TargetError, open_target
from .handover import HandoverOrder, HandoverRecord
from .media_view import MediaFigures, console_block
from ..results.junit import write_junit
from ..report import ReportError, build_report
from ..media.bridge import MediaBridge
from ..browser.rehearsal import BrowserRequirementError, RehearsalCanaries
from ..media.errors import MediaError
from .provision import ProvisionedEvent, ProvisioningError, provision, run_slug, teardown
from ..results.health import judge_run_folder
from ..results.layout import EVENT_JSON, HANDOVERS_JSON, MEDIA_DIR, WORKERS_JSON
from ..results.run_folder import (
    GeneratorHealth,
    RunDirectory,
    RunStatus,
    build_summary,
    utc_now_iso,
    write_json_atomic,
)
from ..scenario import ScenarioError, load_scenario
from ..scenario.model import AuthMode, Scenario

logger = logging.getLogger(__name__)



class RunSetupError(VoxloadError, RuntimeError):
    """Anything that stops a run before load starts; printed as one line, exit 2."""


class Role(enum.Enum):
    LOCAL = "local"  # one Locust process does everything
    MASTER = "master"  # owns target, provisioning, results and verdict; runs no users
    WORKER = "worker"  # runs users and media engines; forwards everything to the master


class _Owner:
    """Local or master: owns the target, provisioning, seats, handover orders and results; handles things here."""

    owns_results = True

    def __init__(self, run: ConferenceRun) -> None:
        self.run = run

    def set_up(self) -> None:
        self.run._setup_target()

    def take_seat(self):
        return self.run.take_local_seat()

    def unlocked(self) -> None:
        pass  # users on this process see run.booths_unlocked; a master tells its workers (distributed.MasterHub)

    def abort(self, text: str) -> None:
        self.run._abort_here(text)

    def order(self, booth_ref: str, scheduled_at_s: float) -> HandoverOrder | None:
        return self.run._order_here(booth_ref, scheduled_at_s)

    def handover(self, record: HandoverRecord) -> None:
        self.run._record_here(record)

    def schedule(self, booth_id: str, schedule: dict) -> None:
        pass  # listeners of this process read the run's schedules


class _Local(_Owner):
    runs_media = True


class _Master(_Owner):
    runs_media = False  # runs no users: its workers publish and listen


class _Worker:
    """A worker runs users and media engines and forwards everything the owner decides to the master."""

    owns_results = False
    runs_media = True

    def __init__(self, run: ConferenceRun) -> None:
        self.run = run

    def set_up(self) -> None:
        self.run._setup_worker()

    def take_seat(self):
        return self.run.link.take_seat()

    def unlocked(self) -> None:
        self.run.link.send_unlocked()

    def abort(self, text: str) -> None:
        self.run.link.send_abort(text)

    def order(self, booth_ref: str, scheduled_at_s: float) -> None:
        self.run.link.send_order(booth_ref, scheduled_at_s)  # the master numbers it and sends it to every worker

    def handover(self, record: HandoverRecord) -> None:
        self.run.link.send_handover(record)

    def schedule(self, booth_id: str, schedule: dict) -> None:
        self.run.link.send_schedule(booth_id, schedule)  # listeners of this booth may be on other workers


_ROLES = {Role.LOCAL: _Local, Role.MASTER: _Master, Role.WORKER: _Worker}


class RunPhase(enum.Enum):
    SETTING_UP = "setting-up"  # target, provisioning, engines (a worker: waiting for the master's setup)
    READY = "ready"  # users may start (they wait for it); the load starts on Locust's test_start
    STOPPING = "stopping"  # finish() (or a worker's finish_worker()) is tearing down and judging
    DONE = "done"
    FAILED = "failed"  # setup failed or was interrupted: finish_failed()


class InvalidRunTransition(VoxloadError, RuntimeError):
    """A phase change the run's lifecycle does not allow (a bug in the harness, never a target's fault)."""


# The only changes of RunPhase; anything else raises. SETTING_UP -> STOPPING: Locust quits before setup ended.
_RUN_TRANSITIONS = {
    RunPhase.SETTING_UP: {RunPhase.READY, RunPhase.STOPPING, RunPhase.FAILED},
    RunPhase.READY: {RunPhase.STOPPING, RunPhase.FAILED},
    RunPhase.STOPPING: {RunPhase.DONE},
    RunPhase.DONE: set(),
    RunPhase.FAILED: set(),
}


class ConferenceRun:
    def __init__(self, environment, scenario: Scenario, run_dir: RunDirectory, options, role: Role = Role.LOCAL) -> None:
        self.environment = environment
        self.role = role
        self.duties = _ROLES[role](self)  # what this process does itself and what it forwards (its role)
        self.link = None  # distributed.WorkerLink on a worker
        self.hub = None  # distributed.MasterHub on the master
        self.scenario = scenario
        self.run_dir = run_dir
        self.options = options
        self.target = None  # harness.target.targets.Target on the local process or the master
        self.event: ProvisionedEvent | None = None
        self.bridge: MediaBridge | None = None
        self.admin_password: str | None = None
        self.minter: TokenMinter | None = None  # only when the target's JWT secret is known
        self._jwt_secret: str | None = None
        self.samples = run_dir.sample_writer("locust")
        self.handover_orders: dict[str, HandoverOrder] = {}  # booth id -> latest order
        self.issued_orders: list[HandoverOrder] = []
        self._order_ids = itertools.count(1)
        self._ordered: set[tuple[str, float]] = set()
        self.seats: queue.Queue = queue.Queue()
        self.listener_index = itertools.count()
        self.listener_users = 0  # listener users that started, whether or not their media came up
        think = scenario.load.think_time_s
        self.listener_think_s = (think["listener"].min_s, think["listener"].max_s)
        self.auth_mode_token = scenario.target.auth_mode is AuthMode.TOKEN
        self.booths_unlocked = threading.Event()
        self.phase = RunPhase.SETTING_UP
        # Set on entering READY (by _set_state only). Users (and, on the master, workers asking for the setup)
        # wait for it: a worker's Locust may start spawning while its setup still waits for the master.
        self.ready = threading.Event()
        self.handovers: list[HandoverRecord] = []
        self.started_epoch_s: float | None = None
        self.publisher_schedules: dict[str, list[dict]] = {}
        self.captioned_booths: set[str] = set()
        self.problems: list[str] = []
        # Browser canaries run beside the process that owns the run (local or master), never on a worker.
        self.canaries = RehearsalCanaries(scenario, run_dir.path, lambda: self.stopping) if self.duties.owns_results else None
        self.load_complete = False  # the load shape reached its end (set by the shape's last tick)
        self.interrupted_by_user = False  # Ctrl-C (SIGINT): exit 130
        self.aborts: list[dict] = []  # run events that stopped the load (a booth mismatch): exit 3
        self.media_figures = MediaFigures()  # engines' per-second figures, for the web UI and the console

    # --- set-up ---
    def setup(self) -> None:
        if self.canaries is not None:
            self._check_canaries()  # before anything is provisioned: a scenario that needs them and cannot have them stops here
        self.duties.set_up()
        if self.duties.runs_media:
            self._start_media()
        self._set_state(RunPhase.READY)

    def _set_state(self, new: RunPhase) -> None:
        if new not in _RUN_TRANSITIONS[self.phase]:
            raise InvalidRunTransition(f"run {self.phase.value} -> {new.value}")
        logger.debug("run %s: %s -> %s", self.role.value, self.phase.value, new.value)
        self.phase = new
        if new is RunPhase.READY:
            self.ready.set()

    def mark_load_started(self, started_epoch_s: float | None = None) -> None:
        """Locust's test_start (headless at once, web UI on START): the handover schedule and run.json times
        count from here, not from process start (issue 10 item 9). Workers take the master's moment."""
        self.started_epoch_s = started_epoch_s if started_epoch_s is not None else time.time()
        if self.duties.owns_results:
            self.run_dir.mark_started(self.started_epoch_s)
        if self.canaries is not None and self.event is not None:
            # Canaries start with the load (each waits for its booth to be live); handover times count from here.
            self.canaries.start(self.environment.host, self.event, self.booths_unlocked, self.started_epoch_s)

    def _check_canaries(self) -> None:
        try:
            line = self.canaries.check()
        except BrowserRequirementError as exc:
            raise RunSetupError(str(exc)) from None
        if line:
            print(f"voxload: {line}", flush=True)

    def _setup_worker(self, timeout_s: float = 300.0) -> None:
        """A worker waits for the master's provisioned event; it never provisions or judges."""
        self.link.hello()
        self.link.measure_clock()
        try:
            data = self.link.setup.get(timeout=timeout_s)
        except gevent.Timeout:  # a BaseException: `except Exception` let it escape as a traceback
            raise RunSetupError(f"no setup from the master within {timeout_s:.0f} s") from None
        self.environment.host = data["host"]
        self.admin_password = data["admin_password"]
        self._jwt_secret = data.get("jwt_secret")
        self.minter = TokenMinter(self._jwt_secret) if self._jwt_secret else None
        self.event = ProvisionedEvent.from_wire(data["event"])
        if data.get("started_epoch_s") is not None:  # the load already started on the master
            self.started_epoch_s = data["started_epoch_s"] - self.link.offset_s  # into this worker's clock
        self.link.start_forwarding(self.run_dir.path)

    def setup_for_workers(self) -> dict:
        """The master's setup message; credentials travel only over Locust's master-worker channel."""
        return {"host": self.environment.host, "admin_password": self.admin_password, "event": self.event.to_wire(),
                "jwt_secret": self._jwt_secret, "started_epoch_s": self.started_epoch_s}

    def _setup_target(self) -> None:
        env = self.environment
        knobs = {}
        if not env.host and self.scenario.target.auth_mode is AuthMode.TOKEN:
            # Contract 3.5: a set BOOTH_ACCESS_TOKEN is the auth-mode switch; its value never leaves the run.
            knobs["BOOTH_ACCESS_TOKEN"] = secrets.token_urlsafe(16)
        try:
            self.target = open_target(env.host or None, data_dir=self.run_dir.path / "stack", knobs=knobs)
        except TargetError as exc:
            raise RunSetupError(str(exc)) from exc
        env.host = self.target.portal_url
        self.admin_password = self.target.admin_password
        self._jwt_secret = self.target.secret_key
        if self._jwt_secret:
            self.minter = TokenMinter(self._jwt_secret)
        self.run_dir.set_target_url(env.host)
        admin_http = PortalHttp.for_url(env.host)
        admin = AdminClient(admin_http)
        try:
            admin.login(self.admin_password)
        except ClientError as exc:
            raise RunSetupError(f"admin login at {env.host}/admin/login failed: {exc}") from exc
        slug = run_slug(self.scenario.name, self.run_dir.run_id)
        try:
            self.event = provision(self.scenario, admin, BoothApi(admin_http), slug)
        except ProvisioningError as exc:
            raise RunSetupError(str(exc)) from exc
        write_json_atomic(self.run_dir.path / EVENT_JSON, self.event.as_dict())
        for ref, booth in self.event.booths.items():
            for seat in range(booth.interpreters):
                self.seats.put((ref, seat))

    def _start_media(self) -> None:
        self.bridge = MediaBridge(
            self.run_dir.path / MEDIA_DIR,
            engines=self.scenario.media.engines,
            on_stats=self._on_media_stats,
            probe_share=self.scenario.media.probe_listener_share,
            engine_args=["--silence-threshold-ms", str(self.scenario.media.silence_threshold_ms)],
        )
        try:
            self.bridge.start()
        except MediaError as exc:
            raise RunSetupError(f"media engines did not start: {exc}") from exc

    # --- reporting seams ---
    def _on_media_stats(self, record: dict) -> None:
        """Per-second engine aggregates go to the Media tab and console block, not Locust's request table
        (rehearsal/media_view.py); the run-folder samples are written by the engines themselves."""
        self.media_figures.add_engine_record(record)

    def record_hub_lag(self, lag_ms: float) -> None:
        self.samples.write("generator_loop_lag_ms", lag_ms, process="locust")

    def take_seat(self):
        """(booth ref, seat index) for a new interpreter, or None when every seat is taken."""
        return self.duties.take_seat()

    def take_local_seat(self):
        try:
            return self.seats.get_nowait()
        except queue.Empty:
            return None

    def mark_unlocked(self) -> None:
        self.booths_unlocked.set()
        self.duties.unlocked()

    def abort_booth_mismatch(self, text: str) -> None:
        """A joined booth is not the provisioned one: every number would measure a phantom booth, so the whole
        run stops at once, said in one line and kept as a run event (exit 3). A worker tells the master."""
        self.duties.abort(text)

    def _abort_here(self, text: str) -> None:
        if self.aborts or self.stopping:
            return  # the first one stopped the run; the others say the same
        self.aborts.append(measures.booth_mismatch_event(text, time.time(), self.started_epoch_s))
        print(f"voxload: {text}: stopping the run", file=sys.stderr, flush=True)
        runner = self.environment.runner
        if runner is not None:
            # From its own greenlet: quit() kills every user's greenlet, and the caller is one of them.
            gevent.spawn(runner.quit)

    def order_handover(self, booth_ref: str, scheduled_at_s: float) -> HandoverOrder | None:
        """The coordinator's part: announce; the booth's interpreters carry it out (harness/rehearsal/handover.py).

        Coordinators on several workers each announce the schedule; one order per (booth, time) is kept."""
        return self.duties.order(booth_ref, scheduled_at_s)

    def _order_here(self, booth_ref: str, scheduled_at_s: float) -> HandoverOrder | None:
        key = (booth_ref, scheduled_at_s)
        if key in self._ordered:
            return None
        self._ordered.add(key)
        order = HandoverOrder(next(self._order_ids), self.event.booths[booth_ref].booth_id,
                              self.scenario.handovers.method.value, time.time())
        self.issued_orders.append(order)
        self.handover_orders[order.booth_id] = order
        return order

    def receive_order(self, wire: dict) -> None:
        order = HandoverOrder.from_wire(wire)
        self.handover_orders[order.booth_id] = order

    def record_handover(self, record: HandoverRecord) -> None:
        self.duties.handover(record)

    def _record_here(self, record: HandoverRecord) -> None:
        self.handovers.append(record)
        self.samples.write("handover_failure_rate", 0.0 if record.ok else 1.0, booth=record.booth)
        if record.duration_ms is not None:
            self.samples.write("handover_duration_ms", record.duration_ms, booth=record.booth)
        if not record.ok:
            logger.warning("handover in %s failed: %s", record.booth, record.error)

    def add_publisher_schedule(self, booth_id: str, schedule: dict) -> None:
        self.publisher_schedules.setdefault(booth_id, []).append(schedule)
        if self.canaries is not None:
            self.canaries.add_schedule(booth_id, schedule)
        self.duties.schedule(booth_id, schedule)

    def receive_schedule(self, booth_id: str, schedule: dict) -> None:
        if schedule in self.publisher_schedules.get(booth_id, []):
            return  # our own, echoed back by the master
        self.publisher_schedules.setdefault(booth_id, []).append(schedule)
        if self.canaries is not None:
            self.canaries.add_schedule(booth_id, schedule)
        if self.bridge is not None:
            self.bridge.add_schedule(booth_id, schedule)

    def stop_canaries(self) -> None:
        """At the end of load, before users leave; safe to call again."""
        if self.canaries is not None and not self.canaries.stopped:
            self.problems += self.canaries.dead()  # before stop: a canary asked to stop is not dead
            self.canaries.stop()

    @property
    def stopping(self) -> bool:
        """The run is ending or has ended: loops stop, late events are ignored."""
        return self.phase in (RunPhase.STOPPING, RunPhase.DONE, RunPhase.FAILED)

    # --- the end ---
    def finish_failed(self, error: str, status: RunStatus = RunStatus.FAILED, code: ExitCode = ExitCode.USAGE) -> None:
        """Setup failed (or Ctrl-C during it): stop what was started and leave a readable run.json with the one-line error."""
        self._set_state(RunPhase.FAILED)
        if self.canaries is not None:
            self.canaries.stop()
        if self.bridge is not None:
            self.bridge.stop()
        if self.target is not None:
            self.target.close()
        self.samples.close()
        self.run_dir.finish(status, exit_code=code, error=error)

    def finish_worker(self) -> None:
        """A worker's end: engines stopped (files closed), the last lines and counts sent to the master."""
        if self.stopping:
            return  # test_stop and quitting both end a worker
        self._set_state(RunPhase.STOPPING)
        if self.bridge is not None:
            self.bridge.stop()
        self.samples.close()
        self.link.done(self.listener_users, self.captioned_booths)
        self._set_state(RunPhase.DONE)

    def finish(self) -> int:
        """Tear down, reconcile, judge, write, print; returns the process exit code. Safe to call once."""
        if self.stopping:
            return self.environment.process_exit_code or 0
        self._set_state(RunPhase.STOPPING)
        ended = time.time()
        self._teardown()
        self._reconcile_handovers(ended)
        self.samples.close()
        write_json_atomic(self.run_dir.path / HANDOVERS_JSON, [dataclasses.asdict(h) for h in self.handovers])
        summary, health = self._judge(ended)
        self._write(summary, health)
        if self.target is not None:
            self.target.close()
        self._print(summary)
        self._set_state(RunPhase.DONE)
        return summary["exit_code"]

    def _teardown(self) -> None:
        """Workers flushed, canaries and engines stopped, the provisioned event deleted (unless --keep)."""
        if self.hub is not None:
            self.hub.wait_for_workers()
        self.stop_canaries()
        if self.bridge is not None:
            self.bridge.stop()
        if self.event is not None and not self.options.keep and self.environment.host:
            admin_http = PortalHttp.for_url(self.environment.host)
            try:
                AdminClient(admin_http).login(self.admin_password or "")
                self.problems += teardown(self.event, AdminClient(admin_http), BoothApi(admin_http))
            except ClientError as exc:
                self.problems.append(f"teardown login: {exc}")

    def _reconcile_handovers(self, ended: float) -> None:
        """Every order and every scheduled handover has a record: the ones nobody carried out are failures."""
        started = self.started_epoch_s
        answered = {h.order_id for h in self.handovers}
        for order in self.issued_orders:
            if order.order_id not in answered:
                # Nobody could carry it out (no backup joined, or the initiator's worker was lost).
                self.record_handover(HandoverRecord(order.booth_id, order.ordered_epoch_s, False, None,
                                                    "no interpreter initiated the handover", order.order_id))
        if self.scenario.handovers and self.event and started:
            ran_s = ended - started
            for due in self.scenario.handovers.schedule:
                if due.at_s <= ran_s and (due.booth, due.at_s) not in self._ordered:
                    # The schedule asked for it and no coordinator ordered it (e.g. its worker was lost).
                    self.record_handover(HandoverRecord(self.event.booths[due.booth].booth_id, started + due.at_s,
                                                        False, None, "no coordinator ordered the scheduled handover"))

    def _judge(self, ended: float) -> tuple[dict, GeneratorHealth]:
        """Metrics -> SLO verdicts, generator health and the run events that make a run invalid -> the summary."""
        started = self.started_epoch_s
        t0 = started or ended
        transcribed = [b.booth_id for b in self.event.booths.values() if b.transcribed] if self.event else []
        metrics = measures.collect(self.run_dir.path, self.handovers, transcribed, self.captioned_booths, self.listener_users)
        media_coverage, heard = measures.media_coverage_of_run(self.run_dir.path, self.scenario, t0, ended, self.handovers)
        results = slo.evaluate(self.scenario.slos, metrics, measures.coverage_by_metric(media_coverage, heard))
        # Engines and the hub lag of every Locust process (workers' samples were forwarded into samples/).
        judged = judge_run_folder(self.run_dir.path, (started, ended) if started else None)
        saturation = judged.invalid_reasons()
        self.problems += judged.tolerated_notes()
        engine_cpu = metrics.get("generator_cpu_pct")
        events, invalid = self._run_events(t0, ended)
        health = GeneratorHealth(
            saturated=bool(saturation),
            cpu_pct_max=float(max(engine_cpu)) if engine_cpu is not None and len(engine_cpu) else None,
            loop_lag_p99_ms=judged.hub_lag_p99_ms,
            notes=tuple(saturation + invalid + self.problems),
        )
        summary = build_summary(
            run_id=self.run_dir.run_id,
            scenario_name=self.scenario.name,
            results=results,
            started_at=utc_now_iso(t0),
            ended_at=utc_now_iso(ended),
            duration_s=round(ended - t0, 3),
            status=self._final_status(),
            generator_health=health,
            counts={**measures.counts(self.run_dir.path, self.handovers),
                    "expected_listener_s": media_coverage.expected_listener_s,
                    "measured_listener_s": media_coverage.measured_listener_s},
            events=events,
            invalid_reasons=saturation + invalid,
            interrupted=self.interrupted_by_user,
        )
        return summary, health

    def _final_status(self) -> RunStatus:
        return RunStatus.INTERRUPTED if self.interrupted_by_user or not self.load_complete else RunStatus.FINISHED

    def _run_events(self, t0: float, ended: float) -> tuple[list[dict], list[str]]:
        """Run events (engine deaths, lost workers, aborts, an early stop), recorded in run.json, and the
        reasons among them that make the run invalid evidence."""
        started = self.started_epoch_s
        events = measures.engine_death_events(self.run_dir.path, t0, ended)
        if self.hub is not None:
            workers = self.hub.worker_report()
            write_json_atomic(self.run_dir.path / WORKERS_JSON, workers)
            events += [measures.worker_lost_event(w["worker"], w["lost_at"], t0) for w in workers if w.get("lost_at")]
        events += self.aborts
        invalid = [e["text"] for e in events]
        if started is None:
            invalid.append("the load never started (no test_start): nothing was measured")
        elif not self.load_complete and not self.aborts:  # an abort says why the load stopped early
            planned_s = self.scenario.load.total_duration_s
            stopped = f"the run stopped at +{ended - started:.0f} s of its {planned_s:.0f} s load"
            if self.interrupted_by_user:
                events.append({"t": ended, "kind": "interrupted", "offset_s": round(ended - started, 1),
                               "text": f"{stopped}: interrupted by Ctrl-C, the results are partial"})
            else:
                invalid.append(f"{stopped}, before the end of its load: the results are partial")
        for event in events:
            self.run_dir.record_event(event["kind"], event["text"], t=event["t"])
        return events, invalid

    def _write(self, summary: dict, health: GeneratorHealth) -> None:
        """summary.json, junit.xml, run.json's end, and the HTML report."""
        self.run_dir.write_summary(summary)
        write_junit(summary, self.run_dir.junit_xml)
        self.run_dir.finish(self._final_status(), exit_code=summary["exit_code"], generator_health=health,
                            error="interrupted by Ctrl-C" if self.interrupted_by_user else None)
        try:
            paths = build_report(self.run_dir.path)
            print(f"voxload report: {paths.html}", flush=True)
        except ReportError as exc:
            # The verdict stands without the document; `voxload report RUN_DIR` can rebuild it.
            logger.warning("report not built: %s", exc)

    def _print(self, summary: dict) -> None:
        for line in console_block(self.media_figures):
            print(line)
        _print_verdicts(self.run_dir, summary)

    def stop_at_once(self) -> None:
        """A second Ctrl-C: kill what this process started, mark the folder interrupted, flush the samples.
        The report is left to `voxload rehearse` (or `voxload report RUN_DIR`): it says partial."""
        import psutil

        from ..results.run_folder import InvalidTransition, close_open_writers

        if self.bridge is not None:
            self.bridge.expect_exit()
        for child in psutil.Process().children(recursive=True):
            try:
                child.kill()
            except psutil.Error:
                pass
        close_open_writers()
        try:
            self.run_dir.record_event("interrupted", "stopped at once by a second Ctrl-C: the results are partial")
            self.run_dir.finish(RunStatus.INTERRUPTED, exit_code=ExitCode.INTERRUPTED, error="stopped at once by a second Ctrl-C")
        except (InvalidTransition, OSError):
            pass  # the orderly stop had already finished the folder


def _print_verdicts(run_dir: RunDirectory, summary: dict) -> None:
    print(f"\nvoxload results: {run_dir.path}")
    for row in summary.get("slos", []):
        observed = row.get("observed")
        shown = "no data" if observed is None else f"{observed:.4g}"
        print(f"  {row['state'].upper():8} {row['metric']} {row['source']}  (observed {shown})")
    for reason in summary.get("invalid_reasons", []):
        print(f"  INVALID  {reason}")
    print(f"  exit code {summary.get('exit_code')}: {summary.get('exit_code_meaning')}", flush=True)


def load_run_scenario(path_or_name: str) -> Scenario:
    try:
        return load_scenario(path_or_name)
    except ScenarioError as exc:
        raise RunSetupError(str(exc)) from None


def results_root(options) -> Path:
    return Path(getattr(options, "results_dir", None) or "reports")
