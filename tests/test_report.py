"""The sign-off report built from real runs: the shared smoke rehearsal, a real db-pool probe, and copies of
the smoke run with repeatable faults (a crash that left no summary and cut-off files, a saturated generator,
a slower media path for the comparison). Content is checked against the run's own files, not just existence.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from harness.report import build_report
from harness.results.finding_schema import FINDING_SCHEMA_VERSION

REPO = Path(__file__).resolve().parents[1]
REHEARSAL_PLOTS = {"load", "mouth_to_ear", "first_audio", "handovers", "captions", "generator"}


def voxload(*args: str, timeout_s: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True, timeout=timeout_s, cwd=REPO)


def copy_run(run_dir: Path, dest: Path) -> Path:
    """A private copy of the shared smoke run to damage (the stack's database and logs are not needed)."""
    shutil.copytree(run_dir, dest, ignore=shutil.ignore_patterns("stack", "report.*", "verdict.json", "summary.md"))
    return dest


def slo_row_html(page: str, metric: str) -> str:
    match = re.search(rf'<tr class="slo-row" data-metric="{metric}" data-state="[a-z_]+">(.*?)</tr>', page, re.S)
    assert match, f"no verdict row for {metric}"
    return match.group(1)


@pytest.fixture(scope="module")
def smoke_report(smoke_run):
    done, run_dir = smoke_run
    assert (run_dir / "summary.json").exists(), done.stderr[-3000:]
    paths = build_report(run_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    return run_dir, paths, summary, json.loads(paths.verdict_json.read_text())


def test_verdict_rows_are_the_runs_slo_rows_with_measured_values(smoke_report):
    _, paths, summary, verdict = smoke_report
    assert (verdict["verdict"], verdict["exit_code"], verdict["provisional"]) == (summary["verdict"], summary["exit_code"], False)
    assert [(r["metric"], r["source"], r["state"], r["observed"], r["sample_count"]) for r in verdict["slos"]] == \
        [(r["metric"], r["source"], r["state"], r["observed"], r["sample_count"]) for r in summary["slos"]]
    page = paths.html.read_text()
    for row in verdict["slos"]:
        cells = slo_row_html(page, row["metric"])
        assert row["measured"] in cells and html.escape(row["threshold"]) in cells
        assert {"pass": "pass", "fail": "FAIL", "no_data": "no data", "insufficient_data": "insufficient data"}[row["state"]] in cells
    m2e = next(r for r in verdict["slos"] if r["metric"] == "mouth_to_ear_latency_ms")
    observed = m2e["observed"]
    assert m2e["measured"] == (f"{observed:,.0f} ms" if observed >= 100 else f"{observed:.1f} ms" if observed >= 10 else f"{observed:.3g} ms")
    markdown = paths.summary_md.read_text()
    assert f"exit {summary['exit_code']}" in markdown and "| mouth_to_ear_latency_ms |" in markdown


def test_capacity_statements_state_the_measured_numbers(smoke_report):
    run_dir, _, summary, verdict = smoke_report
    statements = {s["topic"]: s["text"] for s in verdict["capacity"]}
    m2e = next(r for r in summary["slos"] if r["metric"] == "mouth_to_ear_latency_ms")
    # The smoke scenario: one room, two booths, six listeners each; p95 mouth-to-ear is the SLO's own value.
    assert statements["audience"].startswith("Carried 2 booths in 1 room x up to 6 listeners")
    assert f"{summary['counts']['listener_sessions']} listener sessions" in statements["audience"]
    assert f"at p95 mouth-to-ear {m2e['observed']:,.0f} ms" in statements["audience"]
    assert verdict["key_numbers"]["mouth_to_ear_p95_ms"] == pytest.approx(m2e["observed"])
    counts = summary["counts"]
    assert statements["handovers"].startswith(f"{counts['handovers_ok']} of {counts['handovers']} handovers completed")
    gap = next(r for r in summary["slos"] if r["metric"] == "handover_gap_ms")
    if gap["observed"] is not None:  # the worst gap the report finds per handover is the one the SLO judged
        assert verdict["key_numbers"]["handover_gap_max_ms"] == pytest.approx(gap["observed"])
        assert f"{gap['observed']:,.0f} ms" in statements["handovers"]
    caption = next(r for r in summary["slos"] if r["metric"] == "caption_delay_ms")
    if caption["observed"] is not None:
        assert f"arrived p95 {caption['observed'] / 1000:.1f} s after the audio" in statements["captions"]
        assert verdict["key_numbers"]["caption_delay_p95_ms"] == pytest.approx(caption["observed"])
    # One row per transcribed booth, naming what captioned it: the smoke's English booth has a real recogniser.
    booth_row = statements["captions:Main Hall/en"]
    assert booth_row.startswith("Booth Main Hall/en, captioned by a speech recogniser: final p50 ")
    wer = next(r for r in summary["slos"] if r["metric"] == "caption_word_error_rate")
    assert wer["observed"] is not None and f"word error rate {100 * wer['observed']:.0f} %" in booth_row
    assert "HTTP requests" in statements["portal"] and "generator" in statements


def test_html_embeds_every_plot_and_references_no_network(smoke_report):
    _, paths, _, verdict = smoke_report
    page = paths.html.read_text()
    figures = set(re.findall(r'<figure id="plot-([a-z_]+)">\s*<img alt="[^"]*" src="data:image/png;base64,[A-Za-z0-9+/=]{500,}"', page))
    assert figures == REHEARSAL_PLOTS
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert not [m for m in verdict["missing"] if m.startswith("no ") and "plot" in m]
    pdf = paths.pdf.read_bytes()
    assert pdf.startswith(b"%PDF") and len(re.findall(rb"/Type\s*/Page\b", pdf)) >= 1 + len(REHEARSAL_PLOTS)


def test_crashed_run_reports_what_is_missing_with_provisional_rows(smoke_run, tmp_path):
    _, run_dir = smoke_run
    run = copy_run(run_dir, tmp_path / "crashed")
    summary = json.loads((run / "summary.json").read_text())
    (run / "summary.json").unlink()
    meta = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**meta, "status": "running", "exit_code": None, "ended_at": None}))
    for path in (run / "media" / "media-e0-listeners.csv", run / "samples" / "locust.jsonl"):
        path.write_bytes(path.read_bytes()[:-9])  # kill -9 mid-line
    verdict = json.loads(build_report(run).verdict_json.read_text())
    assert (verdict["verdict"], verdict["exit_code"], verdict["provisional"]) == ("invalid", 3, True)
    assert "did not finish (status running)" in verdict["reason"]
    missing = " | ".join(verdict["missing"])
    assert "summary.json is missing" in missing
    assert "media-e0-listeners.csv ends mid-line" in missing
    assert "locust.jsonl: 1 unreadable line(s) skipped" in missing
    # Rows are recomputed from what reached the disk, by the run's own metric code.
    assert [r["metric"] for r in verdict["slos"]] == [r["metric"] for r in summary["slos"]]
    old = next(r for r in summary["slos"] if r["metric"] == "mouth_to_ear_latency_ms")
    new = next(r for r in verdict["slos"] if r["metric"] == "mouth_to_ear_latency_ms")
    assert new["observed"] is not None and old["sample_count"] - 1 <= new["sample_count"] <= old["sample_count"]
    page = (run / "report.html").read_text()
    assert "Provisional: recomputed from partial data" in page and "NOT VALID EVIDENCE" in page


