"""From a run's files to the SLO metrics: the one place that says how each metric is computed.

Inputs are what the run streamed to disk: the media engines' files under ``media/`` (see
``harness/media/samples.py`` for their columns) and the Locust process's samples under ``samples/``
(``harness/results.py``). Output is ``{metric name: numpy array of samples}`` for ``harness.slo.evaluate``,
with metric names from ``harness.slo.METRICS``. Everything is pandas; nothing here knows about Locust.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .browser.files import read_canaries, read_status
from .results import load_metric_samples

# A handover's listener-side gap is looked for in this window after the handover was started.
HANDOVER_GAP_WINDOW_S = 6.0
LISTENER_ROLES = ("listener", "probe")


def _source(path: Path) -> str:
    """The engine a media file came from: ``e0``, or ``w1.e0`` for a distributed worker's engine."""
    return path.name.split("-")[1]


def _scoped(record_handle, source: str) -> str:
    # Handles are unique per engine only; every worker has an engine e0.
    return f"{source}/{record_handle}"


def _read_csvs(paths: Iterable[Path]) -> pd.DataFrame:
    frames = []
    for path in paths:
        try:
            frame = pd.read_csv(path, on_bad_lines="skip")
        except (pd.errors.EmptyDataError, pd.errors.ParserError):
            continue  # a file cut off mid-write by a crash still leaves the others usable
        if "handle" in frame:
            frame["handle"] = [_scoped(h, _source(path)) for h in frame["handle"]]
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _read_jsonl(paths: Iterable[Path]) -> list[dict]:
    records = []
    for path in paths:
        source = _source(path)
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue  # the last line of a crashed writer
                if "handle" in record:
                    record["handle"] = _scoped(record["handle"], source)
                records.append(record)
    return records


def media_frames(run_path: Path) -> tuple[pd.DataFrame, pd.DataFrame, list[dict]]:
    media = Path(run_path) / "media"
    listeners = _read_csvs(sorted(media.glob("media-*-listeners.csv")))
    events = pd.DataFrame(_read_jsonl(sorted(media.glob("media-*-events.jsonl"))))
    seconds = _read_jsonl(sorted(media.glob("media-*-seconds.jsonl")))
    return listeners, events, seconds


def handover_gaps_ms(listeners: pd.DataFrame, handovers: Sequence) -> np.ndarray:
    """Per listener and handover: the longest packet-free stretch in the window after the handover started."""
    if listeners.empty:
        return np.array([])
    gaps = []
    for h in handovers:
        if not h.ok:
            continue
        rows = listeners[(listeners["booth"] == h.booth)
                         & (listeners["t_epoch_s"] > h.at_epoch_s)
                         & (listeners["t_epoch_s"] <= h.at_epoch_s + HANDOVER_GAP_WINDOW_S)]
        if not rows.empty:
            gaps.extend(rows.groupby("handle")["max_interarrival_ms"].max().dropna().tolist())
    return np.asarray(gaps, dtype=float)


def collect(run_path: Path, handovers: Sequence, transcribed: Iterable[str] = (), captioned: Iterable[str] = (),
            listener_users: int = 0) -> dict[str, np.ndarray]:
    metrics: dict[str, np.ndarray] = dict(load_metric_samples(Path(run_path)))
    listeners, events, seconds = media_frames(run_path)
    if not listeners.empty:
        listeners = listeners[listeners["role"].isin(LISTENER_ROLES)]
        probes = listeners[listeners["role"] == "probe"]
        # Mouth-to-ear: decoded-marker latency of probe listeners (media-design 4); payload-hash latency
        # of tap listeners when a run has no probes (it reads ~80 ms lower: no jitter buffer, no decode).
        m2e = probes["marker_latency_ms"].dropna() if "marker_latency_ms" in probes else pd.Series(dtype=float)
        metrics["mouth_to_ear_latency_ms"] = (m2e if not m2e.empty else listeners["latency_p50_ms"].dropna()).to_numpy(float)
        expected = listeners[listeners["expected"] > 0]
        metrics["packet_loss_pct"] = (100.0 * expected["lost"] / expected["expected"]).to_numpy(float)
        metrics["jitter_ms"] = listeners["jitter_ms"].dropna().to_numpy(float)
        metrics["audio_gap_ms"] = listeners.loc[listeners["silence_max_ms"] > 0, "silence_max_ms"].to_numpy(float)
        metrics["handover_gap_ms"] = handover_gaps_ms(listeners, handovers)
    if not events.empty and "event" in events:
        setups = events[events["event"] == "setup"]
        listener_setups = setups[setups["role"].isin(LISTENER_ROLES)]
        if "first_packet_ms" in listener_setups:
            metrics["whep_time_to_first_audio_ms"] = listener_setups.loc[listener_setups["ok"] == True, "first_packet_ms"].dropna().to_numpy(float)  # noqa: E712
        publisher_setups = setups[setups["role"] == "publisher"]
        if "connected_ms" in publisher_setups:
            metrics["whip_setup_ms"] = publisher_setups.loc[publisher_setups["ok"] == True, "connected_ms"].dropna().to_numpy(float)  # noqa: E712
        setups_tried = listener_setups["handle"].nunique()
        receiving = listeners.loc[listeners["packets"] > 0, "handle"].nunique() if not listeners.empty else 0
        # Listeners that never got as far as WHEP (blocked, errors before media) count as not receiving.
        started = max(setups_tried, listener_users)
        if started:
            metrics["listeners_receiving_ratio"] = np.array([receiving / started])
    elif listener_users:
        metrics["listeners_receiving_ratio"] = np.array([0.0])
    health = [s.get("health") or {} for s in seconds]
    cpu = [h["cpu_pct"] for h in health if h.get("cpu_pct") is not None]
    lag = [h["loop_lag_p95_ms"] for h in health if h.get("loop_lag_p95_ms") is not None]
    if cpu:
        metrics["generator_cpu_pct"] = np.concatenate([metrics.get("generator_cpu_pct", np.array([])), cpu])
    if lag:
        metrics["generator_loop_lag_ms"] = np.concatenate([metrics.get("generator_loop_lag_ms", np.array([])), lag])
    metrics.update(browser_metrics(run_path))
    canary_cpu = browser_cpu_pct(run_path)
    if len(canary_cpu):
        # Canaries are load generators too: a starved browser's figures measure the harness, not the target.
        metrics["generator_cpu_pct"] = np.concatenate([metrics.get("generator_cpu_pct", np.array([])), canary_cpu])
    transcribed = set(transcribed)
    if transcribed:
        metrics["captioned_booths_ratio"] = np.array([len(transcribed & set(captioned)) / len(transcribed)])
    return metrics


