"""The report's aggregations: time series and distributions computed from a run's frames (pandas only).

Owns how each plotted or quoted number is derived from ``RunData``; plots and statements only format them.
Times are seconds since the load started (``t_s``); time bins are one second, widened for long runs so a
plot has at most ``MAX_POINTS`` points (a one-hour run gets 6 s bins).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd

from ..results.percentiles import percentiles
from ..results.measures import HANDOVER_GAP_WINDOW_S, HANDOVER_PRESENT_BEFORE_S, LISTENER_ROLES
from .rundata import RunData

MAX_POINTS = 600
QUANTILES = (0.5, 0.95, 0.99)


def bin_width_s(duration_s: float) -> int:
    return max(1, math.ceil(duration_s / MAX_POINTS))


def run_duration_s(run: RunData, t0: float) -> float:
    ends = [run.samples["t"].max()] if not run.samples.empty else []
    ends += [run.listeners["t_epoch_s"].max()] if not run.listeners.empty else []
    ends += [run.engine_seconds["t"].max()] if not run.engine_seconds.empty else []
    return max(1.0, float(max(ends) - t0)) if ends else 1.0


def metric(run: RunData, name: str) -> pd.DataFrame:
    """The samples of one metric (t, value, tags)."""
    if run.samples.empty:
        return run.samples
    return run.samples[run.samples["metric"] == name]


def load_timeline(run: RunData, t0: float, bin_s: int) -> pd.DataFrame:
    """Per time bin: HTTP requests/s, p50/p95/p99 ms, failed requests/s, Locust users, listeners receiving audio.

    HTTP numbers come from the ``http_req_duration_ms`` / ``http_error_rate`` samples rather than Locust's
    history: its Aggregated row also counts WebSocket messages and handovers, and its percentiles are cumulative
    since the start, not per window (media figures have their own tab, ``rehearsal/media_view.py``).
    """
    parts = []
    http = metric(run, "http_req_duration_ms")
    if not http.empty:
        bins = ((http["t"] - t0) // bin_s * bin_s).rename("t_s")
        grouped = http["value"].groupby(bins)
        q = grouped.quantile(list(QUANTILES)).unstack()
        q.columns = ["p50_ms", "p95_ms", "p99_ms"]
        parts += [(grouped.size() / bin_s).rename("rps"), q]
    errors = metric(run, "http_error_rate")
    if not errors.empty:
        bins = ((errors["t"] - t0) // bin_s * bin_s).rename("t_s")
        parts.append((errors["value"].groupby(bins).sum() / bin_s).rename("errors_per_s"))
    if not run.history.empty:
        bins = ((run.history["t"] - t0) // bin_s * bin_s).rename("t_s")
        parts.append(run.history["users"].groupby(bins).max().rename("users"))
    if not run.listeners.empty:
        receiving = run.listeners[run.listeners["role"].isin(LISTENER_ROLES) & (run.listeners["packets"] > 0)]
        per_second = receiving["handle"].groupby((receiving["t_epoch_s"] - t0) // 1).nunique()
        bins = per_second.index // bin_s * bin_s
        parts.append(per_second.groupby(bins).max().rename("listeners_receiving").rename_axis("t_s"))
    if not parts:
        return pd.DataFrame(columns=["rps", "p50_ms", "p95_ms", "p99_ms", "errors_per_s", "users", "listeners_receiving"])
    frame = pd.concat(parts, axis=1).sort_index()
    frame.index.name = "t_s"
    return frame


@dataclasses.dataclass(frozen=True)
class BoothDistribution:
    source: str  # which measurement: decoded markers of probe listeners, or payload latency of taps
    stats: pd.DataFrame  # index booth label; count, p5, p25, p50, p75, p95, p99, max


def mouth_to_ear_by_booth(run: RunData) -> BoothDistribution | None:
    """Same choice of samples as ``harness.results.measures.collect``: probe markers, else tap payload latency."""
    if run.listeners.empty:
        return None
    rows = run.listeners[run.listeners["role"].isin(LISTENER_ROLES)]
    probes = rows.loc[rows["role"] == "probe", ["booth", "marker_latency_ms"]].dropna()
    if not probes.empty:
        values, source = probes.rename(columns={"marker_latency_ms": "ms"}), "probe listeners, decoded audio markers (media-design 4)"
    else:
        values = rows[["booth", "latency_p50_ms"]].dropna().rename(columns={"latency_p50_ms": "ms"})
        source = "tap listeners, payload latency (no probe listeners: reads ~80 ms low, no jitter buffer or decode)"
    if values.empty:
        return None
    values = values.assign(booth=run.labels(values["booth"]))
    grouped = values.groupby("booth")["ms"]
    stats = grouped.quantile([0.05, 0.25, 0.5, 0.75, 0.95, 0.99]).unstack()
    stats.columns = ["p5", "p25", "p50", "p75", "p95", "p99"]
    stats.insert(0, "count", grouped.size())
    stats["max"] = grouped.max()
    return BoothDistribution(source, stats)


def overall_mouth_to_ear(run: RunData) -> dict[str, float] | None:
    if run.listeners.empty:
        return None
    rows = run.listeners[run.listeners["role"].isin(LISTENER_ROLES)]
    m2e = rows.loc[rows["role"] == "probe", "marker_latency_ms"].dropna()
    return percentiles(m2e if not m2e.empty else rows["latency_p50_ms"])


def media_setups(run: RunData) -> pd.DataFrame:
    """One row per WHIP/WHEP setup: role, booth label, ok, first_packet_ms, connected_ms, phase, error."""
    events = run.media_events
    if events.empty or "event" not in events:
        return pd.DataFrame(columns=["role", "booth", "ok", "first_packet_ms", "connected_ms", "phase", "error"])
    setups = events[events["event"] == "setup"].copy()
    for column in ("first_packet_ms", "connected_ms", "phase", "error"):
        if column not in setups:
            setups[column] = np.nan
    setups["ok"] = setups["ok"].fillna(False).astype(bool)
    setups["booth"] = run.labels(setups["booth"])
    return setups[["role", "booth", "ok", "first_packet_ms", "connected_ms", "phase", "error"]]


def handovers(run: RunData, t0: float) -> pd.DataFrame:
    """One row per handover the rehearsal ran, with the listener-side gap after it.

    Handovers are rebuilt from the ``handover_failure_rate`` (one per handover) and ``handover_duration_ms``
    samples, both written when the handover ended; the start is the end minus the duration. The gap is the
    one ``harness.results.measures.heard_handovers`` judges: per listener that was receiving before the handover, the
    longest packet-free stretch in the ``HANDOVER_GAP_WINDOW_S`` after the start (a listener that joined after
    the switch heard no handover; a handover nobody heard has no gap). Windows are found by binary search in each booth's rows sorted
    by time, so a one-hour run with thousands of handovers does not rescan the listener table per handover.
    """
    outcomes = metric(run, "handover_failure_rate")
    columns = ["booth", "t_s", "ok", "duration_ms", "listeners", "gap_max_ms", "gap_p50_ms", "at_epoch_s"]
    if outcomes.empty:
        return pd.DataFrame(columns=columns)
    durations = metric(run, "handover_duration_ms")
    ends = outcomes[["t", "value", "booth"]].sort_values("t")
    # Each outcome sample has a duration sample of the same booth written right after it (harness.rehearsal.run).
    matched = pd.merge_asof(ends, durations[["t", "value", "booth"]].sort_values("t").rename(columns={"value": "duration_ms"}),
                            on="t", by="booth", direction="nearest", tolerance=0.5)
    matched["at_epoch_s"] = matched["t"] - matched["duration_ms"].fillna(0.0) / 1000.0
    by_booth: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]] = {}
    if not run.listeners.empty:
        rows = run.listeners[run.listeners["role"].isin(LISTENER_ROLES)]
        for booth, group in rows.groupby(rows["booth"].astype(str), sort=False):
            group = group.sort_values("t_epoch_s")
            codes, uniques = pd.factorize(group["handle"])
            by_booth[booth] = (group["t_epoch_s"].to_numpy(float), codes, group["max_interarrival_ms"].to_numpy(float),
                               group["packets"].to_numpy(float), len(uniques))
    out = []
    for booth, at, ok_value, duration_ms in matched[["booth", "at_epoch_s", "value", "duration_ms"]].itertuples(index=False):
        ok = ok_value == 0.0
        gaps = np.array([])
        if ok and str(booth) in by_booth:
            t, codes, interarrival, packets, n_handles = by_booth[str(booth)]
            before_lo, before_hi = np.searchsorted(t, [at - HANDOVER_PRESENT_BEFORE_S, at + 0.5], side="right")
            present = np.zeros(n_handles, dtype=bool)
            present[codes[before_lo:before_hi][packets[before_lo:before_hi] > 0]] = True
            lo, hi = np.searchsorted(t, [at, at + HANDOVER_GAP_WINDOW_S], side="right")
            worst = np.full(n_handles, -np.inf)
            np.fmax.at(worst, codes[lo:hi], interarrival[lo:hi])  # fmax: a NaN interval does not hide the others
            gaps = worst[np.isfinite(worst) & present]
        out.append({"booth": run.label(booth), "t_s": at - t0, "ok": ok, "duration_ms": None if pd.isna(duration_ms) else float(duration_ms),
                    "listeners": int(gaps.size), "gap_max_ms": float(gaps.max()) if gaps.size else None,
                    "gap_p50_ms": float(np.median(gaps)) if gaps.size else None, "at_epoch_s": at})
    return pd.DataFrame(out, columns=columns)


def caption_delays(run: RunData, t0: float) -> pd.DataFrame:
    """caption_delay_ms samples with booth labels and t_s."""
    delays = metric(run, "caption_delay_ms")
    if delays.empty:
        return pd.DataFrame(columns=["t_s", "booth", "ms"])
    return pd.DataFrame({"t_s": delays["t"] - t0, "booth": run.labels(delays["booth"]), "ms": delays["value"]})


CAPTION_BOOTH_COLUMNS = ["booth", "recogniser", "final_p50_ms", "final_p95_ms", "final_count", "first_partial_p50_ms",
                         "first_partial_p95_ms", "word_error_rate"]


def caption_booths(run: RunData) -> pd.DataFrame:
    """One row per captioned booth: what recognised it (captions_match.Recogniser), delays, mean word error rate."""
    frames = {name: metric(run, name) for name in ("caption_delay_ms", "caption_first_partial_delay_ms", "caption_word_error_rate")}
    booths = sorted({str(b) for f in frames.values() if not f.empty and "booth" in f for b in f["booth"].dropna()})
    rows = []
    for booth in booths:
        def of(name: str) -> pd.DataFrame:
            f = frames[name]
            return f[f["booth"].astype(str) == booth] if not f.empty and "booth" in f else f.iloc[0:0]

        final, first, wer = of("caption_delay_ms"), of("caption_first_partial_delay_ms"), of("caption_word_error_rate")
        recognisers = pd.concat([x["recogniser"] for x in (final, first, wer) if "recogniser" in x]).dropna().astype(str)
        rows.append({
            "booth": run.label(booth),
            "recogniser": ", ".join(sorted(set(recognisers))) or "unknown",
            "final_p50_ms": float(final["value"].median()) if len(final) else None,
            "final_p95_ms": float(final["value"].quantile(0.95)) if len(final) else None,
            "final_count": int(len(final)),
            "first_partial_p50_ms": float(first["value"].median()) if len(first) else None,
            "first_partial_p95_ms": float(first["value"].quantile(0.95)) if len(first) else None,
            "word_error_rate": float(wer["value"].mean()) if len(wer) else None,
        })
    return pd.DataFrame(rows, columns=CAPTION_BOOTH_COLUMNS)


def transcription_refusals(run: RunData) -> pd.DataFrame:
    """Booths whose transcription start got HTTP 429 (contract 7.2), first refusal time per booth."""
    refused = metric(run, "transcription_start_rejected")
    if refused.empty:
        return pd.DataFrame(columns=["booth", "t"])
    return refused.groupby(run.labels(refused["booth"]))["t"].min().rename("t").reset_index()


def listener_shape(run: RunData) -> dict[str, int]:
    """Sessions per booth and the peak of listeners receiving audio in the same second."""
    if run.listeners.empty:
        return {}
    rows = run.listeners[run.listeners["role"].isin(LISTENER_ROLES)]
    per_booth = rows.groupby("booth", observed=True)["handle"].nunique()
    receiving = rows[rows["packets"] > 0]
    peak = receiving.groupby(receiving["t_epoch_s"] // 1)["handle"].nunique().max() if not receiving.empty else 0
    return {"booths": int((per_booth > 0).sum()), "sessions": int(per_booth.sum()), "max_per_booth": int(per_booth.max()) if len(per_booth) else 0,
            "peak_receiving": int(peak or 0)}


def loss_and_jitter(run: RunData) -> dict[str, float] | None:
    if run.listeners.empty:
        return None
    rows = run.listeners[run.listeners["role"].isin(LISTENER_ROLES) & (run.listeners["expected"] > 0)]
    if rows.empty:
        return None
    loss = 100.0 * rows["lost"] / rows["expected"]
    return {"loss_mean_pct": float(loss.mean()), "loss_max_pct": float(loss.max()),
            "jitter_p95_ms": float(rows["jitter_ms"].dropna().quantile(0.95)) if rows["jitter_ms"].notna().any() else float("nan")}
