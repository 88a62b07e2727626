"""Reading a run folder into pandas frames, tolerating partial and crashed runs.

Owns the one pass over ``reports/<run-id>/`` that the report makes. Formats are those written by
``harness.results.run_folder`` (run.json, summary.json, ``samples/*.jsonl``), ``harness.media.samples`` (``media/``),
``harness.rehearsal.plugin`` (``locust_*.csv``), Locust's own ``locust_stats_history.csv`` and the probes'
``probes/<name>/finding.json`` (``harness.report.findings``).

Nothing here raises for a missing or cut-off file: each gap becomes a line in ``RunData.missing`` so the
report can say what it could not see. Only a path that is not a run folder at all is an error.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..results.run_folder import sample_files
from ..results.layout import (EVENT_JSON, LOCUST_FAILURES_CSV, LOCUST_HISTORY_CSV, MEDIA_DIR, PROBES_DIR, RUN_JSON,
                              SAMPLES_DIR, SUMMARY_JSON, media_engine, media_glob)
from .errors import NotARunFolder, RunFolderNotFound



# Only the listener columns the report reads (harness/media/samples.py has them all): a one-hour run with
# 500 listeners has ~1.8 M rows, and skipping the rest halves the parse time.
LISTENER_USECOLS = (
    "t_epoch_s", "handle", "booth", "role", "packets", "expected", "lost", "jitter_ms", "latency_p50_ms",
    "silence_max_ms", "max_interarrival_ms", "marker_latency_ms",
)
# Sample tags the report groups by (harness.rehearsal.plugin: name, method, error; users/run: booth; hub lag: process;
# caption samples: recogniser, harness/media/captions_match.py).
SAMPLE_TAGS = ("name", "booth", "process", "method", "error", "recogniser")
# media-*-seconds.jsonl lines are {"engine", "t_epoch_s", "interval_s", "health", "groups"} in this order
# (harness/media/engine.py); the report needs only the head, so the (large) groups list is cut off unparsed.
_GROUPS_KEY = ',"groups":'


@dataclasses.dataclass
class RunData:
    """Everything the report reads from one run folder; frames are empty (never None) when absent."""

    path: Path
    run_id: str
    run_meta: dict[str, Any] | None
    summary: dict[str, Any] | None
    event: dict[str, Any] | None
    samples: pd.DataFrame  # t, metric, value, name, booth, process
    listeners: pd.DataFrame  # LISTENER_USECOLS
    media_events: pd.DataFrame  # one row per media event (setup, close, disconnected, silence)
    engine_seconds: pd.DataFrame  # t, engine, cpu_pct, loop_lag_p95_ms, listeners, publishers, saturated, reasons
    history: pd.DataFrame  # Locust's users and request rate per second (HISTORY_COLUMNS)
    failures: pd.DataFrame  # Locust's failures table
    missing: list[str]

    @property
    def is_probe_run(self) -> bool:
        """A `voxload probe` folder: findings under probes/, no scenario, no SLO verdicts by design."""
        return (self.path / PROBES_DIR).is_dir() and not self.scenario and self.summary is None

    @property
    def scenario(self) -> dict[str, Any]:
        return (self.run_meta or {}).get("scenario") or {}

    @property
    def start_epoch_s(self) -> float | None:
        """Load start: summary timing, else run.json start, else the first sample seen."""
        for text in ((self.summary or {}).get("timing", {}).get("started_at"), (self.run_meta or {}).get("started_at")):
            if text:
                return _parse_iso(text)
        firsts = [frame["t"].min() for frame in (self.samples,) if not frame.empty]
        firsts += [self.listeners["t_epoch_s"].min()] if not self.listeners.empty else []
        return float(min(firsts)) if firsts else None

    @functools.cached_property
    def booth_labels(self) -> dict[str, str]:
        """booth id (contract 2) -> "ROOM/LANG" as the scenario names it, from event.json."""
        booths = (self.event or {}).get("booths") or {}
        return {info["booth_id"]: ref for ref, info in booths.items() if isinstance(info, dict) and "booth_id" in info}

    def label(self, booth_id: Any) -> str:
        return self.booth_labels.get(str(booth_id), str(booth_id))

    def labels(self, booth_ids: pd.Series) -> pd.Series:
        """Vectorised ``label``: maps each distinct id once (columns are categorical or repeat a few ids)."""
        as_text = booth_ids.astype(str)
        return as_text.map(self.booth_labels).fillna(as_text)


def _parse_iso(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _ends_mid_line(path: Path) -> bool:
    """A writer killed mid-line leaves no final newline (every writer here ends each record with one)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            if fh.tell() == 0:
                return False
            fh.seek(-1, 2)
            return fh.read(1) != b"\n"
    except OSError:
        return False


