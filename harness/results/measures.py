"""From a run's files to the SLO metrics: the one place that says how each metric is computed.

Inputs are what the run streamed to disk: the media engines' files under ``media/`` (see
``harness/media/samples.py`` for their columns) and the Locust process's samples under ``samples/``
(``harness/results/run_folder.py``). Output is ``{metric name: numpy array of samples}`` for ``harness.results.slo.evaluate``,
with metric names from ``harness.results.slo.METRICS``. Everything is pandas; nothing here knows about Locust.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .browser_files import read_canaries, read_status
from .layout import MEDIA_DIR, media_engine, media_glob
from .run_folder import load_metric_samples
from .slo import METRICS

# A handover's listener-side gap is looked for in this window after the handover was started.
HANDOVER_GAP_WINDOW_S = 6.0
# A listener "hears" a handover only if it was receiving in this window before it started (issue 10 item 9:
# listeners that joined after the switch see no gap and must not make the handover pass).
HANDOVER_PRESENT_BEFORE_S = 2.0
LISTENER_ROLES = ("listener", "probe")
# After the listener target is reached, a listener still picks its language (think time) and sets up WHEP:
# the steady window starts this much later than the target (plus the scenario's listener think time).
MEDIA_SETUP_ALLOWANCE_S = 3.0
ENGINE_EXIT_GLOB = media_glob("exit")  # written by harness.media.bridge when an engine dies


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
            frame["handle"] = [_scoped(h, media_engine(path)) for h in frame["handle"]]
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _read_jsonl(paths: Iterable[Path]) -> list[dict]:
    records = []
    for path in paths:
        source = media_engine(path)
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
    media = Path(run_path) / MEDIA_DIR
    listeners = _read_csvs(sorted(media.glob(media_glob("listeners"))))
    events = pd.DataFrame(_read_jsonl(sorted(media.glob(media_glob("events")))))
    seconds = _read_jsonl(sorted(media.glob(media_glob("seconds"))))
    return listeners, events, seconds


def heard_handovers(listeners: pd.DataFrame, handovers: Sequence) -> tuple[np.ndarray, float | None]:
    """Per listener and handover: the longest packet-free stretch in the window after the handover started, and the
    share of completed handovers a listener heard (None without a completed one).

    Only listeners that were already receiving before the handover count: one that joined after the switch
    heard no gap, and a handover nobody heard is no data (issue 10 item 9), never a pass."""
    done = [h for h in handovers if h.ok]
    if not done:
        return np.array([]), None
    if listeners.empty:
        return np.array([]), 0.0
    gaps, heard = [], 0
    for h in done:
        booth = listeners[listeners["booth"] == h.booth]
        before = booth[(booth["t_epoch_s"] > h.at_epoch_s - HANDOVER_PRESENT_BEFORE_S) & (booth["t_epoch_s"] <= h.at_epoch_s + 0.5)
                       & (booth["packets"] > 0)]
        present = set(before["handle"])
        rows = booth[(booth["t_epoch_s"] > h.at_epoch_s) & (booth["t_epoch_s"] <= h.at_epoch_s + HANDOVER_GAP_WINDOW_S)
                     & booth["handle"].isin(present)]
        if not rows.empty:
            heard += 1
            gaps.extend(rows.groupby("handle")["max_interarrival_ms"].max().dropna().tolist())
    return np.asarray(gaps, dtype=float), heard / len(done)


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
        metrics["handover_gap_ms"] = heard_handovers(listeners, handovers)[0]
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


# --- coverage (the rule: harness.results.slo.COVERAGE_REQUIRED) ---


@dataclasses.dataclass(frozen=True)
class SteadyWindow:
    """A stretch of the load shape where the listener target holds, offsets from the load start."""

    start_s: float
    end_s: float
    listeners: int

    @property
    def listener_s(self) -> float:
        return max(0.0, self.end_s - self.start_s) * self.listeners


def steady_windows(scenario, ran_s: float | None = None) -> list[SteadyWindow]:
    """Where the scenario's listener count holds, after the ramp reached it and listeners had time to set up.

    Locust ramps every user (fixed ones first) at the stage's spawn rate, so the first stage reaches its target
    after (fixed + listeners) / rate. `ran_s` cuts the windows at the moment the run actually ended."""
    settle_s = scenario.load.think_time_s["listener"].max_s + MEDIA_SETUP_ALLOWANCE_S
    windows: list[SteadyWindow] = []
    previous_users, previous_reached_s = 0, 0.0
    for stage in scenario.load.stages:
        users = scenario.fixed_users + stage.listeners
        rate = stage.spawn_rate_per_s or 1.0
        # A ramp that did not finish in its stage goes on into the next one.
        reached_s = max(stage.start_s + abs(users - previous_users) / rate, previous_reached_s)
        previous_reached_s = reached_s
        holding = windows and windows[-1].end_s == stage.start_s and windows[-1].listeners == stage.listeners and users == previous_users
        start_s = windows.pop().start_s if holding else reached_s + settle_s
        end_s = stage.end_s if ran_s is None else min(stage.end_s, ran_s)
        if stage.listeners > 0 and end_s > start_s:
            windows.append(SteadyWindow(start_s, end_s, stage.listeners))
        previous_users = users
    return windows


@dataclasses.dataclass(frozen=True)
class MediaCoverage:
    """Listener-seconds the engines measured inside the steady windows, against those the scenario expected."""

    expected_listener_s: float
    measured_listener_s: float
    windows: tuple[SteadyWindow, ...]

    @property
    def ratio(self) -> float | None:
        if self.expected_listener_s <= 0:
            return None
        return min(1.0, self.measured_listener_s / self.expected_listener_s)

    def as_dict(self) -> dict:
        return {"expected_listener_s": round(self.expected_listener_s, 1), "measured_listener_s": round(self.measured_listener_s, 1),
                "ratio": None if self.ratio is None else round(self.ratio, 4),
                "windows": [dataclasses.asdict(w) for w in self.windows]}


def media_coverage(listeners: pd.DataFrame, windows: Sequence[SteadyWindow], start_epoch_s: float) -> MediaCoverage:
    """A listener-second counts when an engine wrote that listener's row for it (the instrument measured,
    whatever it measured: silence from a failing target is data, an engine that died is not)."""
    expected = sum(w.listener_s for w in windows)
    measured = 0.0
    if not listeners.empty and windows:
        rows = listeners[listeners["role"].isin(LISTENER_ROLES)]
        offset = rows["t_epoch_s"].to_numpy(float) - start_epoch_s
        second = np.floor(offset)
        for w in windows:
            inside = (offset > w.start_s) & (offset <= w.end_s)
            # Each listener counts at most `listeners` per second: a reconnecting listener is not two.
            per_second = pd.Series(rows["handle"].to_numpy()[inside]).groupby(second[inside]).nunique()
            measured += float(per_second.clip(upper=w.listeners).sum())
    return MediaCoverage(expected, measured, tuple(windows))


def coverage_by_metric(media: MediaCoverage, handovers_heard: float | None) -> dict[str, float]:
    """``{metric: share}`` for harness.results.slo.evaluate: listener-second coverage for every media metric, the
    share of handovers heard by a listener present before them for handover_gap_ms."""
    out: dict[str, float] = {}
    for name, metric in METRICS.items():
        if not metric.needs_coverage:
            continue
        value = handovers_heard if name == "handover_gap_ms" else media.ratio
        if value is not None:
            out[name] = value
    return out


def engine_deaths(run_path: Path) -> list[dict]:
    """Engines that died during the run: ``{engine, t_epoch_s, exit_code}`` from the bridge's exit files."""
    deaths = []
    for path in sorted((Path(run_path) / MEDIA_DIR).glob(ENGINE_EXIT_GLOB)):
        for record in _read_jsonl([path]):
            deaths.append({"engine": media_engine(path), "t_epoch_s": float(record.get("t_epoch_s", 0.0)),
                           "exit_code": record.get("exit_code")})
    return sorted(deaths, key=lambda d: d["t_epoch_s"])


