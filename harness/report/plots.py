"""The report's figures (matplotlib, object API on the Agg canvas: no pyplot state, no display, no network).

Owns how each figure looks. Inputs are the frames ``series`` computed; each builder returns a ``Plot`` or
None when there is nothing to draw (the report then says the data is missing instead of showing an empty
axis). The same Figure objects go into the HTML (PNG, base64) and the PDF (vector pages).
"""

from __future__ import annotations

import base64
import dataclasses
import io
import textwrap

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..results.health import HUB_LATE_MS_PER_S_SATURATED, hub_late_ms_per_second
from ..results.finding_schema import PlotKind
from .findings import DataSeries, Finding
from .health import GeneratorHealthView
from .series import BoothDistribution
from .verdicts import SloRow

PNG_DPI = 90
WIDTH_IN = 10.0
MAX_SCATTER_POINTS = 4000
MAX_HANDOVER_BARS = 40
_SATURATED_COLOR = "#f4a3a3"
# media-design 5 / harness.media.health defaults: the engine calls itself saturated above these.
ENGINE_CPU_LIMIT_PCT = 85.0
ENGINE_LAG_P95_LIMIT_MS = 20.0


@dataclasses.dataclass
class Plot:
    key: str
    title: str
    caption: str
    figure: Figure

    def png_base64(self) -> str:
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png", dpi=PNG_DPI, bbox_inches="tight")
        return base64.b64encode(buffer.getvalue()).decode("ascii")


def _shade(ax, health: GeneratorHealthView | None) -> None:
    for period in (health.periods if health else ()):
        ax.axvspan(period.start_s, period.end_s + 1, color=_SATURATED_COLOR, alpha=0.5, lw=0)


def _threshold_line(ax, row: SloRow | None, *, horizontal: bool = True) -> None:
    """The SLO bound as a dashed line; a bound far beyond the data is named in a corner instead of squashing it."""
    if row is None:
        return
    low, high = ax.get_ylim() if horizontal else ax.get_xlim()
    if row.bound > high + 2 * (high - low):
        ax.text(0.99, 0.97, f"SLO {row.source} {row.unit} (off scale)", transform=ax.transAxes, ha="right", va="top",
                fontsize=8, color="crimson")
        return
    draw = ax.axhline if horizontal else ax.axvline
    draw(row.bound, color="crimson", ls="--", lw=1)
    ax.annotate(f"SLO {row.source}", xy=(0.99, row.bound) if horizontal else (row.bound, 0.02),
                xycoords=("axes fraction", "data") if horizontal else ("data", "axes fraction"),
                ha="right" if horizontal else "left", va="bottom", fontsize=8, color="crimson")


def load_over_time(timeline: pd.DataFrame, health: GeneratorHealthView | None, bin_s: int) -> Plot | None:
    if timeline.empty:
        return None
    fig = Figure(figsize=(WIDTH_IN, 8.5))
    axes = fig.subplots(4, 1, sharex=True)
    t = timeline.index.to_numpy(dtype=float)
    ax = axes[0]
    for column, label in (("users", "Locust users"), ("listeners_receiving", "listeners receiving audio")):
        if column in timeline and timeline[column].notna().any():
            ax.step(t, timeline[column], where="post", label=label)
    ax.set_ylabel("users")
    ax = axes[1]
    if "rps" in timeline:
        ax.plot(t, timeline["rps"].fillna(0), color="tab:blue")
    ax.set_ylabel("HTTP req/s")
    ax = axes[2]
    for column, label in (("p50_ms", "p50"), ("p95_ms", "p95"), ("p99_ms", "p99")):
        if column in timeline:
            ax.plot(t, timeline[column], label=label, marker=".", ms=3, lw=1)
    ax.set_ylabel("HTTP latency (ms)")
    ax = axes[3]
    if "errors_per_s" in timeline:
        ax.bar(t, timeline["errors_per_s"].fillna(0), width=bin_s, align="edge", color="tab:red")
    ax.set_ylabel("failed req/s")
    ax.set_ylim(bottom=0, top=max(1.0, ax.get_ylim()[1]))
    ax.set_xlabel("seconds since load start")
    for ax in axes:
        _shade(ax, health)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper left", fontsize=8)
    fig.suptitle(f"Load over time ({bin_s} s bins)")
    fig.tight_layout()
    caption = (f"Users, portal HTTP requests per second, HTTP latency percentiles per {bin_s} s bin and failed requests per second "
               "(from the run's HTTP samples). Red bands: generator saturated.")
    return Plot("load", "Users, RPS, latency and errors over time", caption, fig)


