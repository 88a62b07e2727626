"""Browser canaries inside a real rehearsal (the locustfile as CI runs it), and the report's browser section.

The smoke scenario asks for one canary listener: with Chromium present, the run's summary carries the browser
metrics with data and the report puts the canary beside the synthetic probe of the same booth. Without
Chromium the run says so in one line and the optional browser thresholds read no_data (never a failure).
Against the reference portal the listener page has no player code, which the report says in plain words.
"""

from __future__ import annotations

import json

import pytest
from selectolax.lexbor import LexborHTMLParser as HTMLParser

from conftest import REPO, run_locust
from harness.browser.chromium import CHROMIUM_ENV_VAR, unavailable_reason
from harness.results.browser_files import read_canaries, read_status
from harness.errors import ExitCode

BROWSER_METRICS = ("browser_mouth_to_ear_latency_ms", "browser_listeners_receiving_ratio")


@pytest.mark.skipif(unavailable_reason() is not None, reason=unavailable_reason() or "")
def test_smoke_rehearsal_reports_browser_metrics_beside_the_synthetic_probe(smoke_run):
    result, run = smoke_run
    # The run's verdict (exit code) is test_conference_run's business; here: the browser metrics got data.
    assert json.loads((run / "run.json").read_text())["status"] == "finished", result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    rows = {row["metric"]: row for row in summary["slos"]}
    for metric in BROWSER_METRICS:
        assert rows[metric]["state"] in ("pass", "fail") and rows[metric]["sample_count"] > 0, rows[metric]
    assert rows["browser_listeners_receiving_ratio"]["observed"] == 1.0

    canary = read_canaries(run)["l0"]
    playing = [s for s in canary["seconds"] if s["state"] == "playing"]
    assert len(playing) >= 10 and sum(s["packets"] for s in playing) > 400
    assert [s["kind"] for s in read_status(run)] == ["started"]
    # The reference portal's listener page cannot play: the canary used its own player on that page.
    assert [e["player"] for e in canary["events"] if e["event"] == "player"] == ["canary"]
    # Canary cost counts in generator health: its browser's CPU is among the generator CPU samples.
    assert all(s["health"]["rss_mb"] > 0 for s in canary["seconds"])

    tree = HTMLParser((run / "report.html").read_text())
    section = tree.css_first("#browser")
    assert section is not None
    canary_row = section.css_first("tr.canary-row[data-canary=l0]")
    assert canary_row is not None and "ms" in canary_row.text()
    booth = canary["seconds"][0]["booth"]
    calibration = section.css_first(f"tr.calibration-row[data-booth='{booth}']").text()
    assert calibration.count("ms") >= 4 and "no data" not in calibration.split("ms")[0]
    labels = section.text()
    assert "80 ms jitter-buffer prefetch" in labels and "sound card is not included" in labels
    assert "the page's own player was not exercised" in labels
    md = (run / "summary.md").read_text()
    assert "Browser canaries:" in md and "offset" in md


def test_without_chromium_the_run_says_so_and_carries_on(tmp_path, monkeypatch):
    """A short rehearsal on a machine without Chromium: one line, a note in the report, optional browser
    thresholds no_data, exit 0; a scenario whose required threshold needs canaries stops before load (exit 2)."""
    scenario = (REPO / "tests" / "data" / "scenarios" / "browser-short.yaml")
    monkeypatch.setenv(CHROMIUM_ENV_VAR, str(tmp_path / "no-chromium-here"))
    result = run_locust(tmp_path, str(scenario), "nochrome", timeout_s=240)
    lines = [l for l in (result.stdout + result.stderr).splitlines() if "browser canaries skipped" in l]
    assert len(lines) == 1 and "Chromium not found at" in lines[0], result.stdout[-2000:] + result.stderr[-2000:]
    run = tmp_path / "nochrome"
    summary = json.loads((run / "summary.json").read_text())
    rows = {row["metric"]: row for row in summary["slos"]}
    assert rows["browser_mouth_to_ear_latency_ms"]["state"] == "no_data" and not rows["browser_mouth_to_ear_latency_ms"]["required"]
    assert rows["http_error_rate"]["state"] == "pass"
    # Missing Chromium never fails the run: exit 0, unless this shared machine saturated the generator (exit 3, said so).
    expected = ExitCode.INVALID_RUN if summary["generator_health"]["saturated"] else ExitCode.OK
    assert result.returncode == summary["exit_code"] == expected, result.stdout[-3000:] + result.stderr[-3000:]
    assert "browser canaries skipped" in HTMLParser((run / "report.html").read_text()).css_first("#browser").text()

    required = tmp_path / "required.yaml"
    required.write_text(scenario.read_text().replace("required: false", "required: true"))
    result = run_locust(tmp_path, str(required), "required", timeout_s=120)
    assert result.returncode == ExitCode.USAGE
    line = [l for l in result.stderr.splitlines() if l.startswith("voxload:")]
    assert len(line) == 1 and "required.yaml:" in line[0] and "browser_mouth_to_ear_latency_ms" in line[0], result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "required" / "stack").exists()  # stopped before the embedded target was started
