"""JUnit XML from summary.json: one <testcase> per SLO, states mapped, valid junit-10.xsd structure."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from harness.errors import EXIT_CODE_MEANINGS, ExitCode
from harness.results.junit import junit_xml, write_junit
from harness.results.run_folder import RunStatus, build_summary
from harness.results.slo import evaluate, parse_threshold

# The element/attribute rules of the common Jenkins/xunit junit-10.xsd that CI parsers rely on.
SUITE_REQUIRED = {"name", "tests"}
SUITE_ALLOWED = {"name", "tests", "failures", "errors", "skipped", "disabled", "time", "timestamp", "hostname", "id", "package"}
SUITE_CHILD_ORDER = ["properties", "testcase", "system-out", "system-err"]
CASE_ALLOWED = {"name", "classname", "time", "assertions", "status"}
CASE_CHILD_ORDER = ["skipped", "error", "failure", "system-out", "system-err"]
INTEGER_ATTRS = {"tests", "failures", "errors", "skipped", "disabled"}


def _check_order(children: list[ET.Element], order: list[str]) -> None:
    positions = [order.index(child.tag) for child in children]  # ValueError = element not allowed here
    assert positions == sorted(positions), [c.tag for c in children]


def assert_junit10_structure(root: ET.Element) -> None:
    assert root.tag == "testsuites"
    for suite in root:
        assert suite.tag == "testsuite"
        assert SUITE_REQUIRED <= set(suite.attrib) <= SUITE_ALLOWED
        for attr in INTEGER_ATTRS & set(suite.attrib):
            assert int(suite.attrib[attr]) >= 0
        float(suite.attrib["time"])
        assert len(suite.attrib["timestamp"]) == 19 and suite.attrib["timestamp"][10] == "T"  # xs:dateTime, no zone
        _check_order(list(suite), SUITE_CHILD_ORDER)
        for prop in suite.iter("property"):
            assert set(prop.attrib) == {"name", "value"}
        for case in suite.iter("testcase"):
            assert {"name"} <= set(case.attrib) <= CASE_ALLOWED
            _check_order(list(case), CASE_CHILD_ORDER)
            assert len(case.findall("skipped")) <= 1
            for outcome in case:
                if outcome.tag in ("failure", "error", "skipped"):
                    assert set(outcome.attrib) <= {"message", "type"}


def _summary(harness_error: str | None = None) -> dict:
    thresholds = [
        parse_threshold("mouth_to_ear_latency_ms", "p95 < 400", file="scenarios/smoke.yaml", line=40),
        parse_threshold("handover_gap_ms", "max < 1000", file="scenarios/smoke.yaml", line=42),
        parse_threshold("caption_delay_ms", "p95 < 8000", file="scenarios/smoke.yaml", line=44),
        parse_threshold("audio_gap_ms", "max < 500", required=False, file="scenarios/smoke.yaml", line=45),
    ]
    results = evaluate(thresholds, {"mouth_to_ear_latency_ms": [100, 120, 130], "handover_gap_ms": [300, 1500]})
    return build_summary(
        run_id="r1", scenario_name="smoke", results=results, started_at="2026-11-26T11:41:49.123Z",
        ended_at="2026-11-26T11:42:49.123Z", duration_s=60.0, status=RunStatus.FINISHED, harness_error=harness_error,
    )


def test_one_testcase_per_slo_with_the_right_states(tmp_path):
    path = write_junit(_summary(), tmp_path / "junit.xml", hostname="ci-runner")
    root = ET.parse(path).getroot()
    assert_junit10_structure(root)
    suite = root.find("testsuite")
    assert suite.attrib["name"] == "voxload.smoke" and suite.attrib["hostname"] == "ci-runner"
    assert (suite.attrib["tests"], suite.attrib["failures"], suite.attrib["errors"], suite.attrib["skipped"]) == ("4", "1", "1", "1")
    assert root.attrib["tests"] == "4" and suite.attrib["timestamp"] == "2026-11-26T11:41:49"
    cases = {c.attrib["name"]: c for c in suite.findall("testcase")}
    assert list(cases) == ["mouth_to_ear_latency_ms: p95 < 400", "handover_gap_ms: max < 1000",
                           "caption_delay_ms: p95 < 8000", "audio_gap_ms: max < 500"]
    passed, failed, no_data, optional = cases.values()
    assert [c.tag for c in passed] == ["system-out"]
    assert "scenarios/smoke.yaml:40:" in passed.find("system-out").text
    failure = failed.find("failure")
    assert failure.attrib["type"] == "SloBreached"
    assert failure.attrib["message"] == "observed max = 1500 ms, threshold max < 1000"
    assert no_data.find("error").attrib["type"] == "NoData" and no_data.find("failure") is None
    assert optional.find("skipped") is not None and optional.find("error") is None
    props = {p.attrib["name"]: p.attrib["value"] for p in suite.iter("property")}
    assert props == {"run_id": "r1", "scenario": "smoke", "verdict": "invalid", "exit_code": "3", "status": "finished",
                     "exit_code_meaning": EXIT_CODE_MEANINGS[ExitCode.INVALID_RUN]}


def test_harness_error_becomes_an_extra_error_case():
    root = ET.fromstring(junit_xml(_summary(harness_error="target unreachable: http://127.0.0.1:1/"), hostname="h"))
    assert_junit10_structure(root)
    suite = root.find("testsuite")
    assert (suite.attrib["tests"], suite.attrib["errors"]) == ("5", "2")
    harness_case = suite.findall("testcase")[-1]
    assert harness_case.attrib["name"] == "harness"
    assert harness_case.find("error").attrib["message"] == "target unreachable: http://127.0.0.1:1/"


def test_all_pass_has_no_outcome_elements():
    results = evaluate([parse_threshold("jitter_ms", "p95 < 30")], {"jitter_ms": [1, 2, 3]})
    summary = build_summary(run_id="r2", scenario_name="s", results=results, started_at="2026-01-01T00:00:00.000Z",
                            ended_at="2026-01-01T00:00:10.000Z", duration_s=10.0, status=RunStatus.FINISHED)
    root = ET.fromstring(junit_xml(summary, hostname="h"))
    assert_junit10_structure(root)
    assert root.find("testsuite").attrib["failures"] == "0" and root.find("testsuite").attrib["errors"] == "0"
    assert [el.tag for el in root.iter() if el.tag in ("failure", "error", "skipped")] == []


def test_invalid_run_and_insufficient_data_are_errors_that_state_why():
    thresholds = [parse_threshold("jitter_ms", "p95 < 60"), parse_threshold("http_error_rate", "rate < 0.1")]
    results = evaluate(thresholds, {"jitter_ms": [3, 4], "http_error_rate": [0, 0]}, {"jitter_ms": 0.3})
    death = "media engine e0 died at +25 s (exit code -9); audio measured for 18 of 60 s"
    summary = build_summary(run_id="r2", scenario_name="smoke", results=results, started_at="2026-11-26T11:41:49.123Z",
                            ended_at="x", duration_s=60.0, status=RunStatus.FINISHED,
                            events=[{"t": 1.0, "kind": "engine_died", "text": death}], invalid_reasons=[death])
    root = ET.fromstring(junit_xml(summary, hostname="h"))
    assert_junit10_structure(root)
    suite = root.find("testsuite")
    cases = {c.attrib["name"]: c for c in suite.findall("testcase")}
    thin = cases["jitter_ms: p95 < 60"].find("error")
    assert thin.attrib["type"] == "InsufficientData" and "30 %" in thin.attrib["message"] and "90 %" in thin.attrib["message"]
    validity = cases["run validity"].find("error")
    assert validity.attrib["type"] == "InvalidRun"
    assert validity.attrib["message"] == f"exit 3: {EXIT_CODE_MEANINGS[ExitCode.INVALID_RUN]}"
    assert death in validity.text
    assert (suite.attrib["tests"], suite.attrib["errors"], suite.attrib["failures"]) == ("3", "2", "0")