def mouth_to_ear(dist: BoothDistribution | None, row: SloRow | None) -> Plot | None:
    if dist is None or dist.stats.empty:
        return None
    stats = dist.stats
    boxes = [{"label": f"{booth}\n(n={int(s['count'])})", "med": s["p50"], "q1": s["p25"], "q3": s["p75"],
              "whislo": s["p5"], "whishi": s["p95"], "fliers": [s["p99"], s["max"]]} for booth, s in stats.iterrows()]
    fig = Figure(figsize=(WIDTH_IN, 4.5 if len(boxes) <= 12 else 7))
    ax = fig.subplots()
    ax.bxp(boxes, showfliers=True, flierprops={"marker": "x", "markersize": 5},
            orientation="vertical" if len(boxes) <= 12 else "horizontal")
    _threshold_line(ax, row, horizontal=len(boxes) <= 12)
    if len(boxes) <= 12:
        ax.set_ylabel("mouth-to-ear latency (ms)")
    else:
        ax.set_xlabel("mouth-to-ear latency (ms)")
    ax.grid(alpha=0.3)
    ax.set_title("Mouth-to-ear latency per booth")
    fig.tight_layout()
    caption = f"Box p25-p75 with median, whiskers p5-p95, crosses p99 and max; source: {dist.source}."
    return Plot("mouth_to_ear", "Mouth-to-ear latency per booth", caption, fig)


def _ecdf(ax, values: pd.Series, label: str) -> None:
    ordered = np.sort(values.to_numpy(dtype=float))
    ax.step(ordered, np.arange(1, ordered.size + 1) / ordered.size, where="post", label=f"{label} (n={ordered.size})")


def time_to_first_audio(setups: pd.DataFrame, row: SloRow | None) -> Plot | None:
    ok = setups[setups["ok"]].dropna(subset=["first_packet_ms"]) if not setups.empty else setups
    if ok.empty:
        return None
    fig = Figure(figsize=(WIDTH_IN, 4))
    ax = fig.subplots()
    for role, rows in ok.groupby("role"):
        _ecdf(ax, rows["first_packet_ms"], str(role))
    _threshold_line(ax, row, horizontal=False)
    ax.set_xlabel("time to first audio packet after the WHIP/WHEP POST (ms)")
    ax.set_ylabel("fraction of sessions")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    failed = int((~setups["ok"]).sum())
    ax.set_title(f"Time to first audio ({failed} failed setup{'s' if failed != 1 else ''} not shown)")
    fig.tight_layout()
    return Plot("first_audio", "Time to first audio", "Cumulative distribution per role (media engine setup events, first_packet_ms).", fig)


def handover_gaps(handovers: pd.DataFrame, row: SloRow | None) -> Plot | None:
    if handovers.empty:
        return None
    fig = Figure(figsize=(WIDTH_IN, 4))
    ax = fig.subplots()
    if len(handovers) <= MAX_HANDOVER_BARS:
        labels = [f"{b}\n+{t:.0f} s{'' if ok else ' FAILED'}" for b, t, ok in handovers[["booth", "t_s", "ok"]].itertuples(index=False)]
        x = np.arange(len(handovers))
        ax.bar(x - 0.2, handovers["gap_max_ms"].fillna(0), width=0.4, label="worst listener", color="tab:orange")
        ax.bar(x + 0.2, handovers["gap_p50_ms"].fillna(0), width=0.4, label="median listener", color="tab:blue")
        ax.set_xticks(x, labels, fontsize=8)
    else:
        # Too many handovers for one bar each: one point per handover over time, failures on the axis in red.
        done = handovers[handovers["ok"]]
        ax.scatter(done["t_s"], done["gap_max_ms"], s=8, color="tab:orange", label="worst listener")
        ax.scatter(done["t_s"], done["gap_p50_ms"], s=8, color="tab:blue", label="median listener")
        failed = handovers[~handovers["ok"]]
        if not failed.empty:
            ax.scatter(failed["t_s"], np.zeros(len(failed)), marker="x", color="crimson", label=f"failed ({len(failed)})")
        ax.set_xlabel("seconds since load start")
    _threshold_line(ax, row)
    ax.set_ylabel("longest packet gap (ms)")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title(f"Listener audio gaps across handovers ({len(handovers)})")
    fig.tight_layout()
    return Plot("handovers", "Handover gaps", "Per handover: the longest packet-free stretch a listener of that booth heard in the 6 s after it started.", fig)