def test_run_folder_with_nothing_left_still_reports(tmp_path):
    run = tmp_path / "empty-run"
    (run / "samples").mkdir(parents=True)
    verdict = json.loads(build_report(run).verdict_json.read_text())
    assert (verdict["verdict"], verdict["exit_code"]) == ("invalid", 3) and verdict["slos"] == []
    assert any("run.json is missing" in m for m in verdict["missing"])
    assert any("no mouth-to-ear per booth plot" in m for m in verdict["missing"])


def test_saturated_generator_is_a_warning_with_its_period(smoke_run, tmp_path):
    _, run_dir = smoke_run
    run = copy_run(run_dir, tmp_path / "saturated")
    summary = json.loads((run / "summary.json").read_text())
    t0 = pd.Timestamp(summary["timing"]["started_at"]).timestamp()
    seconds = run / "media" / "media-e0-seconds.jsonl"
    lines = []
    for raw in seconds.read_text().splitlines():
        record = json.loads(raw)
        if 20 <= record["t_epoch_s"] - t0 < 30:  # ten engine-seconds over the tolerance, as a busy engine writes them
            record["health"].update(saturated=True, reasons=["loop lag p95 41.0 ms > 20 ms"])
        else:  # whatever a loaded machine left in the shared smoke run, the engine was healthy elsewhere here
            record["health"].update(saturated=False, reasons=[])
        lines.append(json.dumps(record, separators=(",", ":")))
    seconds.write_text("\n".join(lines) + "\n")
    # What harness.rehearsal.run would have judged from those seconds (beyond SATURATED_SECONDS_TOLERATED).
    summary["generator_health"] = {**summary["generator_health"], "saturated": True, "notes": ["media engines saturated for 10 engine-seconds"]}
    summary["exit_code"], summary["verdict"] = 3, "invalid"
    (run / "summary.json").write_text(json.dumps(summary))
    verdict = json.loads(build_report(run).verdict_json.read_text())
    health = verdict["generator_health"]
    assert health["saturated"] is True
    # (A loaded CI machine may add Locust hub periods of its own; the engine's is the one written here.)
    [period] = [p for p in health["periods"] if p["source"] == "media engine e0"]
    assert 19 <= period["start_s"] <= 21 and 28 <= period["end_s"] <= 30
    assert "loop lag p95 41.0 ms" in period["reasons"]
    page = (run / "report.html").read_text()
    warning = re.search(r'<div class="warning" id="generator-warning">(.*?)</div>', page, re.S).group(1)
    assert f"+{period['start_s']:.0f} s to +{period['end_s']:.0f} s" in warning and "measure the harness" in warning
    assert any(r["because"] == "generator health: saturated" for r in verdict["recommendations"])
    assert "Generator saturated" in (run / "summary.md").read_text()


