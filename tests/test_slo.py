"""SLO thresholds: parsing (with k6 aliases and per-kind aggregation rules) and three-state evaluation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from harness.results.slo import (
    METRICS,
    AggregationNotAllowed,
    MetricKind,
    SloState,
    ThresholdSyntaxError,
    UnknownMetric,
    evaluate,
    evaluate_one,
    parse_threshold,
    samples_from_frame,
)


def test_registry_holds_the_metrics_the_issue_names_with_units():
    for name in ("mouth_to_ear_latency_ms", "whep_time_to_first_audio_ms", "handover_gap_ms", "caption_delay_ms",
                 "http_error_rate", "packet_loss_pct", "jitter_ms", "listeners_receiving_ratio"):
        assert name in METRICS
    assert METRICS["jitter_ms"].unit == "ms" and METRICS["jitter_ms"].kind is MetricKind.TREND
    assert METRICS["http_error_rate"].kind is MetricKind.RATE
    assert METRICS["listeners_receiving_ratio"].kind is MetricKind.GAUGE
    assert all(m.description for m in METRICS.values())


@pytest.mark.parametrize(
    "metric, source, aggregation, op, bound",
    [
        ("mouth_to_ear_latency_ms", "p95 < 400", "p95", "<", 400.0),
        ("mouth_to_ear_latency_ms", "p(99)<=250.5", "p99", "<=", 250.5),
        ("mouth_to_ear_latency_ms", "p99.9 < 1e3", "p99.9", "<", 1000.0),
        ("jitter_ms", "avg < 10", "mean", "<", 10.0),
        ("jitter_ms", "med >= 0", "p50", ">=", 0.0),
        ("handover_gap_ms", "  max  <  1000 ", "max", "<", 1000.0),
        ("http_error_rate", "rate < 0.01", "rate", "<", 0.01),
        ("listeners_receiving_ratio", "value >= 0.99", "value", ">=", 0.99),
        ("transcription_start_rejected", "count == 0", "count", "==", 0.0),
        ("packet_loss_pct", "mean > -1", "mean", ">", -1.0),
    ],
)
def test_parse_threshold(metric, source, aggregation, op, bound):
    t = parse_threshold(metric, source, file="s.yaml", line=7)
    assert (t.metric, t.aggregation, t.op, t.bound) == (metric, aggregation, op, bound)
    assert t.source == source.strip() and (t.file, t.line) == ("s.yaml", 7) and t.required


@pytest.mark.parametrize(
    "metric, source, error, message",
    [
        ("jitter", "p95 < 30", UnknownMetric, "unknown metric 'jitter' (did you mean 'jitter_ms'?)"),
        ("jitter_ms", "p95 <", ThresholdSyntaxError, "cannot parse threshold 'p95 <': expected 'AGGREGATION OPERATOR NUMBER', e.g. 'p95 < 400'"),
        ("jitter_ms", "p95 = 30", ThresholdSyntaxError, "cannot parse threshold 'p95 = 30': expected 'AGGREGATION OPERATOR NUMBER', e.g. 'p95 < 400'"),
        ("jitter_ms", "p95 < 30ms", ThresholdSyntaxError, "cannot parse threshold 'p95 < 30ms': expected 'AGGREGATION OPERATOR NUMBER', e.g. 'p95 < 400'"),
        ("jitter_ms", "p101 < 30", ThresholdSyntaxError, "cannot parse threshold 'p101 < 30': percentile 101 is outside 0-100"),
        ("jitter_ms", "maxx < 30", ThresholdSyntaxError, "cannot parse threshold 'maxx < 30': unknown aggregation 'maxx' (did you mean 'max'?)"),
        ("http_error_rate", "p95 < 0.1", AggregationNotAllowed,
         "aggregation 'p95' does not apply to rate metric 'http_error_rate' (use count, rate)"),
        ("jitter_ms", "value < 3", AggregationNotAllowed,
         "aggregation 'value' does not apply to trend metric 'jitter_ms' (use count, max, mean, min, pNN)"),
        ("listeners_receiving_ratio", "mean > 0.9", AggregationNotAllowed,
         "aggregation 'mean' does not apply to gauge metric 'listeners_receiving_ratio' (use max, min, value)"),
    ],
)
def test_parse_errors_are_typed_one_liners(metric, source, error, message):
    with pytest.raises(error) as info:
        parse_threshold(metric, source)
    assert str(info.value) == message


def test_no_samples_is_no_data_never_a_pass():
    lenient = parse_threshold("handover_gap_ms", "max < 1e12")
    for samples in (None, [], np.array([]), [float("nan")], pd.Series([], dtype=float)):
        result = evaluate_one(lenient, samples)
        assert result.state is SloState.NO_DATA
        assert result.observed is None and result.sample_count == 0


def test_evaluate_three_states_and_keeps_observed_values():
    thresholds = [
        parse_threshold("mouth_to_ear_latency_ms", "p95 < 400"),
        parse_threshold("mouth_to_ear_latency_ms", "max < 300"),
        parse_threshold("http_error_rate", "rate < 0.01"),
        parse_threshold("caption_delay_ms", "p95 < 8000"),
        parse_threshold("listeners_receiving_ratio", "value >= 0.99"),
        parse_threshold("transcription_start_rejected", "count == 0"),
    ]
    samples = {
        "mouth_to_ear_latency_ms": np.arange(1, 101, dtype=float) * 3,  # 3..300 ms
        "http_error_rate": [0, 0, 1, 0],
        "listeners_receiving_ratio": [0.5, 0.8, 1.0],  # gauge: the last reading counts
        "transcription_start_rejected": [1, 1],  # counter: increments are summed
    }
    results = evaluate(thresholds, samples)
    assert [r.state for r in results] == [SloState.PASS, SloState.FAIL, SloState.FAIL, SloState.NO_DATA, SloState.PASS, SloState.FAIL]
    assert results[0].observed == pytest.approx(np.percentile(samples["mouth_to_ear_latency_ms"], 95))
    assert results[1].observed == 300.0
    assert results[2].observed == 0.25 and results[2].sample_count == 4
    assert results[4].observed == 1.0
    assert results[5].observed == 2.0
    row = results[0].as_dict()
    assert row["state"] == "pass" and row["source"] == "p95 < 400" and row["unit"] == "ms"


def test_boundaries_use_the_written_operator():
    samples = {"jitter_ms": [10.0, 10.0]}
    states = {op: evaluate_one(parse_threshold("jitter_ms", f"max {op} 10"), samples["jitter_ms"]).state for op in ("<", "<=", "==", ">=", ">")}
    assert states == {"<": SloState.FAIL, "<=": SloState.PASS, "==": SloState.PASS, ">=": SloState.PASS, ">": SloState.FAIL}


def test_nan_and_infinite_samples_are_ignored():
    result = evaluate_one(parse_threshold("jitter_ms", "max < 5"), [1.0, float("nan"), float("inf"), 4.0])
    assert result.state is SloState.PASS and result.observed == 4.0 and result.sample_count == 2


def test_samples_from_a_long_dataframe():
    frame = pd.DataFrame({"metric": ["jitter_ms", "http_error_rate", "jitter_ms"], "value": [1.0, 0.0, 3.0]})
    samples = samples_from_frame(frame)
    assert samples["jitter_ms"].tolist() == [1.0, 3.0]
    assert evaluate_one(parse_threshold("jitter_ms", "mean == 2"), samples["jitter_ms"]).state is SloState.PASS
    assert samples_from_frame(pd.DataFrame({"metric": [], "value": []})) == {}


def test_format_reference_lists_exactly_the_registry():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "scenarios" / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Metrics", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    documented = {row.split("`")[1]: [cell.strip() for cell in row.split("|")[2:4]] for row in rows}
    assert documented == {m.name: [m.unit, m.kind.value] for m in METRICS.values()}