def counts(run_path: Path, handovers: Sequence) -> dict[str, int]:
    listeners, events, _ = media_frames(run_path)
    result = {"handovers": len(handovers), "handovers_ok": sum(1 for h in handovers if h.ok)}
    if not listeners.empty:
        result["listener_sessions"] = int(listeners.loc[listeners["role"].isin(LISTENER_ROLES), "handle"].nunique())
        result["packets_received"] = int(listeners["packets"].sum())
    if not events.empty and "event" in events:
        setups = events[events["event"] == "setup"]
        result["media_setups_failed"] = int((setups["ok"] == False).sum())  # noqa: E712
    return result


def engine_saturation(run_path: Path) -> tuple[int, int, float | None, float | None]:
    """(saturated engine-seconds, all engine-seconds, first and last saturated second as epoch s)."""
    _, _, seconds = media_frames(run_path)
    flagged = [s.get("t_epoch_s") for s in seconds if (s.get("health") or {}).get("saturated")]
    return len(flagged), len(seconds), (min(flagged) if flagged else None), (max(flagged) if flagged else None)


def browser_metrics(run_path: Path) -> dict[str, np.ndarray]:
    """The browser_* SLO metrics from the canaries' per-second files (harness/browser/files.py).

    Mouth-to-ear: every marker a canary listener heard. Jitter buffer and concealment: one sample per canary
    listener and second that received packets. Receiving ratio: canary listeners that received any packet /
    canary listeners the run started (one that died before playing counts as not receiving); no canary started,
    no sample (a scenario that asks for them then reads no_data, never a pass)."""
    canaries = read_canaries(run_path)
    started = {s.get("canary") for s in read_status(run_path) if s.get("kind") == "started" and s.get("role", "listener") == "listener"}
    started |= {name for name, data in canaries.items() if any(r.get("role") == "listener" for r in data["seconds"])}
    m2e, jbd, concealed, receiving = [], [], [], set()
    for name, data in canaries.items():
        for row in data["seconds"]:
            if row.get("role") != "listener":
                continue
            m2e.extend(row.get("latencies_ms") or [])
            if row.get("packets", 0) > 0:
                receiving.add(name)
                if row.get("jitter_buffer_delay_ms") is not None:
                    jbd.append(row["jitter_buffer_delay_ms"])
                if row.get("concealed_pct") is not None:
                    concealed.append(row["concealed_pct"])
    metrics: dict[str, np.ndarray] = {}
    if m2e:
        metrics["browser_mouth_to_ear_latency_ms"] = np.asarray(m2e, dtype=float)
    if jbd:
        metrics["browser_jitter_buffer_delay_ms"] = np.asarray(jbd, dtype=float)
    if concealed:
        metrics["browser_concealed_pct"] = np.asarray(concealed, dtype=float)
    if started:
        metrics["browser_listeners_receiving_ratio"] = np.array([len(receiving & started) / len(started)])
    return metrics


def browser_cpu_pct(run_path: Path) -> np.ndarray:
    values = [row["health"]["cpu_pct"] for data in read_canaries(run_path).values() for row in data["seconds"]
              if (row.get("health") or {}).get("cpu_pct") is not None]
    return np.asarray(values, dtype=float)