def test_real_db_pool_probe_report_shows_knee_method_and_limit(small_db_pool_probe, tmp_path):
    done, probed = small_db_pool_probe  # a real db-pool probe, shared with test_probes_cli (conftest.py)
    assert done.returncode == 0, done.stderr[-3000:]
    run = shutil.copytree(probed, tmp_path / "pool")  # the report is written into a private copy
    finding = json.loads((run / "probes" / "db-pool" / "finding.json").read_text())
    done = voxload("report", str(run))
    assert done.returncode == 0, done.stderr
    verdict = json.loads((run / "verdict.json").read_text())
    assert verdict["verdict"] == "findings" and verdict["slos"] == [] and verdict["missing"] == []
    [seen] = verdict["findings"]
    assert seen["knee"] == finding["knee"] and seen["limit"] == finding["limit"] and seen["method"] == finding["method"]
    statement = next(s["text"] for s in verdict["capacity"] if s["topic"] == "probe:db-pool")
    assert f"{finding['limit']['name']} = {finding['limit']['value']:g} {finding['limit']['unit']}" in statement
    page = (run / "report.html").read_text()
    block = re.search(r'<div class="finding sev-[a-z]+" id="finding-db-pool">(.*?)</div>', page, re.S).group(1)
    if finding["knee"] is not None:
        assert f"knee at {finding['knee']['x_column']} = {finding['knee']['x']:g}" in statement
        assert f'<span class="knee">{finding["knee"]["x"]:g}</span>' in block
    assert html.escape(finding["method"]) in block and html.escape(finding["paragraph"]) in block
    assert re.search(r'<figure id="plot-probe_db-pool">\s*<img [^>]*src="data:image/png;base64,', page)
    assert any(r["text"] == finding["recommendation"] for r in verdict["recommendations"])


