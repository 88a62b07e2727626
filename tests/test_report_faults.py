"""Outages derived from the request samples on disk (harness.report.faults), in a folder written as a run writes it."""

from __future__ import annotations

import json

from harness.report import build_report
from harness.report.faults import OUTAGE_MIN_FAILED
from harness.results.run_folder import RunDirectory

T0 = 1_800_000_000.0


def _run_with_requests(tmp_path, outcomes):
    """`outcomes`: (offset s, failed?, request name, error) as harness.rehearsal.plugin writes them."""
    run = RunDirectory.create(root=tmp_path, run_id="r", now=T0)
    with run.sample_writer("locust") as writer:
        for offset_s, failed, name, error in outcomes:
            tags = {"name": name, "method": "GET"}
            if failed:
                tags["error"] = error
            writer.write("http_error_rate", 1.0 if failed else 0.0, t=T0 + offset_s, **tags)
            writer.write("http_req_duration_ms", 5.0, t=T0 + offset_s, name=name)
    return run.path


def test_outage_is_stated_from_when_to_when_with_what_failed(tmp_path):
    ok = [(s + 0.1, False, "/admin/", None) for s in range(0, 20)]
    down = [(20 + i * 0.5, True, "/listener/[slug]/rooms/[id]/audio-delay" if i % 3 else "/admin/", "TargetUnreachable")
            for i in range(16)]  # +20 s .. +27.5 s
    back = [(s + 0.2, False, "/admin/", None) for s in range(29, 35)]
    path = _run_with_requests(tmp_path, ok + down + back)
    verdict = json.loads(build_report(path).verdict_json.read_text())
    (outage,) = verdict["outages"]
    assert (outage["start_s"], outage["end_s"], outage["recovered_s"], outage["failed"]) == (20.0, 27.5, 29.2, 16)
    assert outage["requests"][0] == ["GET /listener/[slug]/rooms/[id]/audio-delay", 10]
    assert outage["errors"] == [["TargetUnreachable", 16]]
    md = (path / "summary.md").read_text()
    assert ("The target stopped answering at +20 s and answered again at +29 s: all 16 HTTP requests in that time failed, "
            "among them GET /listener/[slug]/rooms/[id]/audio-delay (10), GET /admin/ (6); errors: TargetUnreachable (16).") in md
    assert outage["text"] in (path / "report.html").read_text()


def test_scattered_failures_are_errors_not_an_outage(tmp_path):
    # A failure every few seconds among successes, and a short burst below the minimum, are no outage.
    mixed = [(s + 0.1, s % 4 == 0, "/admin/", "UnexpectedStatus: 500") for s in range(0, 30)]
    mixed += [(s + 0.6, False, "/admin/", None) for s in range(0, 30)]
    burst = [(40 + i * 0.2, True, "/admin/", "TargetUnreachable") for i in range(OUTAGE_MIN_FAILED - 1)]
    path = _run_with_requests(tmp_path, mixed + burst)
    verdict = json.loads(build_report(path).verdict_json.read_text())
    assert verdict["outages"] == []
