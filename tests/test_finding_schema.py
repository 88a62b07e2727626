"""One finding format (harness.results.finding_schema): what a probe writes is exactly what the report reads.

A finding is built and written through the probes' own writer (Finding, CsvStream), read back by the report's
reader, and broken one key at a time: the writer refuses it, the reader lists it as missing naming the key.
"""

from __future__ import annotations

import json

import pytest

from harness.probes.finding import CsvStream, DataFile, Finding, FindingError, KneePoint, Limit, Plot, PlotKind, Severity
from harness.report.findings import read_finding, read_findings
from harness.results.finding_schema import FINDING_SCHEMA, FINDING_SCHEMA_VERSION, finding_errors
from harness.results.layout import FINDING_JSON


def _finding(**overrides) -> Finding:
    fields = dict(
        probe="fanout", title="Fan-out knee", limit=Limit("listeners per booth", 40.0, "listeners"),
        configured={"REFSTACK_X": 1}, method="kneedle on p95 vs listeners",
        knee=KneePoint(40.0, 95.0, "listeners", "p95_ms"), symptom="late audio", trigger="WHEP at rising listeners",
        evidence=["40: p95 95 ms"], paragraph="It bends at 40.", severity=Severity.WARNING,
        recommendation="Cap booths at 40 listeners.",
        data=[DataFile("curve.csv", "p95 per step", {"listeners": "count", "p95_ms": "ms"}, Plot("listeners", ("p95_ms",), kind=PlotKind.SCATTER)),
              DataFile("curve.csv", "as bars", {"listeners": "count", "p95_ms": "ms"}, Plot("listeners", ("p95_ms",), kind=PlotKind.BAR))],
    )
    return Finding(**{**fields, **overrides})


def _write_curve(probe_dir):
    probe_dir.mkdir(parents=True, exist_ok=True)
    stream = CsvStream(probe_dir / "curve.csv", ("listeners", "p95_ms"))
    for listeners, p95 in ((10, 90.0), (20, 92.0), (40, 95.0), (80, 140.0)):
        stream.write(listeners=listeners, p95_ms=p95)
    stream.close()


def test_what_the_writer_writes_the_reader_reads_with_every_plot_kind(tmp_path):
    probe_dir = tmp_path / "probes" / "fanout"
    _write_curve(probe_dir)
    _finding().write(probe_dir)
    doc = json.loads((probe_dir / FINDING_JSON).read_text())
    assert doc["schema_version"] == FINDING_SCHEMA_VERSION and finding_errors(doc) == []
    missing: list[str] = []
    [read] = read_findings(tmp_path, missing)
    assert missing == []
    assert [d.kind for d in read.data] == [PlotKind.SCATTER, PlotKind.BAR]
    assert read.severity is Severity.WARNING and read.knee.x == 40.0 and read.limit_text() == "listeners per booth = 40 listeners"
    assert list(read.data[0].frame["p95_ms"]) == [90.0, 92.0, 95.0, 140.0]
    # The schema's plot kinds are exactly the probes' (the report once also drew a "step" no probe wrote).
    kinds = FINDING_SCHEMA["properties"]["data"]["items"]["properties"]["plot"]["oneOf"][1]["properties"]["kind"]["enum"]
    assert kinds == [k.value for k in PlotKind]


@pytest.mark.parametrize("broken, key", [
    (dict(title="  "), "title"),
    (dict(limit=Limit("", 3.0, "x")), "limit.name"),
    (dict(probe="Fan Out"), "probe"),
    (dict(data=[]), "data"),
])
def test_the_writer_refuses_a_finding_that_breaks_the_schema(tmp_path, broken, key):
    _write_curve(tmp_path)
    with pytest.raises(FindingError, match=rf"^finding of .*: {key}: "):
        _finding(**broken).write(tmp_path)
    assert not (tmp_path / FINDING_JSON).exists()


@pytest.mark.parametrize("edit, key", [
    (lambda d: d["data"][0]["plot"].update(kind="step"), "data[0].plot.kind"),
    (lambda d: d.pop("symptom"), "(top level)"),
    (lambda d: d.update(severity="fatal"), "severity"),
    (lambda d: d["knee"].pop("y"), "knee"),
    (lambda d: d["data"][1].update(file="../../run.json"), "data[1].file"),
    (lambda d: d["limit"].update(value="forty"), "limit.value"),
])
def test_the_reader_lists_a_broken_finding_as_missing_naming_the_key(tmp_path, edit, key):
    probe_dir = tmp_path / "probes" / "fanout"
    _write_curve(probe_dir)
    _finding().write(probe_dir)
    doc = json.loads((probe_dir / FINDING_JSON).read_text())
    edit(doc)
    (probe_dir / FINDING_JSON).write_text(json.dumps(doc))
    missing: list[str] = []
    assert read_finding(probe_dir, missing) is None
    [line] = missing
    assert line.startswith(f"probes/fanout/{FINDING_JSON}: {key}: ") and line.endswith("; not read"), line


def test_another_schema_version_is_named_as_such(tmp_path):
    probe_dir = tmp_path / "probes" / "fanout"
    _write_curve(probe_dir)
    _finding().write(probe_dir)
    doc = json.loads((probe_dir / FINDING_JSON).read_text())
    (probe_dir / FINDING_JSON).write_text(json.dumps({**doc, "schema_version": FINDING_SCHEMA_VERSION + 1}))
    missing: list[str] = []
    assert read_finding(probe_dir, missing) is None
    assert missing == [f"probes/fanout/{FINDING_JSON}: schema_version 2 is not 1; not read"]