def engine_measured_s(listeners: pd.DataFrame, engine: str, start_epoch_s: float, end_epoch_s: float) -> int:
    """Seconds of the run in which `engine` measured at least one listener."""
    if listeners.empty:
        return 0
    rows = listeners[listeners["handle"].astype(str).str.startswith(f"{engine}/") & listeners["role"].isin(LISTENER_ROLES)]
    t = rows["t_epoch_s"].to_numpy(float)
    t = t[(t >= start_epoch_s) & (t <= end_epoch_s + 1.0)]
    return int(np.unique(np.floor(t - start_epoch_s)).size)


def media_coverage_of_run(run_path: Path, scenario, start_epoch_s: float, end_epoch_s: float,
                          handovers: Sequence) -> tuple[MediaCoverage, float | None]:
    """The run's listener-second coverage over its steady windows, and the share of handovers heard."""
    listeners, _, _ = media_frames(run_path)
    if not listeners.empty:
        listeners = listeners[listeners["role"].isin(LISTENER_ROLES)]
    windows = steady_windows(scenario, ran_s=end_epoch_s - start_epoch_s)
    return media_coverage(listeners, windows, start_epoch_s), heard_handovers(listeners, handovers)[1]


# --- run events: what happened to the instrument, with a time (summary.json "events") ---


