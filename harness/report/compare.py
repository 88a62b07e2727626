"""``voxload report --compare RUN_A RUN_B --out DIR``: two runs side by side (before/after a configuration change).

Owns the comparison: SLO rows matched by metric and threshold text, the key percentiles of both runs with
their deltas (B - A, and in % of A), and one overlay figure of the distributions that matter most
(mouth-to-ear, HTTP latency). Writes compare.html, compare.md and compare.json into the chosen folder.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from ..results.measures import LISTENER_ROLES
from ..results.run_folder import utc_now_iso, write_json_atomic
from . import series
from .build import Report, assemble
from .errors import OutputNotWritable
from .plots import WIDTH_IN, Plot
from .rundata import RunData, load_run

COMPARE_HTML = "compare.html"
COMPARE_MD = "compare.md"
COMPARE_JSON = "compare.json"
# Key numbers where a smaller value is better (all the others: larger is better).
_LOWER_IS_BETTER = {"mouth_to_ear_p50_ms", "mouth_to_ear_p95_ms", "mouth_to_ear_p99_ms", "time_to_first_audio_p95_ms",
                    "http_p50_ms", "http_p95_ms", "http_p99_ms", "http_error_pct", "caption_delay_p95_ms",
                    "handover_gap_max_ms", "packet_loss_mean_pct"}


@dataclasses.dataclass(frozen=True)
class ComparisonPaths:
    html: Path
    markdown: Path
    json: Path


@dataclasses.dataclass(frozen=True)
class Delta:
    name: str
    a: float | None
    b: float | None

    @property
    def delta(self) -> float | None:
        return None if self.a is None or self.b is None else self.b - self.a

    @property
    def pct(self) -> float | None:
        return None if self.delta is None or not self.a else 100.0 * self.delta / abs(self.a)

    @property
    def better(self) -> bool | None:
        """Whether B improved on A (None: no change or not comparable)."""
        if not self.delta:
            return None
        return (self.delta < 0) == (self.name in _LOWER_IS_BETTER)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "a": self.a, "b": self.b, "delta": self.delta, "delta_pct": self.pct, "better": self.better}


@dataclasses.dataclass(frozen=True)
class SloPair:
    metric: str
    threshold: str
    a_state: str | None
    a_measured: str
    b_state: str | None
    b_measured: str
    delta: Delta

    def as_dict(self) -> dict[str, Any]:
        return {**{k: v for k, v in dataclasses.asdict(self).items() if k != "delta"}, **{f"observed_{k}": v for k, v in
                (("a", self.delta.a), ("b", self.delta.b), ("delta", self.delta.delta))}}


def _finite(value: float | None) -> float | None:
    return None if value is None or (isinstance(value, float) and not math.isfinite(value)) else value


def slo_pairs(a: Report, b: Report) -> list[SloPair]:
    keys = list(dict.fromkeys((r.metric, r.threshold_text) for r in (*a.verdicts.rows, *b.verdicts.rows)))
    pairs = []
    for metric_name, threshold in keys:
        ra = next((r for r in a.verdicts.rows if (r.metric, r.threshold_text) == (metric_name, threshold)), None)
        rb = next((r for r in b.verdicts.rows if (r.metric, r.threshold_text) == (metric_name, threshold)), None)
        pairs.append(SloPair(metric_name, threshold, ra.state if ra else None, ra.measured_text if ra else "not judged",
                             rb.state if rb else None, rb.measured_text if rb else "not judged",
                             Delta(metric_name, ra.observed if ra else None, rb.observed if rb else None)))
    return pairs


def key_deltas(a: Report, b: Report) -> list[Delta]:
    return [Delta(name, _finite(a.key_numbers.get(name)), _finite(b.key_numbers.get(name))) for name in a.key_numbers]


def _m2e_values(run: RunData) -> np.ndarray:
    if run.listeners.empty:
        return np.array([])
    rows = run.listeners[run.listeners["role"].isin(LISTENER_ROLES)]
    probes = rows.loc[rows["role"] == "probe", "marker_latency_ms"].dropna()
    return (probes if not probes.empty else rows["latency_p50_ms"].dropna()).to_numpy(float)


def overlay_plot(run_a: RunData, run_b: RunData) -> Plot | None:
    panels = [("mouth-to-ear latency (ms)", _m2e_values(run_a), _m2e_values(run_b)),
              ("HTTP request duration (ms)", series.metric(run_a, "http_req_duration_ms")["value"].to_numpy(float) if not run_a.samples.empty else np.array([]),
               series.metric(run_b, "http_req_duration_ms")["value"].to_numpy(float) if not run_b.samples.empty else np.array([]))]
    panels = [p for p in panels if p[1].size or p[2].size]
    if not panels:
        return None
    fig = Figure(figsize=(WIDTH_IN, 4))
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, (label, va, vb) in zip(axes, panels):
        for name, values in (("A " + run_a.run_id, va), ("B " + run_b.run_id, vb)):
            if values.size:
                ordered = np.sort(values)
                ax.step(ordered, np.arange(1, ordered.size + 1) / ordered.size, where="post", label=f"{name} (n={ordered.size})")
        ax.set_xlabel(label)
        ax.set_ylabel("fraction of samples")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    fig.suptitle("Distributions, run A against run B")
    fig.tight_layout()
    return Plot("compare", "Distributions side by side", "Cumulative distributions of both runs' samples (left of the other = faster).", fig)


def _fmt(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"


def build_comparison(run_a: Path, run_b: Path, out_dir: Path) -> ComparisonPaths:
    from .render import render_template

    data_a, data_b = load_run(Path(run_a)), load_run(Path(run_b))
    report_a, report_b = assemble(data_a), assemble(data_b)
    for report in (report_a, report_b):
        for plot in report.plots:
            plot.figure.clear()  # only the numbers of each run are compared; their own figures are not needed
    pairs, deltas = slo_pairs(report_a, report_b), key_deltas(report_a, report_b)
    plot = overlay_plot(data_a, data_b)
    out = Path(out_dir)
    paths = ComparisonPaths(out / COMPARE_HTML, out / COMPARE_MD, out / COMPARE_JSON)
    context = {"a": report_a, "b": report_b, "pairs": pairs, "deltas": deltas, "plot": plot,
               "image": plot.png_base64() if plot else None, "fmt": _fmt, "generated_at": utc_now_iso()}
    try:
        out.mkdir(parents=True, exist_ok=True)
        paths.html.write_text(render_template("compare.html.j2", **context), encoding="utf-8")
        paths.markdown.write_text(render_template("compare.md.j2", **context), encoding="utf-8")
        write_json_atomic(paths.json, {
            "schema_version": 1,
            "a": {"run_id": report_a.run_id, "path": str(report_a.run_path), "verdict": report_a.verdicts.verdict, "exit_code": report_a.verdicts.exit_code},
            "b": {"run_id": report_b.run_id, "path": str(report_b.run_path), "verdict": report_b.verdicts.verdict, "exit_code": report_b.verdicts.exit_code},
            "slos": [p.as_dict() for p in pairs],
            "key_numbers": [d.as_dict() for d in deltas],
            "generated_at": context["generated_at"],
        })
    except OSError as exc:
        raise OutputNotWritable(f"cannot write the comparison into {out}: {exc.strerror or exc}") from exc
    finally:
        if plot is not None:
            plot.figure.clear()
    return paths

