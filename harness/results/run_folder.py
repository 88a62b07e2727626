"""Run results on disk: the run directory, run metadata, sample streams, the summary and exit codes.

Owns ``reports/<run-id>/`` and everything the harness writes into it itself::

    reports/<run-id>/
      run.json          metadata, written at start and rewritten atomically on every change (status, target
                        version, generator health, exit code); readable at any moment, even after kill -9
      samples/*.jsonl   append-only sample streams, one file per writer (process); flushed at least every
                        second; one JSON object per line: {"t": <unix s>, "metric": ..., "value": ..., "tags": {...}}
      summary.json      schema-versioned verdicts (SUMMARY_SCHEMA): the one file the HTML report, JUnit
                        (harness.results.junit) and plots read
      junit.xml         written by harness.results.junit from summary.json

Exit codes: ``harness.errors.ExitCode`` (README "Exit codes"). :func:`exit_code` decides a finished run's:
130 when Ctrl-C stopped it; else 3 when the run is not valid evidence (a harness error, a saturated generator,
a media engine or Locust worker that died, a run that stopped before its end, or a *required* SLO with no or
insufficient data); else 1 when an SLO failed; else 0. 3 wins over 1: when the harness broke or could not
measure what was asked, a breach next to it is not a trustworthy verdict. An SLO marked ``required: false``
without enough data is reported but does not change the exit code.
"""

from __future__ import annotations

import array
import atexit
import dataclasses
import datetime as dt
import enum
import json
import logging
import os
import platform
import re
import secrets
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from .. import __version__
from ..errors import EXIT_CODE_MEANINGS, ExitCode, VoxloadError
from .slo import SloResult, SloState

log = logging.getLogger(__name__)

RUN_SCHEMA_VERSION = 1
SUMMARY_SCHEMA_VERSION = 1
from .layout import DEFAULT_REPORTS_DIR, EVENTS_JSONL, JUNIT_XML, RUN_JSON, SAMPLES_DIR, SUMMARY_JSON, sample_stream_name  # noqa: E402
DEFAULT_FLUSH_INTERVAL_S = 1.0

_RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_STREAM_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class ResultsError(VoxloadError):
    """Base of results errors (one line, printed by the CLI, exit 2)."""


class InvalidRunId(ResultsError):
    pass


class RunDirectoryExists(ResultsError):
    pass


class InvalidTransition(ResultsError):
    pass


class RunStatus(enum.Enum):
    RUNNING = "running"
    FINISHED = "finished"  # the run completed and verdicts were computed
    INTERRUPTED = "interrupted"  # Ctrl-C / SIGTERM: partial results
    FAILED = "failed"  # the harness itself failed


_ALLOWED_STATUS = {
    RunStatus.RUNNING: {RunStatus.FINISHED, RunStatus.INTERRUPTED, RunStatus.FAILED},
    RunStatus.FINISHED: set(),
    RunStatus.INTERRUPTED: set(),
    RunStatus.FAILED: set(),
}


class Verdict(enum.Enum):
    """The one word for each exit code (summary.json, verdict.json, JUnit)."""

    PASSED = "passed"  # 0
    SLO_FAILED = "slo_failed"  # 1
    ERROR = "error"  # 2: usage or input error, nothing ran
    INVALID = "invalid"  # 3: not valid evidence
    INTERRUPTED = "interrupted"  # 130: Ctrl-C


_VERDICT_OF_CODE = {ExitCode.OK: Verdict.PASSED, ExitCode.SLO_BREACHED: Verdict.SLO_FAILED, ExitCode.USAGE: Verdict.ERROR,
                    ExitCode.INVALID_RUN: Verdict.INVALID, ExitCode.INTERRUPTED: Verdict.INTERRUPTED}


@dataclasses.dataclass(frozen=True)
class GeneratorHealth:
    """How the load generators fared (judged by ``harness.results.health``); `saturated` makes the run exit 3."""

    saturated: bool
    cpu_pct_max: float | None = None
    loop_lag_p99_ms: float | None = None
    notes: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "notes": list(self.notes)}


