"""The one percentile summary: count, p50, p95, p99, max and mean of a set of samples.

Used by the media engines for their per-second aggregates (rounded to keep the pushed lines short) and by the
report for its tables. Linear interpolation between samples (numpy's and pandas' default, as the SLO judge uses);
NaN samples are left out; no samples is None (no data is not zero). Plain numpy: engine processes import it.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

QUANTILES_PCT = (50, 95, 99)


def percentiles(samples: Iterable[float] | np.ndarray, *, ndigits: int | None = None) -> dict[str, float] | None:
    values = np.asarray(samples if isinstance(samples, np.ndarray) else list(samples), dtype=float)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return None
    p50, p95, p99 = np.percentile(values, QUANTILES_PCT)
    out = {"count": int(values.size), "p50": float(p50), "p95": float(p95), "p99": float(p99), "max": float(values.max()),
           "mean": float(values.mean())}
    if ndigits is not None:
        out = {k: (v if k == "count" else round(v, ndigits)) for k, v in out.items()}
    return out
