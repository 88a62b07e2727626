"""JUnit XML from summary.json: one <testcase> per SLO threshold, for CI systems.

Shape (the common Jenkins/xunit ``junit-10.xsd`` dialect, which GitLab, GitHub actions and Jenkins read)::

    <testsuites name="voxload" tests= failures= errors= time=>
      <testsuite name="voxload.<scenario>" tests= failures= errors= skipped= time= timestamp= hostname=>
        <properties> run_id, scenario, verdict, exit_code, target </properties>
        <testcase classname="voxload.slo.<scenario>" name="<metric>: <threshold>" time="0">
          pass    -> no child element
          fail    -> <failure type="SloBreached" message="observed p95 = 512 ms, threshold p95 < 400">
          no_data -> required:     <error type="NoData" ...>   (the run exits 3: not valid evidence)
                     not required: <skipped message="...">     (reported, does not change the exit code)
          insufficient_data -> as no_data, type "InsufficientData" (samples cover too little of the steady state)
          <system-out> "FILE:LINE: metric: threshold -> observed (N samples)" </system-out>
        </testcase>
        a harness error, and each reason the run is not valid evidence (engine death, lost worker, saturated
        generator, run stopped early, Ctrl-C), becomes one more <testcase name="run validity"> with an <error>
        whose message states the exit code's meaning (harness.errors.EXIT_CODE_MEANINGS)
      </testsuite>
    </testsuites>

The input is the summary dict (``harness.results.run_folder.load_summary``), so JUnit can be regenerated from any
finished run directory without re-reading samples.
"""

from __future__ import annotations

import socket
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import ExitCode
from .slo import COVERAGE_REQUIRED, METRICS, SloState

FAILURE_TYPE = "SloBreached"
NO_DATA_TYPE = "NoData"
INSUFFICIENT_TYPE = "InsufficientData"
HARNESS_ERROR_TYPE = "HarnessError"
INVALID_RUN_TYPE = "InvalidRun"
INTERRUPTED_TYPE = "Interrupted"
_UNJUDGED = (SloState.NO_DATA.value, SloState.INSUFFICIENT.value)


def _observed_text(row: Mapping[str, Any]) -> str:
    if row["observed"] is None:
        return "no samples"
    unit = METRICS[row["metric"]].unit if row["metric"] in METRICS else row.get("unit", "")
    suffix = "" if unit in ("ratio", "count", "") else f" {unit}"
    return f"{row['aggregation']} = {row['observed']:.6g}{suffix}"


def _where(row: Mapping[str, Any]) -> str:
    return f"{row['file']}:{row['line']}: " if row.get("file") and row.get("line") else ""


def _testcase(suite: ET.Element, classname: str, row: Mapping[str, Any]) -> None:
    case = ET.SubElement(suite, "testcase", name=f"{row['metric']}: {row['source']}", classname=classname, time="0")
    state = SloState(row["state"])
    observed = _observed_text(row)
    if state is SloState.FAIL:
        failure = ET.SubElement(case, "failure", type=FAILURE_TYPE, message=f"observed {observed}, threshold {row['source']}")
        failure.text = f"{row['metric']}: {observed} does not satisfy {row['source']} ({row['sample_count']} samples)"
    elif state in (SloState.NO_DATA, SloState.INSUFFICIENT):
        if state is SloState.NO_DATA:
            message = f"no samples for {row['metric']}: the threshold {row['source']} could not be judged"
        else:
            message = (f"insufficient data for {row['metric']}: samples cover {100 * (row.get('coverage') or 0):.0f} % of the "
                       f"steady state (at least {100 * COVERAGE_REQUIRED:.0f} % needed), so {row['source']} could not be judged")
        if row["required"]:
            kind = NO_DATA_TYPE if state is SloState.NO_DATA else INSUFFICIENT_TYPE
            ET.SubElement(case, "error", type=kind, message=message).text = message
        else:
            ET.SubElement(case, "skipped", message=message + " (not required)")
    out = ET.SubElement(case, "system-out")
    out.text = f"{_where(row)}{row['metric']}: {row['source']} -> {observed} ({row['sample_count']} samples): {state.value}"


def junit_element(summary: Mapping[str, Any], hostname: str | None = None) -> ET.Element:
    scenario = summary["scenario"]
    rows = summary["slos"]
    failures = sum(1 for r in rows if r["state"] == SloState.FAIL.value)
    errors = sum(1 for r in rows if r["state"] in _UNJUDGED and r["required"])
    skipped = sum(1 for r in rows if r["state"] in _UNJUDGED and not r["required"])
    harness_error = summary.get("harness_error")
    validity = _validity_problems(summary)
    tests = len(rows) + (1 if harness_error else 0) + (1 if validity else 0)
    errors += (1 if harness_error else 0) + (1 if validity else 0)
    duration = f"{float(summary['timing']['duration_s']):.3f}"

    root = ET.Element("testsuites", name="voxload", tests=str(tests), failures=str(failures), errors=str(errors), time=duration)
    suite = ET.SubElement(
        root,
        "testsuite",
        name=f"voxload.{scenario}",
        tests=str(tests),
        failures=str(failures),
        errors=str(errors),
        skipped=str(skipped),
        time=duration,
        timestamp=str(summary["timing"]["started_at"]).removesuffix("Z")[:19],  # xs:dateTime without zone, as the XSD wants
        hostname=hostname if hostname is not None else socket.gethostname(),
    )
    properties = ET.SubElement(suite, "properties")
    for name in ("run_id", "scenario", "verdict", "exit_code", "exit_code_meaning", "status"):
        if name in summary:
            ET.SubElement(properties, "property", name=name, value=str(summary[name]))
    classname = f"voxload.slo.{scenario}"
    for row in rows:
        _testcase(suite, classname, row)
    if harness_error:
        case = ET.SubElement(suite, "testcase", name="harness", classname=f"voxload.run.{scenario}", time="0")
        ET.SubElement(case, "error", type=HARNESS_ERROR_TYPE, message=harness_error).text = harness_error
    if validity:
        code = int(summary.get("exit_code", ExitCode.INVALID_RUN))
        kind = INTERRUPTED_TYPE if code == ExitCode.INTERRUPTED else INVALID_RUN_TYPE
        case = ET.SubElement(suite, "testcase", name="run validity", classname=f"voxload.run.{scenario}", time="0")
        meaning = summary.get("exit_code_meaning") or ""
        ET.SubElement(case, "error", type=kind, message=f"exit {code}: {meaning}").text = "\n".join(validity)
    return root


def _validity_problems(summary: Mapping[str, Any]) -> list[str]:
    """Why the run is not valid evidence (exit 3) or was interrupted (130), one line each; [] for a valid run."""
    code = summary.get("exit_code")
    if code not in (ExitCode.INVALID_RUN, ExitCode.INTERRUPTED):
        return []
    lines = list(summary.get("invalid_reasons") or [])
    if code == ExitCode.INTERRUPTED and not lines:
        lines.append("interrupted by Ctrl-C: the results are partial")
    return lines


def junit_xml(summary: Mapping[str, Any], hostname: str | None = None) -> bytes:
    root = junit_element(summary, hostname)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def write_junit(summary: Mapping[str, Any], path: Path, hostname: str | None = None) -> Path:
    data = junit_xml(summary, hostname)
    tmp = Path(path).with_name(f".{Path(path).name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return Path(path)
