"""Locust wiring of a conference rehearsal: CLI flags, event hooks and the load shape.

Importing this module (the locustfile does) registers, through Locust's events only:
``init_command_line_parser`` (our flags), ``init`` (scenario, target, provisioning, media engines; a setup
error prints one line and exits 2), ``test_start`` (the run's clock: handovers and run.json count from the moment
the load starts, headless or from the web UI), ``request`` (HTTP/WS samples for the SLOs), and ``quitting``
(orderly stop of the users if they still run, teardown, verdicts, summary, JUnit, exit code).

Ctrl-C: the first SIGINT stops the users in order and judges what was measured (status ``interrupted``,
exit 130); a second one stops at once (``ConferenceRun.stop_at_once``). A user's exception from our own
code (``harness.*``) or the network is logged as one line with its class instead of Locust's traceback.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time

import gevent
from locust import between, events
from locust.runners import STATE_CLEANUP, STATE_STOPPED, STATE_STOPPING

from ..errors import ExitCode, VoxloadError
from ..inputs import folder_argument, run_id_argument, url_argument
from ..results.layout import LOCUST_FAILURES_CSV, LOCUST_HISTORY_CSV, LOCUST_STATS_CSV
from ..scenario.loader import scenario_argument
from ..results.run_folder import RunDirectory, ResultsError, RunStatus
from . import distributed, media_view
from .run import ConferenceRun, Role, RunSetupError, load_run_scenario, results_root
from ..scenario import DEFAULT_SCENARIO
from .shape import ScenarioShape
from .users import AdminUser, CoordinatorUser, InterpreterUser

HTTP_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}
HUB_LAG_PROBE_INTERVAL_S = 0.1


def _usage_error(message: str) -> None:
    # One line and exit 2 for every command-line error, before Locust's logging starts (it starts after parsing).
    print(f"voxload: {message} (see --help)", file=sys.stderr, flush=True)
    sys.exit(ExitCode.USAGE)


@events.init_command_line_parser.add_listener
def _add_arguments(parser, **_kwargs) -> None:
    # Input is checked while Locust parses its command line, so a bad value is the only line printed.
    parser.error = _usage_error
    for action in parser._actions:
        if "--host" in action.option_strings:
            action.type = url_argument
    group = parser.add_argument_group("voxload")
    # Default None: a worker without --scenario runs the master's (sent over Locust's channel, distributed.py).
    group.add_argument("--scenario", default=None, type=scenario_argument, metavar="NAME_OR_FILE", env_var="VOXLOAD_SCENARIO",
                       help=f"scenario name (scenarios/NAME.yaml) or YAML file; default {DEFAULT_SCENARIO}; "
                            "workers get the master's")
    group.add_argument("--run-id", default=None, type=run_id_argument, metavar="ID", env_var="VOXLOAD_RUN_ID",
                       help="results go to RESULTS_DIR/ID")
    group.add_argument("--results-dir", default="reports", type=folder_argument, metavar="DIR",
                       env_var="VOXLOAD_RESULTS_DIR", help="default reports")
    group.add_argument("--keep", action="store_true", default=False, env_var="VOXLOAD_KEEP",
                       help="keep the provisioned event on the target after the run")


class ConferenceShape(ScenarioShape):
    scenario_option = "scenario"

    def resolved_scenario(self):
        # The run's scenario as loaded at init (on a master: the one its workers receive).
        run = getattr(getattr(self.runner, "environment", None), "conference_run", None)
        return run.scenario if run is not None else super().resolved_scenario()

    def tick(self):
        target = super().tick()
        if target is None:
            run = _current_run()
            if run is not None:
                run.load_complete = True  # the load reached its planned end (else the run is partial)
        return target


def _fail_setup(message: str, runner=None) -> None:
    print(f"voxload: {message}", file=sys.stderr, flush=True)
    if runner is not None and distributed.is_worker(runner):
        distributed.leave(runner)  # the master drops it at once instead of waiting for missed heartbeats
    sys.exit(ExitCode.USAGE)


@events.init.add_listener
def _on_init(environment, **_kwargs) -> None:
    options = environment.parsed_options
    if options is None:  # library use without the CLI
        return
    runner = environment.runner
    role = Role.MASTER if distributed.is_master(runner) else Role.WORKER if distributed.is_worker(runner) else Role.LOCAL
    link = None
    try:
        if role is Role.WORKER:
            # Locust's convention: a worker needs only -f and --worker; the scenario comes from the master.
            link = distributed.WorkerLink(None, runner)
            scenario = link.receive_scenario(own=options.scenario)
        else:
            scenario = load_run_scenario(options.scenario or DEFAULT_SCENARIO)
    except (RunSetupError, distributed.WorkerLinkError) as exc:
        _fail_setup(str(exc), runner)
    if scenario.target.host and not environment.host:
        environment.host = scenario.target.host
    # A worker keeps its files in a private folder and forwards them; only the master (or a lone process) has the run folder.
    root = distributed.private_folder() if role is Role.WORKER else results_root(options)
    try:
        run_dir = RunDirectory.create(root=root, run_id=None if role is Role.WORKER else options.run_id,
                                      scenario=scenario.to_dict(), target_url=environment.host)
    except ResultsError as exc:
        _fail_setup(str(exc))
    _set_fixed_counts(environment, scenario)
    admin_think = scenario.load.think_time_s["admin"]
    AdminUser.wait_time = between(admin_think.min_s, admin_think.max_s)
    run = ConferenceRun(environment, scenario, run_dir, options, role)
    if role is Role.MASTER:
        run.hub = distributed.MasterHub(run, runner)
    elif role is Role.WORKER:
        run.link = link
        link.run = run
    environment.conference_run = run
    signal.signal(signal.SIGINT, _on_sigint)
    try:
        run.setup()
    except RunSetupError as exc:
        run.finish_failed(str(exc))
        _fail_setup(str(exc))
    except KeyboardInterrupt:
        # Ctrl-C while the stack, provisioning or engines start: stop what started, nothing was measured.
        run.finish_failed("interrupted by Ctrl-C during setup", RunStatus.INTERRUPTED, ExitCode.INTERRUPTED)
        print("voxload: interrupted during setup; nothing was measured", file=sys.stderr, flush=True)
        sys.exit(int(ExitCode.INTERRUPTED))
    gevent.spawn(_probe_hub_lag, run)
    if role is not Role.WORKER:
        gevent.spawn(_write_stats_history, environment, run)
    if environment.web_ui is not None:
        media_view.install_web_ui(environment.web_ui, run.media_figures)
    install_one_line_user_errors()


def _set_fixed_counts(environment, scenario) -> None:
    """Fixed participants come first (Locust spawns fixed_count classes before weighted ones). Locust reads
    ``fixed_count = 0`` as "weighted" (``admins: 0`` made half the listeners admins), so a class the scenario
    wants none of leaves ``user_classes``, as Locust itself drops classes of weight 0 when it builds the environment."""
    counts = {InterpreterUser: scenario.event.interpreter_count, AdminUser: scenario.load.admins,
              CoordinatorUser: scenario.load.coordinators}
    for user_class, count in counts.items():
        user_class.fixed_count = count
    environment.user_classes[:] = [c for c in environment.user_classes if counts.get(c, 1) > 0]


def _on_sigint(signum, frame) -> None:
    """First Ctrl-C: Locust's own path (KeyboardInterrupt -> shutdown -> quitting), marked as interrupted.
    Second: stop at once, leaving a readable folder."""
    run = _current_run()
    if run is not None and run.interrupted_by_user:
        print("voxload: second Ctrl-C: stopping at once (results are partial)", file=sys.stderr, flush=True)
        run.stop_at_once()
        os._exit(int(ExitCode.INTERRUPTED))
    if run is not None:
        run.interrupted_by_user = True
        print("voxload: Ctrl-C: stopping the users and judging what was measured (Ctrl-C again stops at once)",
              file=sys.stderr, flush=True)
    # What Python's default handler does (KeyboardInterrupt in the main greenlet, where Locust expects it), but
    # thrown from the hub's next callback: raised here it could land in the hub or a user's greenlet, and gevent
    # prints a traceback for it before passing it on.
    hub = gevent.get_hub()
    hub.loop.run_callback(hub.parent.throw, KeyboardInterrupt)


def _is_known_error(exc: BaseException) -> bool:
    # Our clients' and engines' typed errors and network errors say everything in their class and message.
    return isinstance(exc, (VoxloadError, OSError))


def install_one_line_user_errors() -> None:
    """Every path by which a user's exception reaches a traceback printer says our known errors in one line:
    task and on_start errors (loggers locust.user.*), on_stop errors (Locust logs them on the root logger) and
    greenlets that die of one (gevent's hub prints those itself)."""
    for name in ("locust.user.task", "locust.user.users", ""):
        logging.getLogger(name).addFilter(_one_line_user_errors)
    hub = gevent.get_hub()
    if not getattr(hub.print_exception, "voxload_one_line", False):
        hub.print_exception = _one_line_greenlet_errors(hub.print_exception)


# Set on an exception once it was said in one line, so gevent's report of the dying greenlet does not repeat it.
_SAID = "_voxload_said"


def _logged_exception(record: logging.LogRecord) -> BaseException | None:
    """The exception a Locust log record carries with its traceback text, if any."""
    args = record.args if isinstance(record.args, tuple) else ()
    if len(args) == 2 and isinstance(args[0], BaseException):
        return args[0]  # "%s\n%s" (message, traceback): a task's or on_start's error
    if isinstance(record.msg, str) and record.msg.startswith("Uncaught exception in"):
        return sys.exc_info()[1]  # on_stop or a message handler: logged inside its `except`, traceback as text
    return None


def _one_line_user_errors(record: logging.LogRecord) -> bool:
    """Locust logs a user's exception with its traceback: keep one line with the class for our known errors."""
    exc = _logged_exception(record)
    if exc is not None and _is_known_error(exc):
        where = " in on_stop" if "on_stop" in str(record.msg) else ""
        record.msg, record.args = f"user error{where} %s: %s", (type(exc).__name__, exc)
        record.exc_info = record.exc_text = None
        _mark_said(exc)
    return True


def _mark_said(exc: BaseException) -> None:
    try:
        setattr(exc, _SAID, True)
    except AttributeError:
        pass  # an exception type with __slots__: at worst said twice, in one line each


def _one_line_greenlet_errors(print_exception):
    """gevent prints a traceback for every greenlet that dies of an exception (a user whose on_start or on_stop
    raised): one line with the class for our known errors, once; anything else keeps its traceback."""

    def print_known_in_one_line(context, type_, value, tb):
        if value is not None and _is_known_error(value):
            if not getattr(value, _SAID, False):
                _mark_said(value)
                logging.getLogger("locust.user.users").error("user error %s: %s", type(value).__name__, value)
            return
        print_exception(context, type_, value, tb)

    print_known_in_one_line.voxload_one_line = True
    return print_known_in_one_line


def _probe_hub_lag(run: ConferenceRun) -> None:
    """Generator health: how late the gevent hub wakes a sleeping greenlet (media-design 5)."""
    while not run.stopping:
        t0 = time.perf_counter()
        gevent.sleep(HUB_LAG_PROBE_INTERVAL_S)
        if run.stopping:
            break  # the run closed its sample streams while we slept
        run.record_hub_lag(max(0.0, (time.perf_counter() - t0 - HUB_LAG_PROBE_INTERVAL_S) * 1000.0))


HISTORY_COLUMNS = ("timestamp", "user_count", "requests_per_s", "failures_per_s", "p50_ms", "p95_ms", "p99_ms",
                   "total_requests", "total_failures")


def _write_stats_history(environment, run: ConferenceRun) -> None:
    """locust_stats_history.csv, one row per second, streamed (Locust writes its own only with --csv)."""
    import csv

    with open(run.run_dir.path / LOCUST_HISTORY_CSV, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(HISTORY_COLUMNS)
        while not run.stopping:
            gevent.sleep(1.0)
            runner = environment.runner
            if runner is None:
                continue
            total = runner.stats.total
            writer.writerow((
                round(time.time(), 3), runner.user_count, round(total.current_rps, 3), round(total.current_fail_per_sec, 3),
                total.get_current_response_time_percentile(0.5) or 0, total.get_current_response_time_percentile(0.95) or 0,
                total.get_current_response_time_percentile(0.99) or 0, total.num_requests, total.num_failures,
            ))
            fh.flush()


@events.request.add_listener
def _on_request(request_type, name, response_time, exception, **kwargs) -> None:
    run = _current_run()
    if run is None or run.stopping:
        return
    if request_type in HTTP_METHODS:
        run.samples.write("http_req_duration_ms", response_time, name=name)
        if exception:
            # The failure's class (and HTTP status) travel with the sample, so a report can say what failed and when.
            run.samples.write("http_error_rate", 1.0, name=name, method=request_type, error=_error_text(exception))
        else:
            run.samples.write("http_error_rate", 0.0, name=name, method=request_type)
    elif request_type == "WSCONNECT" and exception is None:
        run.samples.write("ws_connect_ms", response_time, name=name)


def _error_text(exception) -> str:
    """The failure's class, plus the status for an HTTP answer (``UnexpectedStatus: 502``): few distinct values,
    so a report can count them (the URL and the library's wording stay in Locust's failure table)."""
    status = getattr(exception, "status", None) or getattr(exception, "status_code", None)
    return f"{type(exception).__name__}: {status}" if isinstance(status, int) else type(exception).__name__


_environment = None


@events.init.add_listener
def _remember_environment(environment, **_kwargs) -> None:
    global _environment
    _environment = environment


def _current_run():
    return getattr(_environment, "conference_run", None)


@events.report_to_master.add_listener
def _report_media_to_master(client_id, data, **_kwargs) -> None:
    # A worker's media figures ride on Locust's periodic stats report; the master shows them in its Media tab.
    run = _current_run()
    if run is not None:
        data[media_view.REPORT_KEY] = run.media_figures.snapshot()


@events.worker_report.add_listener
def _receive_worker_media(client_id, data, **_kwargs) -> None:
    run = _current_run()
    if run is not None and media_view.REPORT_KEY in data:
        run.media_figures.replace_from(client_id, data[media_view.REPORT_KEY])


@events.test_stopping.add_listener
def _on_test_stopping(environment, **_kwargs) -> None:
    # Before users stop: browser canaries must not record the interpreters leaving as the target's silence.
    run = getattr(environment, "conference_run", None)
    if run is not None:
        run.stop_canaries()


@events.test_start.add_listener
def _on_test_start(environment, **_kwargs) -> None:
    run = getattr(environment, "conference_run", None)
    if run is None:
        return
    if run.role is Role.WORKER:
        if run.started_epoch_s is None:
            run.mark_load_started()  # until the master's moment arrives (voxload:start)
        return
    run.mark_load_started()
    if run.hub is not None:
        run.hub.announce_start(run.started_epoch_s)


@events.test_stop.add_listener
def _on_test_stop(environment, **_kwargs) -> None:
    run = getattr(environment, "conference_run", None)
    if run is None:
        return
    if run.role is Role.WORKER:
        run.finish_worker()
    elif run.role is Role.MASTER:
        run.hub.finish_workers()  # fires before Locust sends `quit`, so workers can still flush


@events.quitting.add_listener
def _on_quitting(environment, **_kwargs) -> None:
    run = getattr(environment, "conference_run", None)
    if run is not None and run.role is Role.WORKER:
        run.finish_worker()
    elif run is not None:
        runner = environment.runner
        if runner is not None and runner.state not in (STATE_STOPPED, STATE_STOPPING, STATE_CLEANUP):
            # Ctrl-C or SIGTERM mid-run: users leave in order (publishers and listeners close) before judging.
            runner.stop()
        _write_locust_csvs(environment, run.run_dir.path)
        environment.process_exit_code = int(run.finish())


def _write_locust_csvs(environment, run_path) -> None:
    """Locust's request and failure tables in the run folder (also when --csv was not given)."""
    import csv

    from locust.stats import PERCENTILES_TO_REPORT, StatsCSV

    writer = StatsCSV(environment, PERCENTILES_TO_REPORT)
    with open(run_path / LOCUST_STATS_CSV, "w", newline="") as fh:
        writer.requests_csv(csv.writer(fh))
    with open(run_path / LOCUST_FAILURES_CSV, "w", newline="") as fh:
        writer.failures_csv(csv.writer(fh))