def _write_finding(probe_dir: Path, **overrides) -> None:
    probe_dir.mkdir(parents=True)
    pd.DataFrame({"listeners": [10, 20, 40, 80, 160], "p95_ms": [90, 92, 95, 140, 400], "errors": [0, 0, 0, 1, 9]}).to_csv(probe_dir / "curve.csv", index=False)
    doc = {"schema_version": FINDING_SCHEMA_VERSION, "probe": probe_dir.name, "title": "Fan-out knee", "limit": {"name": "listeners per booth", "value": 40, "unit": "listeners"},
           "configured": {"REFSTACK_X": 1}, "method": "kneedle on p95 vs listeners", "knee": {"x": 40, "y": 95, "x_column": "listeners", "y_column": "p95_ms"},
           "symptom": "late audio", "trigger": "WHEP", "evidence": ["40: p95 95 ms"], "paragraph": "It bends at 40.", "severity": "warning",
           "recommendation": "Cap booths at 40 listeners.",
           "data": [{"file": "curve.csv", "description": "p95 per step", "columns": {"listeners": "count", "p95_ms": "ms"},
                     "plot": {"x": "listeners", "y": ["p95_ms"], "series": None, "kind": "line"}},
                    {"file": "curve.csv", "description": "errors", "columns": {"errors": "count"}, "plot": None}]}
    (probe_dir / "finding.json").write_text(json.dumps({**doc, **overrides}))


def test_findings_in_the_documented_format_and_an_unreadable_one(tmp_path):
    run = tmp_path / "probe-run"
    _write_finding(run / "probes" / "fanout")
    _write_finding(run / "probes" / "future", schema_version=FINDING_SCHEMA_VERSION + 1)
    verdict = json.loads(build_report(run).verdict_json.read_text())
    assert [f["probe"] for f in verdict["findings"]] == ["fanout"]
    assert verdict["findings"][0]["knee"] == {"x": 40.0, "y": 95.0, "x_column": "listeners", "y_column": "p95_ms"}
    assert any("probes/future/finding.json: schema_version 2 is not 1" in m for m in verdict["missing"])
    assert "Fan-out knee: listeners per booth = 40 listeners; knee at listeners = 40 (kneedle on p95 vs listeners)." in \
        [s["text"] for s in verdict["capacity"]]
    assert verdict["recommendations"][0] == {"text": "Cap booths at 40 listeners.", "because": "probe fanout: listeners per booth = 40 listeners"}


def test_compare_two_runs_side_by_side(smoke_run, tmp_path):
    _, run_dir = smoke_run
    slower = copy_run(run_dir, tmp_path / "slower")
    csv_path = slower / "media" / "media-e0-listeners.csv"
    frame = pd.read_csv(csv_path)
    frame["marker_latency_ms"] += 100.0  # the same run with a 100 ms longer media path
    frame.to_csv(csv_path, index=False)
    out = tmp_path / "cmp"
    done = voxload("report", "--compare", str(run_dir), str(slower), "--out", str(out))
    assert done.returncode == 0, done.stderr
    doc = json.loads((out / "compare.json").read_text())
    numbers = {d["name"]: d for d in doc["key_numbers"]}
    for name in ("mouth_to_ear_p50_ms", "mouth_to_ear_p95_ms", "mouth_to_ear_p99_ms"):
        assert numbers[name]["delta"] == pytest.approx(100.0) and numbers[name]["better"] is False
    assert numbers["http_p95_ms"]["delta"] == pytest.approx(0.0)
    assert [s["metric"] for s in doc["slos"]] == [r["metric"] for r in json.loads((run_dir / "summary.json").read_text())["slos"]]
    page = (out / "compare.html").read_text()
    assert str(run_dir) in page and str(slower) in page and 'src="data:image/png;base64,' in page
    row = re.search(r'<tr data-name="mouth_to_ear_p95_ms">(.*?)</tr>', page, re.S).group(1)
    assert '<td class="worse">100</td>' in row