def _offset(t_epoch_s: float, start_epoch_s: float) -> str:
    return f"+{t_epoch_s - start_epoch_s:.0f} s"


def engine_death_events(run_path: Path, start_epoch_s: float, end_epoch_s: float) -> list[dict]:
    """One event per media engine that died: when, how, and how much audio it measured before."""
    listeners, _, _ = media_frames(run_path)
    ran_s = max(0.0, end_epoch_s - start_epoch_s)
    events = []
    for death in engine_deaths(run_path):
        measured_s = engine_measured_s(listeners, death["engine"], start_epoch_s, end_epoch_s)
        code = death["exit_code"]
        how = f"exit code {code}" if code is not None else "exit code unknown"
        events.append({
            "t": death["t_epoch_s"], "kind": "engine_died", "offset_s": round(death["t_epoch_s"] - start_epoch_s, 1),
            "engine": death["engine"], "exit_code": code, "measured_s": measured_s, "ran_s": round(ran_s),
            "text": (f"media engine {death['engine']} died at {_offset(death['t_epoch_s'], start_epoch_s)} ({how}); "
                     f"audio measured for {measured_s} of {ran_s:.0f} s"),
        })
    return events


def booth_mismatch_event(text: str, t_epoch_s: float, start_epoch_s: float | None) -> dict:
    """A joined booth that is not the provisioned one (issue 11 item 7): the run stopped there, not valid evidence."""
    offset_s = round(t_epoch_s - start_epoch_s, 1) if start_epoch_s is not None else 0.0
    return {"t": t_epoch_s, "kind": "booth_mismatch", "offset_s": offset_s, "text": text}


def worker_lost_event(worker: str, lost_at_epoch_s: float, start_epoch_s: float) -> dict:
    return {"t": lost_at_epoch_s, "kind": "worker_lost", "offset_s": round(lost_at_epoch_s - start_epoch_s, 1), "worker": worker,
            "text": f"Locust worker {worker} was lost at {_offset(lost_at_epoch_s, start_epoch_s)}: its users and media stop there"}


def browser_metrics(run_path: Path) -> dict[str, np.ndarray]:
    """The browser_* SLO metrics from the canaries' per-second files (harness/results/browser_files.py).

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
