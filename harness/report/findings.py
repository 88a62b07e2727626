"""Probe findings as the report reads them: ``<run>/probes/<name>/finding.json`` plus its data files.

The format is the JSON Schema in ``harness.results.finding_schema``, which the probes (``harness.probes.finding``)
write against. A finding that cannot be read, or breaks the schema (another schema version included), is listed as
missing with the key at fault rather than guessed at.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pandas as pd

from ..results.finding_schema import FINDING_SCHEMA_VERSION, PlotKind, Severity, finding_errors
from ..results.layout import FINDING_JSON, PROBES_DIR


@dataclasses.dataclass(frozen=True)
class Knee:
    x: float
    y: float
    x_column: str
    y_column: str


@dataclasses.dataclass(frozen=True)
class DataSeries:
    """One data file of a finding and how the probe asks for it to be plotted."""

    file: str
    description: str
    columns: dict[str, str]
    frame: pd.DataFrame
    x: str | None
    y: tuple[str, ...]
    series: str | None  # column whose values split the data into one line each
    kind: PlotKind


@dataclasses.dataclass(frozen=True)
class Finding:
    probe: str
    title: str
    limit_name: str
    limit_value: Any
    limit_unit: str
    configured: dict[str, Any]
    method: str
    knee: Knee | None
    symptom: str
    trigger: str
    evidence: tuple[str, ...]
    paragraph: str
    severity: Severity
    recommendation: str
    data: tuple[DataSeries, ...]

    def limit_text(self) -> str:
        value = self.limit_value
        shown = f"{value:g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)
        return f"{self.limit_name} = {shown} {self.limit_unit}".strip()

    def as_dict(self) -> dict[str, Any]:
        return {
            "probe": self.probe,
            "title": self.title,
            "limit": {"name": self.limit_name, "value": self.limit_value, "unit": self.limit_unit},
            "method": self.method,
            "knee": dataclasses.asdict(self.knee) if self.knee else None,
            "severity": self.severity.value,
            "paragraph": self.paragraph,
            "recommendation": self.recommendation,
        }


def _read_data(probe_dir: Path, entry: dict[str, Any], missing: list[str], probe: str) -> DataSeries | None:
    file = str(entry.get("file", ""))
    path = (probe_dir / file).resolve()
    if not file or probe_dir.resolve() not in path.parents:
        missing.append(f"probe {probe}: data file {file!r} is outside the probe folder; not read")
        return None
    try:
        frame = pd.read_csv(path, on_bad_lines="skip") if path.suffix != ".jsonl" else pd.read_json(path, lines=True)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        missing.append(f"probe {probe}: data file {file} unreadable ({type(exc).__name__}); its curve is not shown")
        return None
    plot = entry.get("plot") or {}
    y = plot.get("y") or []
    return DataSeries(
        file=file,
        description=str(entry.get("description", "")),
        columns={str(k): str(v) for k, v in (entry.get("columns") or {}).items()},
        frame=frame,
        x=plot.get("x"),
        y=tuple(y if isinstance(y, list) else [y]),
        series=plot.get("series"),
        kind=PlotKind(plot.get("kind") or PlotKind.LINE.value),
    )


def read_finding(probe_dir: Path, missing: list[str]) -> Finding | None:
    path = probe_dir / FINDING_JSON
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except (OSError, ValueError) as exc:
        missing.append(f"{PROBES_DIR}/{probe_dir.name}/{FINDING_JSON} unreadable ({type(exc).__name__}): the probe did not finish")
        return None
    if isinstance(doc, dict) and doc.get("schema_version") != FINDING_SCHEMA_VERSION:
        missing.append(f"{PROBES_DIR}/{probe_dir.name}/{FINDING_JSON}: schema_version {doc.get('schema_version')!r} is not "
                       f"{FINDING_SCHEMA_VERSION}; not read")
        return None
    errors = finding_errors(doc)
    if errors:
        missing.append(f"{PROBES_DIR}/{probe_dir.name}/{FINDING_JSON}: {errors[0]}; not read")
        return None
    knee_doc = doc["knee"]
    knee = None if knee_doc is None else Knee(float(knee_doc["x"]), float(knee_doc["y"]), knee_doc["x_column"], knee_doc["y_column"])
    severity = Severity(doc["severity"])
    limit = doc["limit"]
    data = tuple(d for d in (_read_data(probe_dir, e, missing, doc["probe"]) for e in doc.get("data") or []) if d is not None)
    return Finding(
        probe=str(doc["probe"]),
        title=str(doc["title"]),
        limit_name=str(limit.get("name", "limit")),
        limit_value=limit.get("value"),
        limit_unit=str(limit.get("unit") or ""),
        configured=dict(doc.get("configured") or {}),
        method=str(doc["method"]),
        knee=knee,
        symptom=str(doc.get("symptom") or ""),
        trigger=str(doc.get("trigger") or ""),
        evidence=tuple(str(e) for e in doc.get("evidence") or []),
        paragraph=str(doc["paragraph"]),
        severity=severity,
        recommendation=str(doc.get("recommendation") or ""),
        data=data,
    )


def read_findings(run_path: Path, missing: list[str]) -> list[Finding]:
    probes = Path(run_path) / PROBES_DIR
    if not probes.is_dir():
        return []
    findings = []
    for probe_dir in sorted(p for p in probes.iterdir() if p.is_dir()):
        finding = read_finding(probe_dir, missing)
        if finding is not None:
            findings.append(finding)
    return findings