def _read_json(path: Path, missing: list[str], why: str) -> dict[str, Any] | None:
    if not path.exists():
        missing.append(f"{path.name} is missing: {why}")
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError) as exc:
        missing.append(f"{path.name} is unreadable ({type(exc).__name__}): {why}")
        return None
    if not isinstance(data, dict):
        missing.append(f"{path.name} is not a JSON object: {why}")
        return None
    return data


# harness.results.run_folder.SampleWriter writes exactly this shape (json.dumps with compact separators, keys in this
# order); matching it with one regex over the file is ~5x faster than json.loads per line, which matters
# for the ~1.5 M lines of a one-hour run. Lines of any other shape take the json.loads path.
_SAMPLE_LINE = re.compile(
    r'^\{"t":([-+0-9.eE]+|NaN|-?Infinity),"metric":"([^"\\]+)","value":([-+0-9.eE]+|NaN|-?Infinity)(?:,"tags":(\{[^\n]*\}))?\}$',
    re.MULTILINE,
)


def _numbers(texts: tuple[str, ...]) -> np.ndarray:
    return np.array(" ".join(texts).split(), dtype=float) if texts else np.array([], dtype=float)


def _parse_stream(text: str) -> tuple[pd.DataFrame, int]:
    """One stream's text -> (frame of t, metric, value, tags text), number of unreadable lines."""
    matches = _SAMPLE_LINE.findall(text)
    if len(matches) == text.count("\n"):
        ts, metrics, values, tags = zip(*matches) if matches else ((), (), (), ())
        return pd.DataFrame({"t": _numbers(ts), "metric": metrics, "value": _numbers(values), "tags": tags}), 0
    rows, bad = [], 0
    for raw in text.splitlines():
        match = _SAMPLE_LINE.match(raw)
        if match:
            rows.append((float(match[1]), match[2], float(match[3]), match[4]))
            continue
        try:
            record = json.loads(raw)
            rows.append((float(record["t"]), str(record["metric"]), float(record["value"]), json.dumps(record.get("tags") or {})))
        except (ValueError, KeyError, TypeError):
            bad += 1
    return pd.DataFrame(rows, columns=["t", "metric", "value", "tags"]), bad


def read_samples(paths: list[Path], missing: list[str]) -> pd.DataFrame:
    """All sample streams as one long frame: t, metric (categorical), value, and the SAMPLE_TAGS columns."""
    frames = []
    for path in paths:
        text = path.read_text(encoding="utf-8", errors="replace")
        cut = 0
        if text and not text.endswith("\n"):
            text, cut = text[: text.rfind("\n") + 1], 1  # the cut-short last line of a killed writer
        frame, bad = _parse_stream(text)
        if bad + cut:
            missing.append(f"{SAMPLES_DIR}/{path.name}: {bad + cut} unreadable line(s) skipped (a writer cut off mid-line)")
        frames.append(frame)
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["t", "metric", "value", "tags"])
    frame["metric"] = frame["metric"].astype("category")
    # Tags repeat a handful of distinct objects (request names, booths): parse each distinct text once.
    tags = frame.pop("tags").fillna("").astype("category")
    parsed = [json.loads(text) if text else {} for text in tags.cat.categories]
    for tag in SAMPLE_TAGS:
        frame[tag] = tags.cat.rename_categories(range(len(parsed))).map(
            {i: (p.get(tag) if isinstance(p, dict) else None) for i, p in enumerate(parsed)}).astype(object)
    return frame


