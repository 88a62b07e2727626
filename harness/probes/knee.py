"""Knee detection with the kneedle algorithm (Satopää et al., 2011, "Finding a 'Kneedle' in a Haystack").

Owns :func:`kneedle`: given a curve y(x) measured at a few increasing x (concurrency steps), it finds the
point of maximum curvature, i.e. where the curve stops behaving like its beginning. For latency against
concurrency (convex, increasing) that is the concurrency after which latency starts climbing; for
throughput (concave, increasing) it is where throughput stops growing. Implemented here in numpy (the
``kneed`` package is not a dependency) in the offline form: no smoothing, no online threshold.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Sequence

import numpy as np

METHOD_NAME = "kneedle (Satopää et al. 2011, offline, no smoothing)"


class CurveShape(enum.Enum):
    CONVEX_INCREASING = "convex_increasing"  # latency vs concurrency
    CONCAVE_INCREASING = "concave_increasing"  # throughput vs concurrency


@dataclasses.dataclass(frozen=True)
class Knee:
    x: float
    y: float
    index: int
    # The normalised difference curve's value at the knee (0..1): how pronounced the knee is.
    strength: float


def kneedle(x: Sequence[float], y: Sequence[float], shape: CurveShape = CurveShape.CONVEX_INCREASING) -> Knee | None:
    """The knee of y(x), or None when there are fewer than 3 points or the curve is flat or straight.

    Points with a non-finite y are dropped first (a step where nothing succeeded has no latency).
    """
    xs = np.asarray(x, dtype=float)
    ys = np.asarray(y, dtype=float)
    keep = np.isfinite(xs) & np.isfinite(ys)
    xs, ys = xs[keep], ys[keep]
    if xs.size < 3:
        return None
    order = np.argsort(xs, kind="stable")
    xs, ys = xs[order], ys[order]
    x_span = xs[-1] - xs[0]
    y_span = ys.max() - ys.min()
    if x_span <= 0 or y_span <= 0:
        return None
    xn = (xs - xs[0]) / x_span
    yn = (ys - ys.min()) / y_span
    # Kneedle works on a concave increasing curve; a convex increasing one is flipped (1 - y, reversed x).
    if shape is CurveShape.CONVEX_INCREASING:
        diff = xn - yn  # the chord y = x minus the curve: largest where the convex curve bends up
    else:
        diff = yn - xn
    i = int(np.argmax(diff))
    if diff[i] <= 0:
        return None  # the curve never leaves its chord on the expected side: no knee
    if shape is CurveShape.CONVEX_INCREASING and i == xs.size - 1:
        return None
    return Knee(x=float(xs[i]), y=float(ys[i]), index=int(order[i]), strength=float(diff[i]))