@pytest.mark.parametrize(("args", "message"), [
    (("report", "/nonexistent/run"), "is not a directory"),
    (("report",), "give a run folder"),
    (("report", "--compare", "a", "b"), "--compare needs --out"),
    (("report", "--compare", str(REPO / "tests"), str(REPO / "tests"), "--out", "/tmp/x"), "not a voxload run folder"),
])
def test_bad_input_is_one_line_and_exit_2(args, message):
    done = voxload(*args)
    assert done.returncode == 2
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_speed_benchmark_synthesises_a_readable_run(tmp_path):
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "report_speed.py"), "--durations", "20", "--listeners", "20",
                           "--booths", "4", "--engines", "2", "--keep", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode in (0, 1), done.stderr  # 1 = over budget, which this test does not judge
    assert "command: python3 benchmarks/report_speed.py" in done.stdout and " 400 " in done.stdout  # 20 listeners x 20 s
    verdict = json.loads((tmp_path / "bench-20s" / "verdict.json").read_text())
    assert verdict["key_numbers"]["listener_sessions"] == 20 and verdict["missing"] == []


def test_transcription_refusals_become_a_capacity_statement_and_a_cap_recommendation(smoke_run, tmp_path):
    _, run_dir = smoke_run
    run = copy_run(run_dir, tmp_path / "capped")
    event = json.loads((run / "event.json").read_text())
    booths = event["booths"]
    for i in range(10):  # ten more transcribed booths, as an 11-booth scenario provisions them
        booths[f"Hall {i}/de"] = {"booth_id": f"{event['slug']}-{i + 2}-de", "room_id": i + 2, "transcribed": True}
    (run / "event.json").write_text(json.dumps(event))
    refused = f"{event['slug']}-11-de"
    with open(run / "samples" / "locust.jsonl", "a") as fh:  # what harness.rehearsal.users writes on a 429 (contract 7.2)
        fh.write(json.dumps({"t": pd.Timestamp.now().timestamp(), "metric": "transcription_start_rejected", "value": 1.0,
                             "tags": {"booth": refused}}, separators=(",", ":")) + "\n")
    verdict = json.loads(build_report(run).verdict_json.read_text())
    texts = [s["text"] for s in verdict["capacity"] if s["topic"] == "captions"]
    assert ("Transcription was refused (HTTP 429, the portal's worker cap, contract 7.2) for 1 of 11 transcribed booths "
            "(Hall 9/de): captions stop from the 11th transcribed booth.") in texts
    assert any(r["text"].startswith("Plan at most 10 transcribed booths per portal process") for r in verdict["recommendations"])


def test_real_workers_probe_report_states_the_cap_without_a_knee(tmp_path):
    done = voxload("probe", "workers", "--results-dir", str(tmp_path), "--run-id", "workers", "--booths", "11", "--no-audio",
                   "--observe-s", "0", "--cycles", "0", "--set", "REFSTACK_BCRYPT_ROUNDS=4", timeout_s=240)
    assert done.returncode == 0, done.stderr[-3000:]
    run = tmp_path / "workers"
    finding = json.loads((run / "probes" / "workers" / "finding.json").read_text())
    verdict = json.loads(build_report(run).verdict_json.read_text())
    statement = next(s["text"] for s in verdict["capacity"] if s["topic"] == "probe:workers")
    # Contract 7.2: ten workers per portal process, the 11th start refused; found by a method with no knee.
    assert f"{finding['limit']['name']} = 10 booths" in statement
    assert finding["knee"] is None and f"({finding['method']}; no knee found)" in statement
    page = (run / "report.html").read_text()
    assert re.search(r'<figure id="plot-probe_workers">\s*<img [^>]*src="data:image/png;base64,', page)
    assert "No knee found." in re.search(r'id="finding-workers">(.*?)</div>', page, re.S).group(1)
