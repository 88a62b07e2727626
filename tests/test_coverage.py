"""The coverage rule (harness.results.slo.COVERAGE_REQUIRED, harness.results.measures): a media SLO holds only on the steady state."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.results import measures
from harness.rehearsal.handover import HandoverRecord
from harness.scenario import load_scenario
from harness.results.slo import COVERAGE_REQUIRED, SloState, evaluate, parse_threshold

REPO = Path(__file__).resolve().parents[1]
T0 = 1_800_000_000.0


def _listener_rows(handles: list[str], seconds: range, booth: str = "b1", packets: int = 50, gap_ms: float = 20.0) -> pd.DataFrame:
    rows = [{"t_epoch_s": T0 + s + 1.0, "handle": h, "booth": booth, "role": "listener", "packets": packets,
             "max_interarrival_ms": gap_ms} for s in seconds for h in handles]
    return pd.DataFrame(rows)


def test_steady_window_starts_after_the_ramp_and_setup_and_ends_with_the_stage():
    smoke = load_scenario("smoke")
    # 6 fixed users + 12 listeners at 2/s: target at 9 s; + listener think 1.5 s + 3 s WHEP setup; held until 55 s.
    assert measures.steady_windows(smoke) == [measures.SteadyWindow(14.5, 55.0, 12)]
    # A run that stopped at +30 s expects only what it could have measured.
    assert measures.steady_windows(smoke, ran_s=30.0) == [measures.SteadyWindow(14.5, 30.0, 12)]
    assert measures.steady_windows(smoke, ran_s=10.0) == []


def test_coverage_counts_measured_listener_seconds_inside_the_window():
    window = [measures.SteadyWindow(10.0, 60.0, 2)]
    full = measures.media_coverage(_listener_rows(["e0/a", "e0/b"], range(0, 60)), window, T0)
    assert full.expected_listener_s == 100.0 and full.ratio == pytest.approx(1.0, abs=0.02)
    # The engine died at +25 s: 15 of the 50 window seconds were measured.
    died = measures.media_coverage(_listener_rows(["e0/a", "e0/b"], range(0, 25)), window, T0)
    assert died.ratio == pytest.approx(0.3, abs=0.02) and died.ratio < COVERAGE_REQUIRED
    # A listener that reconnects under a new handle in the same second is not two listeners.
    churn = measures.media_coverage(_listener_rows(["e0/a", "e0/b", "e0/c"], range(0, 60)), window, T0)
    assert churn.ratio == pytest.approx(1.0, abs=0.02)
    assert measures.media_coverage(pd.DataFrame(), window, T0).ratio == 0.0


def test_media_slo_below_the_coverage_rule_is_insufficient_data_not_a_pass():
    threshold = parse_threshold("mouth_to_ear_latency_ms", "p95 < 400")
    good = {"mouth_to_ear_latency_ms": [100.0] * 30}
    (thin,) = evaluate([threshold], good, {"mouth_to_ear_latency_ms": 0.3})
    assert thin.state is SloState.INSUFFICIENT and thin.observed == 100.0 and thin.coverage == 0.3
    (enough,) = evaluate([threshold], good, {"mouth_to_ear_latency_ms": COVERAGE_REQUIRED})
    assert enough.state is SloState.PASS
    (breach,) = evaluate([threshold], {"mouth_to_ear_latency_ms": [900.0]}, {"mouth_to_ear_latency_ms": 1.0})
    assert breach.state is SloState.FAIL
    # Coverage does not apply to portal metrics: HTTP samples are judged as they are.
    (http,) = evaluate([parse_threshold("http_error_rate", "rate < 0.1")], {"http_error_rate": [0.0]}, {"http_error_rate": 0.1})
    assert http.state is SloState.PASS and http.coverage is None


def test_handover_heard_only_by_listeners_present_before_it():
    at = T0 + 20.0
    handover = HandoverRecord("b1", at, True, 150.0)
    present = _listener_rows(["e0/a"], range(10, 30), gap_ms=400.0)
    gaps, heard = measures.heard_handovers(present, [handover])
    assert heard == 1.0 and gaps.tolist() == [400.0]
    # Issue 10 item 9: the only listener joined after the switch; it heard no gap, and that is not a pass.
    late = _listener_rows(["e0/z"], range(22, 30), gap_ms=20.0)
    gaps, heard = measures.heard_handovers(late, [handover])
    assert heard == 0.0 and gaps.size == 0
    (row,) = evaluate([parse_threshold("handover_gap_ms", "max < 3000")], {"handover_gap_ms": gaps},
                      measures.coverage_by_metric(measures.MediaCoverage(10, 10, ()), heard))
    assert row.state is SloState.NO_DATA
    # One of two handovers unheard: half the handovers is below the rule, whatever the gap of the other.
    second = HandoverRecord("b1", T0 + 40.0, True, 150.0)
    gaps, heard = measures.heard_handovers(_listener_rows(["e0/a"], range(10, 30)), [handover, second])
    (row,) = evaluate([parse_threshold("handover_gap_ms", "max < 3000")], {"handover_gap_ms": gaps},
                      measures.coverage_by_metric(measures.MediaCoverage(10, 10, ()), heard))
    assert heard == 0.5 and row.state is SloState.INSUFFICIENT


def test_engine_death_event_says_when_and_how_much_was_measured(tmp_path):
    media = tmp_path / "media"
    media.mkdir()
    rows = _listener_rows(["e0:1"], range(0, 18))
    rows.assign(engine="e0").to_csv(media / "media-e0-listeners.csv", index=False)
    (media / "media-e0-exit.jsonl").write_text(json.dumps({"engine": "e0", "t_epoch_s": T0 + 25.2, "exit_code": -9}) + "\n")
    (event,) = measures.engine_death_events(tmp_path, T0, T0 + 60.0)
    assert event["text"] == "media engine e0 died at +25 s (exit code -9); audio measured for 18 of 60 s"
    assert (event["kind"], event["offset_s"], event["measured_s"]) == ("engine_died", 25.2, 18)
    assert measures.engine_death_events(tmp_path / "elsewhere", T0, T0 + 60.0) == []
