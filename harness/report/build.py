"""The sign-off report of one run folder: ``assemble`` reads and judges it into a ``Report`` record.

Owns the order of work: read the folder once (``rundata``), aggregate (``series``, ``health``,
``verdicts``), word it (``capacity``), draw (``plots``); ``write.build_report`` then writes report.html,
report.pdf, summary.md and verdict.json into the run folder (``render``, ``pdf``). The ``Report`` record built here is the only
input of the writers, so the four files always say the same thing.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from .. import __version__
from ..results.run_folder import utc_now_iso
from . import capacity, plots, series
from .browser import BrowserSection, browser_section
from .capacity import CapacityInputs, Recommendation, Statement
from .faults import Outage, outages
from .findings import Finding, read_findings
from .health import GeneratorHealthView, generator_health
from ..results.percentiles import percentiles
from .rundata import RunData
from .verdicts import Verdicts, verdicts


@dataclasses.dataclass(frozen=True)
class ReportPaths:
    html: Path
    pdf: Path
    summary_md: Path
    verdict_json: Path


@dataclasses.dataclass
class Report:
    run_id: str
    run_path: Path
    generated_at: str
    overview: list[tuple[str, str]]  # (label, value) rows: target, version, configuration, scenario, harness
    verdicts: Verdicts
    health: GeneratorHealthView
    statements: list[Statement]
    recommendations: list[Recommendation]
    findings: list[Finding]
    plots: list[plots.Plot]
    missing: list[str]
    key_numbers: dict[str, float | None]
    scenario_name: str
    status: str
    outages: list[Outage] = dataclasses.field(default_factory=list)
    browser: BrowserSection | None = None  # Chromium canaries, when the run had any (or asked for them)


def _fmt_stage(stage: dict[str, Any]) -> str:
    return f"{stage.get('listeners')} listeners for {stage.get('duration_s', 0):g} s (at {stage.get('spawn_rate_per_s', 0):g}/s)"


def overview(run: RunData) -> list[tuple[str, str]]:
    meta = run.run_meta or {}
    scenario = run.scenario
    target = meta.get("target") or {}
    harness = meta.get("harness") or {}
    machine = meta.get("machine") or {}
    timing = (run.summary or {}).get("timing") or {}
    rows = [
        ("Run", f"{run.run_id} — status {meta.get('status', 'unknown')}"),
        ("Target", str(target.get("url") or "unknown (run.json missing)")
         + ("" if scenario.get("target", {}).get("host") else " (embedded reference stack)" if target.get("url") else "")),
        ("Target version", str(target.get("version") or "not reported by the target")),
    ]
    if scenario:
        t = scenario.get("target") or {}
        event = scenario.get("event") or {}
        booths = [b for room in event.get("rooms") or [] for b in room.get("booths") or []]
        media = scenario.get("media") or {}
        handovers = scenario.get("handovers") or {}
        load = scenario.get("load") or {}
        rows += [
            ("Scenario", f"{scenario.get('name')} — {scenario.get('description', '').strip()}"),
            ("Configuration seen", f"auth mode {t.get('auth_mode')}, provisioning by {t.get('provisioning')}, "
                                   f"keep event {'yes' if t.get('keep') else 'no'}"),
            ("Event", f"{len(event.get('rooms') or [])} room(s), {len(booths)} booth(s): "
                      + ", ".join(f"{b['room']}/{b['language']} ({b['interpreters']} interpreters, {b['listeners']} listeners"
                                  f"{', transcribed' if b.get('transcribed') else ''})" for b in booths[:12])
                      + (f" and {len(booths) - 12} more" if len(booths) > 12 else "")),
            ("Load", "; ".join(_fmt_stage(s) for s in load.get("stages") or [])
                     + f"; {load.get('admins', 0)} admin(s), {load.get('coordinators', 0)} coordinator(s)"),
            ("Handovers", f"{handovers.get('method')}, {len(handovers.get('schedule') or [])} scheduled"),
            ("Media", f"{media.get('engines')} engine(s), probe listener share {media.get('probe_listener_share')}, "
                      f"silence threshold {media.get('silence_threshold_ms')} ms"),
        ]
    rows += [
        ("Timing", f"{timing.get('started_at') or meta.get('started_at')} to {timing.get('ended_at') or meta.get('ended_at') or 'unknown'}"
                   + (f" ({timing['duration_s']:.0f} s of load)" if timing.get("duration_s") is not None else "")),
        ("Harness", f"voxload {harness.get('version', 'unknown')} (git {str(harness.get('git_sha') or 'unknown')[:12]}); report by voxload {__version__}"),
        ("Machine", f"{machine.get('cpu_usable', '?')} usable CPUs, Python {machine.get('python', '?')}, {machine.get('platform', '?')}"),
        ("Command", " ".join(meta.get("command") or []) or "unknown"),
    ]
    return rows


def _key_numbers(inputs: CapacityInputs) -> dict[str, float | None]:
    setups = inputs.setups
    first = setups.loc[setups["ok"] & setups["role"].isin(("listener", "probe")), "first_packet_ms"].dropna() if not setups.empty else setups
    gaps = inputs.handovers["gap_max_ms"].dropna() if not inputs.handovers.empty else inputs.handovers
    def get(numbers: dict[str, float] | None, key: str) -> float | None:
        return numbers.get(key) if numbers else None

    return {
        "mouth_to_ear_p50_ms": get(inputs.m2e, "p50"),
        "mouth_to_ear_p95_ms": get(inputs.m2e, "p95"),
        "mouth_to_ear_p99_ms": get(inputs.m2e, "p99"),
        "time_to_first_audio_p95_ms": float(first.quantile(0.95)) if len(first) else None,
        "http_p50_ms": get(inputs.http, "p50"),
        "http_p95_ms": get(inputs.http, "p95"),
        "http_p99_ms": get(inputs.http, "p99"),
        "http_peak_rps": inputs.http_peak_rps,
        "http_error_pct": inputs.http_error_pct,
        "caption_delay_p95_ms": float(inputs.captions["ms"].quantile(0.95)) if not inputs.captions.empty else None,
        "handover_gap_max_ms": float(gaps.max()) if len(gaps) else None,
        "packet_loss_mean_pct": get(inputs.loss, "loss_mean_pct"),
        "listener_sessions": float(inputs.shape["sessions"]) if inputs.shape else None,
        "peak_listeners_receiving": float(inputs.shape["peak_receiving"]) if inputs.shape else None,
    }


def assemble(run: RunData) -> Report:
    """Every number, sentence and figure of the report, from one read of the run folder."""
    missing = list(run.missing)
    findings = read_findings(run.path, missing)
    t0 = run.start_epoch_s or 0.0
    duration_s = series.run_duration_s(run, t0)
    bin_s = series.bin_width_s(duration_s)
    judged = verdicts(run)
    health = generator_health(run, t0)
    faults = outages(run, t0)
    # What the instrument did not see is missing data, said with its time.
    for event in judged.events:
        if event.get("kind") in ("engine_died", "worker_lost"):
            missing.append(f"{event.get('text')}: nothing it measured exists after that")
    if not run.is_probe_run and (run.summary is None or (run.run_meta or {}).get("status") == "interrupted"):
        missing.append(f"the run did not reach its end (status {(run.run_meta or {}).get('status', 'unknown')}): "
                       "every number here is partial")
    http = series.metric(run, "http_req_duration_ms")
    errors = series.metric(run, "http_error_rate")
    timeline = series.load_timeline(run, t0, bin_s)
    dist = series.mouth_to_ear_by_booth(run)
    inputs = CapacityInputs(
        shape=series.listener_shape(run),
        m2e=series.overall_mouth_to_ear(run),
        m2e_source=dist.source if dist else None,
        loss=series.loss_and_jitter(run),
        setups=series.media_setups(run),
        handovers=series.handovers(run, t0),
        captions=series.caption_delays(run, t0),
        caption_booths=series.caption_booths(run),
        refusals=series.transcription_refusals(run),
        http=percentiles(http["value"].to_numpy()) if not http.empty else None,
        http_peak_rps=float(timeline["rps"].max()) if "rps" in timeline and timeline["rps"].notna().any() else None,
        http_error_pct=100.0 * float(errors["value"].mean()) if not errors.empty else None,
    )
    figures = [
        ("load over time", plots.load_over_time(timeline, health, bin_s)),
        ("mouth-to-ear per booth", plots.mouth_to_ear(dist, judged.row("mouth_to_ear_latency_ms"))),
        ("time to first audio", plots.time_to_first_audio(inputs.setups, judged.row("whep_time_to_first_audio_ms"))),
        ("handover gaps", plots.handover_gaps(inputs.handovers, judged.row("handover_gap_ms"))),
        ("caption delays", plots.caption_delays(inputs.captions, judged.row("caption_delay_ms"), bin_s)),
        ("generator health", plots.generator(run.engine_seconds, series.metric(run, "generator_loop_lag_ms"), health, t0)),
    ]
    figures += [(f"probe {f.probe} curve", plots.probe_curve(f)) for f in findings]
    is_probe_run = run.is_probe_run
    for name, plot in figures:
        # A probe-only folder has no rehearsal plots by design; elsewhere an absent plot is a gap worth saying.
        if plot is None and not (is_probe_run and not name.startswith("probe")):
            missing.append(f"no {name} plot: the run has no data for it")
    scenario_name = str((run.summary or {}).get("scenario") or run.scenario.get("name") or ("probes" if findings else "unknown"))
    return Report(
        run_id=run.run_id,
        run_path=run.path,
        generated_at=utc_now_iso(),
        overview=overview(run),
        verdicts=judged,
        health=health,
        statements=capacity.statements(run, inputs, judged, health, findings, faults),
        recommendations=capacity.recommendations(run, inputs, judged, health, findings),
        findings=findings,
        plots=[plot for _, plot in figures if plot is not None],
        missing=missing,
        key_numbers=_key_numbers(inputs),
        scenario_name=scenario_name,
        status=str((run.run_meta or {}).get("status", "unknown")),
        outages=faults,
        browser=browser_section(run.path, run.listeners),
    )
