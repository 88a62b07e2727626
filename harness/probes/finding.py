"""What a probe leaves behind: ``<run>/probes/<name>/finding.json`` and its CSV data files.

Owns the :class:`Finding` record (its JSON Schema is ``harness.results.finding_schema``, which the report reads
with too), its validation before it is written (the schema, and the data files on disk), and :class:`CsvStream`, the CSV writer that probes stream measurements
into as they happen (flushed at least every second, so a killed probe leaves its data up to then).
"""

from __future__ import annotations

import csv
import dataclasses
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import VoxloadError
from ..results.finding_schema import FINDING_SCHEMA_VERSION, PlotKind, Severity, finding_errors
from ..results.layout import FINDING_JSON
from ..results.run_folder import write_json_atomic

FLUSH_INTERVAL_S = 1.0


class FindingError(VoxloadError, ValueError):
    """A finding that does not match the documented format (a bug in the probe that built it)."""


__all__ = ["FINDING_SCHEMA_VERSION", "CsvStream", "DataFile", "Finding", "FindingError", "KneePoint", "Limit", "Plot",
           "PlotKind", "Severity"]


@dataclasses.dataclass(frozen=True)
class Limit:
    name: str
    value: float | None
    unit: str


@dataclasses.dataclass(frozen=True)
class KneePoint:
    x: float
    y: float
    x_column: str
    y_column: str


@dataclasses.dataclass(frozen=True)
class Plot:
    x: str
    y: tuple[str, ...]
    series: str | None = None
    kind: PlotKind = PlotKind.LINE


@dataclasses.dataclass(frozen=True)
class DataFile:
    file: str
    description: str
    columns: Mapping[str, str]  # column -> meaning with unit
    plot: Plot | None = None


@dataclasses.dataclass(frozen=True)
class Finding:
    probe: str
    title: str
    limit: Limit
    configured: Mapping[str, Any]
    method: str
    knee: KneePoint | None
    symptom: str
    trigger: str
    evidence: Sequence[str]
    paragraph: str
    severity: Severity
    recommendation: str
    data: Sequence[DataFile]

    def as_dict(self) -> dict[str, Any]:
        def plot(p: Plot | None) -> dict[str, Any] | None:
            return None if p is None else {"x": p.x, "y": list(p.y), "series": p.series, "kind": p.kind.value}

        return {
            "schema_version": FINDING_SCHEMA_VERSION,
            "probe": self.probe,
            "title": self.title,
            "limit": dataclasses.asdict(self.limit),
            "configured": dict(self.configured),
            "method": self.method,
            "knee": dataclasses.asdict(self.knee) if self.knee is not None else None,
            "symptom": self.symptom,
            "trigger": self.trigger,
            "evidence": list(self.evidence),
            "paragraph": self.paragraph,
            "severity": self.severity.value,
            "recommendation": self.recommendation,
            "data": [
                {"file": d.file, "description": d.description, "columns": dict(d.columns), "plot": plot(d.plot)} for d in self.data
            ],
        }

    def validate(self, probe_dir: Path) -> None:
        """The schema holds; every data file exists and holds the columns it documents; plots name documented columns."""
        errors = finding_errors(self.as_dict())
        if errors:
            raise FindingError(f"finding of {self.probe}: {errors[0]}")
        for field in ("title", "method", "symptom", "trigger", "paragraph", "recommendation"):
            if not str(getattr(self, field)).strip():
                raise FindingError(f"finding of {self.probe}: {field} is empty")
        if not self.data:
            raise FindingError(f"finding of {self.probe}: no data file")
        for d in self.data:
            path = probe_dir / d.file
            if not path.is_file():
                raise FindingError(f"finding of {self.probe}: data file {d.file} was not written")
            with open(path, newline="", encoding="utf-8") as fh:
                header = next(csv.reader(fh), [])
            missing = [c for c in d.columns if c not in header]
            if missing:
                raise FindingError(f"finding of {self.probe}: {d.file} lacks documented columns {missing}")
            if d.plot is not None:
                named = [d.plot.x, *d.plot.y] + ([d.plot.series] if d.plot.series else [])
                unknown = [c for c in named if c not in d.columns]
                if unknown:
                    raise FindingError(f"finding of {self.probe}: plot of {d.file} names undocumented columns {unknown}")
        if self.knee is not None:
            documented = {c for d in self.data for c in d.columns}
            if self.knee.x_column not in documented or self.knee.y_column not in documented:
                raise FindingError(f"finding of {self.probe}: knee columns are not documented data columns")

    def write(self, probe_dir: Path) -> Path:
        self.validate(probe_dir)
        path = probe_dir / FINDING_JSON
        write_json_atomic(path, self.as_dict())
        return path


class CsvStream:
    """One CSV data file, written row by row as measured; flushed at least every second.

    Thread-safe (probes measure from several threads). Values are written as given; ``None`` becomes an
    empty cell. The header is the column list given at creation, which the finding documents.
    """

    def __init__(self, path: Path, columns: Sequence[str], *, clock_s: Callable[[], float] = time.monotonic,
                 flush_interval_s: float = FLUSH_INTERVAL_S) -> None:
        self.path = Path(path)
        self.columns = tuple(columns)
        self._fh = open(self.path, "w", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(self._fh, fieldnames=self.columns, extrasaction="raise")
        self._writer.writeheader()
        self._fh.flush()
        self._lock = threading.Lock()
        self._clock_s = clock_s
        self._flush_interval_s = flush_interval_s
        self._last_flush_s = clock_s()
        self._rows: list[dict[str, Any]] = []
        self._closed = False
        self._stop = threading.Event()
        self._flusher = threading.Thread(target=self._flush_loop, name=f"csv-flush-{self.path.stem}", daemon=True)
        self._flusher.start()

    def write(self, **row: Any) -> None:
        unknown = set(row) - set(self.columns)
        if unknown:
            raise FindingError(f"{self.path.name}: undocumented columns {sorted(unknown)}")
        clean = {k: ("" if v is None else (round(v, 3) if isinstance(v, float) else v)) for k, v in row.items()}
        with self._lock:
            if self._closed:
                raise FindingError(f"{self.path.name} is closed")
            self._writer.writerow(clean)
            self._rows.append(dict(row))
            if self._clock_s() - self._last_flush_s >= self._flush_interval_s:
                self._flush_locked()

    def rows(self) -> list[dict[str, Any]]:
        """The rows written so far, with their original (unrounded) values."""
        with self._lock:
            return [dict(r) for r in self._rows]

    def _flush_locked(self) -> None:
        self._fh.flush()
        self._last_flush_s = self._clock_s()

    def _flush_loop(self) -> None:
        while not self._stop.wait(self._flush_interval_s):
            with self._lock:
                if self._closed:
                    return
                self._flush_locked()

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            if self._closed:
                return
            self._fh.flush()
            self._fh.close()
            self._closed = True
        if self._flusher is not threading.current_thread():
            self._flusher.join(timeout=self._flush_interval_s + 1.0)