def exit_code(results: Sequence[SloResult], *, harness_error: bool = False, saturated: bool = False,
              invalid: bool = False, interrupted: bool = False) -> ExitCode:
    """The process exit code for a run that got as far as its verdicts (precedence: module docstring).

    `invalid`: an event made the run invalid evidence (engine or worker died, the run stopped before its end)."""
    if interrupted:
        return ExitCode.INTERRUPTED
    if harness_error or saturated or invalid:
        return ExitCode.INVALID_RUN
    if any(r.state in (SloState.NO_DATA, SloState.INSUFFICIENT) and r.threshold.required for r in results):
        return ExitCode.INVALID_RUN
    if any(r.state is SloState.FAIL for r in results):
        return ExitCode.SLO_BREACHED
    return ExitCode.OK


def verdict_for(code: int) -> Verdict:
    try:
        return _VERDICT_OF_CODE[ExitCode(code)]
    except ValueError:
        return Verdict.INVALID


def exit_code_meaning(code: int) -> str:
    try:
        return EXIT_CODE_MEANINGS[ExitCode(code)]
    except ValueError:
        return f"unknown exit code {code}"


# --- small helpers ---


def utc_now_iso(now: float | None = None) -> str:
    moment = dt.datetime.fromtimestamp(time.time() if now is None else now, tz=dt.timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_run_id(now: float | None = None) -> str:
    """UTC timestamp plus 6 random hex digits, e.g. ``20261126T114149Z-3f9a2c`` (sorts by start time)."""
    moment = dt.datetime.fromtimestamp(time.time() if now is None else now, tz=dt.timezone.utc)
    return f"{moment:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def public_url(url: str | None) -> str | None:
    """The URL without user info, query or fragment: what may be written to results."""
    if url is None:
        return None
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port is not None:
        netloc = f"{netloc}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _git_sha(repo: Path) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    sha = out.stdout.strip()
    return sha if out.returncode == 0 and re.fullmatch(r"[0-9a-f]{40}", sha) else None


def machine_info() -> dict[str, Any]:
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count()
    try:
        import psutil

        memory_total_bytes: int | None = psutil.virtual_memory().total
    except ImportError:
        memory_total_bytes = None
    return {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "cpu_count": os.cpu_count(),
        "cpu_usable": usable,
        "memory_total_bytes": memory_total_bytes,
    }


def harness_info() -> dict[str, Any]:
    return {"version": __version__, "git_sha": _git_sha(Path(__file__).resolve().parent.parent)}


def write_json_atomic(path: Path, data: Any) -> None:
    """Write via a temporary file and rename, so readers (and a crash) only ever see a whole file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=False, allow_nan=False)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


# --- sample streams ---


@dataclasses.dataclass(frozen=True)
class SampleWriterStats:
    path: Path
    lines_written: int
    flushes: int
    closed: bool


_OPEN_WRITERS: weakref.WeakSet[SampleWriter] = weakref.WeakSet()


class SampleWriter:
    """Append-only JSON-lines sample stream, safe to use from several threads.

    Lines are flushed to the OS at least every `flush_interval_s`: on the next ``write`` after the interval,
    and by a background flusher thread when writes pause, so a killed process loses at most about one
    interval of samples and never corrupts earlier lines (only the last line can be cut short).
    Open writers are also flushed at interpreter exit (Ctrl-C included).
    """

    def __init__(
        self,
        path: Path,
        *,
        flush_interval_s: float = DEFAULT_FLUSH_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        background_flush: bool = True,
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "a", encoding="utf-8")
        self._lock = threading.Lock()
        self._clock = clock
        self._wall_clock = wall_clock
        self._flush_interval_s = flush_interval_s
        self._last_flush = clock()
        self._dirty = False
        self._lines = 0
        self._flushes = 0
        self._closed = False
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None
        if background_flush:
            self._flusher = threading.Thread(target=self._flush_loop, name=f"samples-flush-{self.path.stem}", daemon=True)
            self._flusher.start()
        _OPEN_WRITERS.add(self)

    def write(self, metric: str, value: float, *, t: float | None = None, **tags: str | int | float | bool | None) -> None:
        record: dict[str, Any] = {"t": self._wall_clock() if t is None else t, "metric": metric, "value": float(value)}
        if tags:
            record["tags"] = tags
        line = json.dumps(record, separators=(",", ":"), allow_nan=True) + "\n"
        with self._lock:
            if self._closed:
                raise ResultsError(f"sample stream {self.path} is closed")
            self._fh.write(line)
            self._lines += 1
            self._dirty = True
            if self._clock() - self._last_flush >= self._flush_interval_s:
                self._flush_locked()

    def flush(self) -> None:
        with self._lock:
            if not self._closed:
                self._flush_locked()

    def _flush_locked(self) -> None:
        if self._dirty:
            self._fh.flush()
            self._flushes += 1
            self._dirty = False
        self._last_flush = self._clock()

    def _flush_loop(self) -> None:
        while not self._stop.wait(self._flush_interval_s):
            self.flush()

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            if self._closed:
                return
            self._flush_locked()
            self._fh.close()
            self._closed = True
        if self._flusher is not None and self._flusher is not threading.current_thread():
            self._flusher.join(timeout=self._flush_interval_s + 1.0)

    def statistics(self) -> SampleWriterStats:
        with self._lock:
            return SampleWriterStats(self.path, self._lines, self._flushes, self._closed)

    def __enter__(self) -> SampleWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@atexit.register
def close_open_writers() -> None:
    """Flush and close every open sample stream (at exit, and before a hard stop's os._exit)."""
    for writer in list(_OPEN_WRITERS):
        writer.close()


@dataclasses.dataclass(frozen=True)
class SampleLine:
    t: float
    metric: str
    value: float
    tags: Mapping[str, Any]
    source: str  # the stream's file stem


def iter_sample_lines(path: Path) -> Iterator[SampleLine]:
    """Lines of one stream; a cut-short (or otherwise unparsable) line, as a kill leaves at the end, is skipped."""
    source = Path(path).stem
    with open(path, encoding="utf-8", errors="replace") as fh:
        for raw in fh:
            try:
                record = json.loads(raw)
                yield SampleLine(float(record["t"]), str(record["metric"]), float(record["value"]), record.get("tags", {}), source)
            except (ValueError, KeyError, TypeError):
                continue


def sample_files(run_path: Path) -> list[Path]:
    return sorted((Path(run_path) / SAMPLES_DIR).glob("*.jsonl"))


def load_metric_samples(run_path: Path, metrics: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """``{metric: values}`` over every stream of a run, streamed line by line into compact arrays.

    This is the input ``harness.results.slo.evaluate`` takes; restrict `metrics` to keep memory to what is judged.
    """
    wanted = set(metrics) if metrics is not None else None
    acc: dict[str, array.array] = {}
    for path in sample_files(run_path):
        for line in iter_sample_lines(path):
            if wanted is None or line.metric in wanted:
                acc.setdefault(line.metric, array.array("d")).append(line.value)
    return {metric: np.frombuffer(values, dtype=float) for metric, values in acc.items()}


def read_samples(run_path: Path) -> Any:
    """Every sample of a run as a pandas DataFrame: columns t, metric, value, source, then one per tag key."""
    import pandas as pd

    rows = [
        {"t": s.t, "metric": s.metric, "value": s.value, "source": s.source, **s.tags}
        for path in sample_files(run_path)
        for s in iter_sample_lines(path)
    ]
    return pd.DataFrame(rows, columns=None if rows else ["t", "metric", "value", "source"])


# --- the run directory ---


class RunDirectory:
    """``reports/<run-id>/``: created at start, run.json written at once and kept current."""

    def __init__(self, path: Path, metadata: dict[str, Any]) -> None:
        self.path = Path(path)
        self._metadata = metadata
        self._lock = threading.Lock()
        self._writers: list[SampleWriter] = []

    @classmethod
    def create(
        cls,
        *,
        root: Path = DEFAULT_REPORTS_DIR,
        run_id: str | None = None,
        scenario: Mapping[str, Any] | None = None,
        target_url: str | None = None,
        now: float | None = None,
    ) -> RunDirectory:
        """Make the directory (refusing an existing one) and write run.json with status ``running``.

        `scenario` is the resolved scenario content (``Scenario.to_dict()``); `target_url` loses any
        credentials before it is stored.
        """
        run_id = run_id if run_id is not None else new_run_id(now)
        if not _RUN_ID_RE.match(run_id):
            raise InvalidRunId(f"invalid run id {run_id!r}: use letters, digits, '.', '_' and '-' (at most 100)")
        path = Path(root) / run_id
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            path.mkdir()
        except FileExistsError:
            raise RunDirectoryExists(f"run directory {path} already exists: choose another run id") from None
        (path / SAMPLES_DIR).mkdir()
        metadata = {
            "schema_version": RUN_SCHEMA_VERSION,
            "run_id": run_id,
            "status": RunStatus.RUNNING.value,
            "started_at": utc_now_iso(now),
            "ended_at": None,
            "exit_code": None,
            "exit_code_meaning": None,
            "scenario": dict(scenario) if scenario is not None else None,
            "target": {"url": public_url(target_url), "version": None},
            "harness": harness_info(),
            "machine": machine_info(),
            "command": [Path(sys.argv[0]).name, *sys.argv[1:]] if sys.argv and sys.argv[0] else [],
            "generator_health": None,
            "error": None,
        }
        run = cls(path, metadata)
        run._save()
        return run

    @classmethod
    def open(cls, path: Path) -> RunDirectory:
        """An existing run directory (e.g. to re-evaluate or report on it)."""
        with open(Path(path) / RUN_JSON, encoding="utf-8") as fh:
            return cls(Path(path), json.load(fh))

    # -- metadata --

    @property
    def run_id(self) -> str:
        return self._metadata["run_id"]

    @property
    def status(self) -> RunStatus:
        return RunStatus(self._metadata["status"])

    @property
    def metadata(self) -> Mapping[str, Any]:
        return json.loads(json.dumps(self._metadata))  # a copy: callers cannot bypass _save

    def _save(self) -> None:
        write_json_atomic(self.path / RUN_JSON, self._metadata)

    def _set_status(self, new: RunStatus) -> None:
        old = self.status
        if new not in _ALLOWED_STATUS[old]:
            raise InvalidTransition(f"run {self.run_id}: cannot go from {old.value} to {new.value}")
        log.info("run %s: %s -> %s", self.run_id, old.value, new.value)
        self._metadata["status"] = new.value

    def set_target_version(self, version: str | None) -> None:
        with self._lock:
            self._metadata["target"]["version"] = version
            self._save()

    def mark_started(self, now: float | None = None) -> None:
        """The load started (Locust's test_start): run.json times count from here, not from process start."""
        with self._lock:
            self._metadata["started_at"] = utc_now_iso(now)
            self._save()

    def record_event(self, kind: str, text: str, *, t: float | None = None, **details: Any) -> dict[str, Any]:
        """Append one run event (an engine died, a worker was lost, Ctrl-C) to events.jsonl, at once and durably."""
        record = {"t": time.time() if t is None else t, "kind": kind, "text": text, **details}
        with self._lock:
            with open(self.path / EVENTS_JSONL, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(record, separators=(",", ":")) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
        return record

    def set_target_url(self, url: str | None) -> None:
        """For runs whose target is only known after start (the embedded stack's free ports)."""
        with self._lock:
            self._metadata["target"]["url"] = public_url(url)
            self._save()

    def finish(
        self,
        status: RunStatus,
        *,
        exit_code: int,
        generator_health: GeneratorHealth | None = None,
        error: str | None = None,
        now: float | None = None,
    ) -> None:
        """Close the sample streams and record the outcome; `error` is one line, no secrets."""
        for writer in self._writers:
            writer.close()
        with self._lock:
            self._set_status(status)
            self._metadata["exit_code_meaning"] = exit_code_meaning(exit_code)
            self._metadata["ended_at"] = utc_now_iso(now)
            self._metadata["exit_code"] = exit_code
            self._metadata["generator_health"] = generator_health.as_dict() if generator_health else None
            self._metadata["error"] = error
            self._save()

    # -- files --

    @property
    def run_json(self) -> Path:
        return self.path / RUN_JSON

    @property
    def summary_json(self) -> Path:
        return self.path / SUMMARY_JSON

    @property
    def junit_xml(self) -> Path:
        return self.path / JUNIT_XML

    @property
    def samples_dir(self) -> Path:
        return self.path / SAMPLES_DIR

    def sample_writer(self, name: str, *, flush_interval_s: float = DEFAULT_FLUSH_INTERVAL_S) -> SampleWriter:
        """A new stream ``samples/<name>.jsonl``; use one per process (e.g. ``engine-1``, ``locust``)."""
        if not _STREAM_NAME_RE.match(name):
            raise ResultsError(f"invalid sample stream name {name!r}")
        writer = SampleWriter(self.samples_dir / sample_stream_name(name), flush_interval_s=flush_interval_s)
        self._writers.append(writer)
        return writer

    def write_summary(self, summary: Mapping[str, Any]) -> Path:
        write_json_atomic(self.summary_json, summary)
        return self.summary_json


# --- summary.json ---


def build_summary(
    *,
    run_id: str,
    scenario_name: str,
    results: Sequence[SloResult],
    started_at: str,
    ended_at: str,
    duration_s: float,
    status: RunStatus,
    harness_error: str | None = None,
    generator_health: GeneratorHealth | None = None,
    counts: Mapping[str, int | float] | None = None,
    events: Sequence[Mapping[str, Any]] = (),
    invalid_reasons: Sequence[str] = (),
    interrupted: bool = False,
) -> dict[str, Any]:
    """The summary.json document (validated by SUMMARY_SCHEMA in tests).

    `events`: what happened to the run (run events with ``kind``, ``t``, ``offset_s``, ``text``); `invalid_reasons`:
    one sentence per reason the run is not valid evidence (exit 3); `interrupted`: stopped by Ctrl-C (exit 130)."""
    saturated = bool(generator_health and generator_health.saturated)
    code = exit_code(results, harness_error=harness_error is not None, saturated=saturated,
                     invalid=bool(invalid_reasons), interrupted=interrupted)
    states = [r.state for r in results]
    return {
        "schema_version": SUMMARY_SCHEMA_VERSION,
        "run_id": run_id,
        "scenario": scenario_name,
        "status": status.value,
        "verdict": verdict_for(code).value,
        "exit_code": int(code),
        "exit_code_meaning": exit_code_meaning(code),
        "invalid_reasons": list(invalid_reasons),
        "events": [dict(e) for e in events],
        "timing": {"started_at": started_at, "ended_at": ended_at, "duration_s": duration_s},
        "slo_counts": {state.value: states.count(state) for state in SloState},
        "slos": [r.as_dict() for r in results],
        "counts": dict(counts or {}),
        "generator_health": generator_health.as_dict() if generator_health else None,
        "harness_error": harness_error,
    }


def load_summary(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        summary = json.load(fh)
    if summary.get("schema_version") != SUMMARY_SCHEMA_VERSION:
        raise ResultsError(f"{path}: summary schema_version {summary.get('schema_version')!r} is not {SUMMARY_SCHEMA_VERSION}")
    return summary


_NUMBER_OR_NULL = {"type": ["number", "null"]}
_SLO_ROW = {
    "type": "object",
    "required": ["metric", "source", "file", "line", "aggregation", "op", "bound", "unit", "required", "state", "observed", "sample_count"],
    "additionalProperties": False,
    "properties": {
        "metric": {"type": "string"},
        "source": {"type": "string"},
        "file": {"type": ["string", "null"]},
        "line": {"type": ["integer", "null"]},
        "aggregation": {"type": "string"},
        "op": {"enum": ["<", "<=", ">", ">=", "=="]},
        "bound": {"type": "number"},
        "unit": {"type": "string"},
        "required": {"type": "boolean"},
        "state": {"enum": [s.value for s in SloState]},
        "observed": _NUMBER_OR_NULL,
        "sample_count": {"type": "integer", "minimum": 0},
        "coverage": _NUMBER_OR_NULL,
    },
}
SUMMARY_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["schema_version", "run_id", "scenario", "status", "verdict", "exit_code", "timing", "slo_counts", "slos",
                 "counts", "generator_health", "harness_error"],
    "additionalProperties": False,
    "properties": {
        "schema_version": {"const": SUMMARY_SCHEMA_VERSION},
        "run_id": {"type": "string"},
        "scenario": {"type": "string"},
        "status": {"enum": [s.value for s in RunStatus]},
        "verdict": {"enum": [v.value for v in Verdict]},
        "exit_code": {"enum": [int(c) for c in ExitCode]},
        "exit_code_meaning": {"type": "string"},
        "invalid_reasons": {"type": "array", "items": {"type": "string"}},
        "events": {"type": "array", "items": {"type": "object", "required": ["t", "kind", "text"],
                                              "properties": {"t": {"type": "number"}, "kind": {"type": "string"},
                                                             "text": {"type": "string"}}}},
        "timing": {
            "type": "object",
            "required": ["started_at", "ended_at", "duration_s"],
            "properties": {"started_at": {"type": "string"}, "ended_at": {"type": "string"}, "duration_s": {"type": "number", "minimum": 0}},
        },
        "slo_counts": {
            "type": "object",
            "required": [s.value for s in SloState],
            "additionalProperties": {"type": "integer", "minimum": 0},
        },
        "slos": {"type": "array", "items": _SLO_ROW},
        "counts": {"type": "object", "additionalProperties": {"type": "number"}},
        "generator_health": {"type": ["object", "null"]},
        "harness_error": {"type": ["string", "null"]},
    },
}