def caption_delays(captions: pd.DataFrame, row: SloRow | None, bin_s: int) -> Plot | None:
    if captions.empty:
        return None
    fig = Figure(figsize=(WIDTH_IN, 4))
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 1]})
    shown = captions.sample(MAX_SCATTER_POINTS, random_state=0) if len(captions) > MAX_SCATTER_POINTS else captions
    for booth, rows in shown.groupby("booth"):
        left.scatter(rows["t_s"], rows["ms"] / 1000.0, s=6, alpha=0.6, label=str(booth))
    per_bin = captions["ms"].groupby(captions["t_s"] // bin_s * bin_s).quantile(0.95) / 1000.0
    left.plot(per_bin.index, per_bin.to_numpy(), color="black", lw=1, label=f"p95 per {bin_s} s")
    left.set_xlabel("seconds since load start")
    left.set_ylabel("caption delay (s)")
    left.grid(alpha=0.3)
    left.legend(fontsize=8, loc="upper left")
    right.hist(captions["ms"] / 1000.0, bins=30, orientation="horizontal", color="tab:gray")
    right.set_xlabel("samples")
    if row is not None:
        low, high = left.get_ylim()
        if row.bound / 1000.0 > high + 2 * (high - low):
            left.text(0.99, 0.97, f"SLO {row.source} ms (off scale)", transform=left.transAxes, ha="right", va="top", fontsize=8, color="crimson")
        else:
            for ax in (left, right):
                ax.axhline(row.bound / 1000.0, color="crimson", ls="--", lw=1)
    fig.suptitle("Caption delay: audio sent to the caption final carrying it")
    fig.tight_layout()
    return Plot("captions", "Caption delays", "Each caption final's delay over time (per booth) and its distribution; dashed: the SLO bound.", fig)


def generator(engine_seconds: pd.DataFrame, hub_lag: pd.DataFrame, health: GeneratorHealthView, t0: float) -> Plot | None:
    if engine_seconds.empty and hub_lag.empty:
        return None
    fig = Figure(figsize=(WIDTH_IN, 4.5))
    cpu_ax, lag_ax = fig.subplots(1, 2)
    for engine, rows in engine_seconds.groupby("engine"):
        cpu_ax.plot(rows["t"] - t0, rows["cpu_pct"], lw=1, label=f"engine {engine}")
        lag_ax.plot(rows["t"] - t0, rows["loop_lag_p95_ms"], lw=1, label=f"engine {engine} loop lag p95")
    if not hub_lag.empty:
        processes = hub_lag["process"].fillna("") if "process" in hub_lag else [""] * len(hub_lag)
        late = hub_late_ms_per_second(zip(processes, hub_lag["t"], hub_lag["value"]))
        per_second = pd.Series(list(late.values()), index=[second - t0 for _, second in late]).groupby(level=0).max().sort_index()
        lag_ax.plot(per_second.index, per_second.to_numpy(), lw=1, label="Locust hub: ms late per second")
        lag_ax.axhline(HUB_LATE_MS_PER_S_SATURATED, color="purple", ls=":", lw=1)
    cpu_ax.axhline(ENGINE_CPU_LIMIT_PCT, color="crimson", ls="--", lw=1)
    lag_ax.axhline(ENGINE_LAG_P95_LIMIT_MS, color="crimson", ls="--", lw=1)
    cpu_ax.set_ylabel("engine CPU (% of one core)")
    lag_ax.set_ylabel("event-loop lag (ms)")
    for ax in (cpu_ax, lag_ax):
        _shade(ax, health)
        ax.set_xlabel("seconds since load start")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8, loc="upper left")
    fig.suptitle("Generator health")
    fig.tight_layout()
    caption = (f"Media engine CPU and loop lag (limits {ENGINE_CPU_LIMIT_PCT:g} % and {ENGINE_LAG_P95_LIMIT_MS:g} ms, dashed) and the Locust "
               f"hub's late milliseconds per second (limit {HUB_LATE_MS_PER_S_SATURATED:g} ms, dotted). Red bands: saturated seconds.")
    return Plot("generator", "Generator health", caption, fig)


