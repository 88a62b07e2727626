"""The one percentile summary (harness.results.percentiles), as the engines push it and the report tables it."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from harness.results.percentiles import percentiles


def test_linear_percentiles_count_max_and_mean():
    got = percentiles([float(v) for v in range(1, 101)])
    assert got == {"count": 100, "p50": 50.5, "p95": 95.05, "p99": 99.01, "max": 100.0, "mean": 50.5}


def test_nan_samples_are_left_out_and_no_samples_is_none():
    assert percentiles([]) is None
    assert percentiles(np.array([math.nan, math.nan])) is None
    assert percentiles(pd.Series([1.0, math.nan, 3.0])) == {"count": 2, "p50": 2.0, "p95": 2.9, "p99": 2.98, "max": 3.0, "mean": 2.0}


def test_rounding_for_the_pushed_records_keeps_the_count_exact():
    got = percentiles([0.1234567, 1.9876543], ndigits=3)
    assert got["count"] == 2 and got["max"] == 1.988 and got["p50"] == round((0.1234567 + 1.9876543) / 2, 3)


def test_it_agrees_with_pandas_quantiles_the_report_used():
    values = pd.Series(np.random.default_rng(7).gamma(2.0, 40.0, 5000))
    got = percentiles(values)
    for key, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        assert math.isclose(got[key], float(values.quantile(q)), rel_tol=1e-12)