def read_listener_csvs(paths: list[Path], missing: list[str]) -> pd.DataFrame:
    frames = []
    for path in paths:
        try:
            frame = pd.read_csv(path, usecols=lambda c: c in LISTENER_USECOLS, on_bad_lines="skip", low_memory=False)
        except (pd.errors.EmptyDataError, pd.errors.ParserError, ValueError) as exc:
            missing.append(f"{MEDIA_DIR}/{path.name} could not be parsed ({type(exc).__name__}); its listeners are left out")
            continue
        if _ends_mid_line(path):
            missing.append(f"{MEDIA_DIR}/{path.name} ends mid-line (the engine was killed); the cut row is dropped")
            frame = frame.iloc[:-1]
        if "handle" in frame:
            # Handles are unique per engine only (every distributed worker has an engine e0): scope them
            # by the file's engine, as harness.results.measures does, so listeners of different workers stay apart.
            source = media_engine(path)
            frame["handle"] = frame["handle"].astype(str).astype("category").cat.rename_categories(lambda h: f"{source}/{h}")
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=list(LISTENER_USECOLS))
    frame = pd.concat(frames, ignore_index=True)
    for column in LISTENER_USECOLS:
        if column not in frame:
            frame[column] = np.nan
        elif column not in ("handle", "booth", "role"):
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
    for column in ("handle", "booth", "role"):
        frame[column] = frame[column].astype("category")
    return frame.dropna(subset=["t_epoch_s"])


def _read_jsonl(path: Path, missing: list[str]) -> list[dict[str, Any]]:
    records, bad = [], 0
    with open(path, encoding="utf-8", errors="replace") as fh:
        for raw in fh:
            try:
                records.append(json.loads(raw))
            except ValueError:
                bad += 1
    if bad:
        missing.append(f"{MEDIA_DIR}/{path.name}: {bad} unreadable line(s) skipped (a writer cut off mid-line)")
    return records