def _draw_series(ax, data: DataSeries) -> list[str]:
    """Draw one data file as asked; returns the y columns drawn (missing columns are skipped)."""
    frame = data.frame
    if data.x not in frame:
        return []
    drawn = [y for y in data.y if y in frame]
    groups = list(frame.groupby(data.series)) if data.series and data.series in frame else [(None, frame)]
    if data.kind is PlotKind.BAR:
        _grouped_bars(ax, data, groups, drawn)
    for name, rows in groups if data.kind is not PlotKind.BAR else ():
        if data.kind is PlotKind.SCATTER and len(rows) > MAX_SCATTER_POINTS:
            rows = rows.sample(MAX_SCATTER_POINTS, random_state=0)  # a fixed sample: same picture every build
        rows = rows.sort_values(data.x)
        for y in drawn:
            label = y if name is None else f"{y} ({data.series}={name})"
            if data.kind is PlotKind.SCATTER:
                ax.scatter(rows[data.x], rows[y], s=12, label=label)
            else:
                ax.plot(rows[data.x], rows[y], marker="o", ms=3, label=label)
    ax.set_xlabel(textwrap.fill(data.columns.get(data.x, data.x), 90))
    ax.set_ylabel(textwrap.fill(", ".join(drawn), 30))  # column names: their meanings are in the finding's data table
    return drawn


def _grouped_bars(ax, data: DataSeries, groups: list, drawn: list[str]) -> None:
    """One bar per category and (series, column), side by side, so no bar hides another; counts start at 0."""
    categories = list(dict.fromkeys(str(v) for v in data.frame[data.x]))
    position = {c: i for i, c in enumerate(categories)}
    combos = [(name, rows, y) for name, rows in groups for y in drawn]
    width = 0.8 / max(1, len(combos))
    for k, (name, rows, y) in enumerate(combos):
        x = np.array([position[str(v)] for v in rows[data.x]], dtype=float) + (k - (len(combos) - 1) / 2) * width
        ax.bar(x, rows[y].fillna(0), width=width, label=y if name is None else f"{y} ({data.series}={name})")
    ax.set_xticks(range(len(categories)), categories, fontsize=8)
    ax.set_ylim(bottom=0, top=max(1.0, ax.get_ylim()[1]))


def probe_curve(finding: Finding) -> Plot | None:
    plotted = [d for d in finding.data if d.x and d.y]
    if not plotted:
        return None
    fig = Figure(figsize=(WIDTH_IN, 3.6 * len(plotted)))
    axes = np.atleast_1d(fig.subplots(len(plotted), 1))
    knee_drawn = False
    for ax, data in zip(axes, plotted):
        drawn = _draw_series(ax, data)
        knee = finding.knee
        if knee is not None and not knee_drawn and data.x == knee.x_column and (knee.y_column in drawn or not knee.y_column):
            ax.axvline(knee.x, color="crimson", ls="--", lw=1)
            ax.plot([knee.x], [knee.y], marker="*", ms=14, color="crimson", label=f"knee {knee.x_column} = {knee.x:g}")
            knee_drawn = True
        ax.set_title(data.description or data.file, fontsize=9)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8, loc="upper left")
    if finding.knee is not None and not knee_drawn:
        # The knee is on columns no data file plots together: mark its x on the first axis, still named.
        axes[0].axvline(finding.knee.x, color="crimson", ls="--", lw=1, label=f"knee {finding.knee.x_column} = {finding.knee.x:g}")
        axes[0].legend(fontsize=8, loc="upper left")
    fig.suptitle(textwrap.fill(f"{finding.title} — method: {finding.method}", 120), fontsize=9)
    fig.tight_layout()
    knee_text = f"knee at {finding.knee.x_column} = {finding.knee.x:g} ({finding.knee.y_column} = {finding.knee.y:g})" if finding.knee else "no knee found"
    caption = f"Probe {finding.probe}: {knee_text}; method: {finding.method}."
    return Plot(f"probe_{finding.probe}", f"Probe: {finding.title}", caption, fig)
