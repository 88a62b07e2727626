"""Every file name in a run folder: the one owner (writers and readers import these, never spell them).

    reports/<run-id>/
      run.json  events.jsonl  summary.json  junit.xml         harness.results.run_folder / junit
      event.json  handovers.json  workers.json                harness.rehearsal.run (provisioned event, handovers, workers)
      locust_stats_history.csv  locust_stats.csv  locust_failures.csv      harness.rehearsal.plugin
      samples/<stream>.jsonl                                  one per writing process; samples/w<N>.jsonl per worker
      media/media-<engine>-{listeners,publishers}.csv         harness.media.samples (an engine's own files)
      media/media-<engine>-{events,seconds}.jsonl
      media/media-<engine>-exit.jsonl                         harness.media.bridge, when an engine dies
      browser/status.jsonl  browser/canary-<name>-<kind>.jsonl   harness.results.browser_files
      probes/<probe>/finding.json                             harness.probes.finding
      report.html  report.pdf  summary.md  verdict.json       harness.report.build

A distributed worker's engine ``e0`` lands in the master's folder as engine ``w1.e0`` (:func:`master_file_name`).
This module is plain names and paths: engine processes, refstack-free code and the report may all import it.
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_REPORTS_DIR = Path("reports")

RUN_JSON = "run.json"
EVENTS_JSONL = "events.jsonl"
SUMMARY_JSON = "summary.json"
JUNIT_XML = "junit.xml"
EVENT_JSON = "event.json"
HANDOVERS_JSON = "handovers.json"
WORKERS_JSON = "workers.json"
LOCUST_HISTORY_CSV = "locust_stats_history.csv"
LOCUST_STATS_CSV = "locust_stats.csv"
LOCUST_FAILURES_CSV = "locust_failures.csv"
REPORT_HTML = "report.html"
REPORT_PDF = "report.pdf"
SUMMARY_MD = "summary.md"
VERDICT_JSON = "verdict.json"

SAMPLES_DIR = "samples"
MEDIA_DIR = "media"
BROWSER_DIR = "browser"
PROBES_DIR = "probes"
FINDING_JSON = "finding.json"
BROWSER_STATUS_JSONL = "status.jsonl"

# An engine's files under media/: media-<engine>-<kind>.<ext>
MEDIA_PREFIX = "media-"
MEDIA_FILE_KINDS = {"listeners": "csv", "publishers": "csv", "events": "jsonl", "seconds": "jsonl", "exit": "jsonl"}
CANARY_FILE_KINDS = ("seconds", "events", "page")


def media_file_name(engine: str, kind: str) -> str:
    return f"{MEDIA_PREFIX}{engine}-{kind}.{MEDIA_FILE_KINDS[kind]}"


def media_glob(kind: str) -> str:
    """Every engine's file of one kind (each worker's engines included)."""
    return media_file_name("*", kind)


def media_engine(path: Path) -> str:
    """The engine a media file came from: ``e0``, or ``w1.e0`` for a distributed worker's engine."""
    return Path(path).name.split("-")[1]


def media_log_name(engine: str) -> str:
    """An engine's stderr (kept next to its files; not forwarded by workers)."""
    return f"{MEDIA_PREFIX}{engine}.log"


def sample_stream_name(stream: str) -> str:
    return f"{stream}.jsonl"


def canary_file_name(name: str, kind: str) -> str:
    assert kind in CANARY_FILE_KINDS, kind
    return f"canary-{name}-{kind}.jsonl"


def master_file_name(worker: str, relative: str) -> str:
    """Where a worker's file lands in the master's folder; keeps every media glob above working."""
    folder, _, name = relative.rpartition("/")
    if folder == SAMPLES_DIR:
        return f"{SAMPLES_DIR}/{sample_stream_name(worker)}"
    if name.startswith(MEDIA_PREFIX):
        name = f"{MEDIA_PREFIX}{worker}.{name[len(MEDIA_PREFIX):]}"
    return f"{folder}/{name}" if folder else name


# What a distributed worker forwards to the master (relative to its private folder).
WORKER_FORWARDED_GLOBS = (f"{SAMPLES_DIR}/*.jsonl", f"{MEDIA_DIR}/{MEDIA_PREFIX}*")