def read_engine_seconds(paths: list[Path], missing: list[str]) -> pd.DataFrame:
    """One row per engine and second: the health block of each pushed aggregate."""
    rows, bad = [], 0
    for path in paths:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for raw in fh:
                head, sep, _groups = raw.partition(_GROUPS_KEY)
                try:
                    record = json.loads(head + "}" if sep else raw)
                    health = record.get("health") or {}
                    rows.append({
                        "t": float(record["t_epoch_s"]),
                        "engine": media_engine(path),
                        "cpu_pct": health.get("cpu_pct"),
                        "loop_lag_p95_ms": health.get("loop_lag_p95_ms"),
                        "listeners": health.get("listeners"),
                        "publishers": health.get("publishers"),
                        "saturated": bool(health.get("saturated")),
                        "reasons": "; ".join(health.get("reasons") or []),
                    })
                except (ValueError, KeyError, TypeError, AttributeError):
                    bad += 1
        if bad:
            missing.append(f"{MEDIA_DIR}/{path.name}: {bad} unreadable line(s) skipped")
            bad = 0
    columns = ["t", "engine", "cpu_pct", "loop_lag_p95_ms", "listeners", "publishers", "saturated", "reasons"]
    frame = pd.DataFrame(rows, columns=columns)
    for column in ("cpu_pct", "loop_lag_p95_ms", "listeners", "publishers"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame


# locust_stats_history.csv comes in two dialects: the one harness.rehearsal.plugin streams (snake_case, one row
# per second) and Locust's own --csv history (Aggregated rows among per-request rows). Both map to these.
_HISTORY_COLUMNS = {
    "timestamp": "t", "user_count": "users", "requests_per_s": "rps", "failures_per_s": "failures_per_s",
    "Timestamp": "t", "User Count": "users", "Requests/s": "rps", "Failures/s": "failures_per_s",
}
HISTORY_COLUMNS = ("t", "users", "rps", "failures_per_s")


def read_history(path: Path, missing: list[str]) -> pd.DataFrame:
    """Locust's users and request rate per second: columns t (epoch s), users, rps, failures_per_s."""
    empty = pd.DataFrame(columns=list(HISTORY_COLUMNS))
    if not path.exists():
        return empty
    try:
        frame = pd.read_csv(path, on_bad_lines="skip")
    except (pd.errors.EmptyDataError, pd.errors.ParserError) as exc:
        missing.append(f"{path.name} could not be parsed ({type(exc).__name__})")
        return empty
    if "Name" in frame:
        frame = frame[frame["Name"] == "Aggregated"]
    frame = frame.rename(columns=_HISTORY_COLUMNS)
    if "t" not in frame:
        missing.append(f"{path.name} has no timestamp column; Locust's user count over time is not shown")
        return empty
    out = pd.DataFrame({column: pd.to_numeric(frame[column], errors="coerce") if column in frame else np.nan for column in HISTORY_COLUMNS})
    return out.dropna(subset=["t"]).reset_index(drop=True)


def read_failures(path: Path) -> pd.DataFrame:
    if not path.exists():
        return pd.DataFrame(columns=["Method", "Name", "Error", "Occurrences"])
    try:
        return pd.read_csv(path, on_bad_lines="skip")
    except (pd.errors.EmptyDataError, pd.errors.ParserError):
        return pd.DataFrame(columns=["Method", "Name", "Error", "Occurrences"])


def load_run(path: Path) -> RunData:
    """Read a run folder; raises only when `path` is not a run folder at all."""
    path = Path(path)
    if not path.is_dir():
        raise RunFolderNotFound(f"{path} is not a directory (expected reports/<run-id>)")
    media = path / MEDIA_DIR
    sample_paths = sample_files(path)
    known = [path / RUN_JSON, path / SUMMARY_JSON, path / SAMPLES_DIR, media, path / PROBES_DIR]
    if not any(p.exists() for p in known):
        raise NotARunFolder(f"{path} holds no run.json, summary.json, samples/, media/ or probes/: not a voxload run folder")
    missing: list[str] = []
    run_meta = _read_json(path / RUN_JSON, missing, "no target, scenario or harness metadata")
    has_probes = (path / PROBES_DIR).is_dir()
    summary = None
    if (path / SUMMARY_JSON).exists() or not (has_probes and not (run_meta or {}).get("scenario")):
        # Probe runs have no scenario and never write summary.json; rehearsals always do when they finish.
        summary = _read_json(path / SUMMARY_JSON, missing, "the run did not finish (crashed, killed or still running), so it has no final verdicts")
    event = None
    if (path / EVENT_JSON).exists() or not has_probes:
        event = _read_json(path / EVENT_JSON, missing, "booths are shown by id, not by room and language")
    if not sample_paths and not has_probes:
        missing.append(f"{SAMPLES_DIR}/ holds no sample stream: no HTTP, caption, handover or generator-lag data")
    listener_paths = sorted(media.glob(media_glob("listeners")))
    if not listener_paths and not has_probes:
        missing.append(f"{MEDIA_DIR}/ holds no listener CSV: no mouth-to-ear, loss or handover-gap data")
    event_records = [r for p in sorted(media.glob(media_glob("events"))) for r in _read_jsonl(p, missing)]
    run_id = (summary or {}).get("run_id") or (run_meta or {}).get("run_id") or path.name
    return RunData(
        path=path,
        run_id=str(run_id),
        run_meta=run_meta,
        summary=summary,
        event=event,
        samples=read_samples(sample_paths, missing),
        listeners=read_listener_csvs(listener_paths, missing),
        media_events=pd.DataFrame(event_records),
        engine_seconds=read_engine_seconds(sorted(media.glob(media_glob("seconds"))), missing),
        history=read_history(path / LOCUST_HISTORY_CSV, missing),
        failures=read_failures(path / LOCUST_FAILURES_CSV),
        missing=missing,
    )
