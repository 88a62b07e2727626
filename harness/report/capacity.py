"""Capacity statements and recommendations: the run's numbers said in plain words an event lead can sign.

Owns the wording. Every statement is derived from measured data (``series``, ``verdicts``, ``health``,
probe findings) and names its numbers; nothing is asserted that the run did not measure. Each
recommendation names the finding or measurement it comes from and the contract section behind it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pandas as pd

from .faults import Outage
from .findings import Finding, Severity
from .health import GeneratorHealthView
from .rundata import RunData
from .verdicts import Verdicts


@dataclasses.dataclass(frozen=True)
class Statement:
    topic: str  # audience, audio, first audio, handovers, captions, captions:<booth>, portal, generator, probe:<name>
    text: str
    ok: bool  # False when it states a breach, a refusal or a limit that was reached


@dataclasses.dataclass(frozen=True)
class Recommendation:
    text: str
    because: str  # the finding or measurement it is tied to


def _ms(value: float) -> str:
    return f"{value:,.0f} ms" if value >= 10 else f"{value:.1f} ms"


def _slo_note(verdicts: Verdicts, metric_name: str) -> tuple[str, bool]:
    row = verdicts.row(metric_name)
    if row is None or row.state == "no_data":
        return "", True
    if row.state == "insufficient_data":
        return (f" — not judged against {row.threshold_text}: its samples cover {row.coverage_text} of the steady state, "
                f"too little to be evidence"), False
    if row.state == "fail":
        return f" — does not meet the objective {row.threshold_text}", False
    return f" (objective {row.threshold_text}: met)", True


@dataclasses.dataclass(frozen=True)
class CapacityInputs:
    """The aggregates the statements are made from (computed once by the builder, shared with the plots)."""

    shape: dict[str, int]
    m2e: dict[str, float] | None
    m2e_source: str | None
    loss: dict[str, float] | None
    setups: pd.DataFrame
    handovers: pd.DataFrame
    captions: pd.DataFrame
    refusals: pd.DataFrame
    http: dict[str, float] | None
    http_peak_rps: float | None
    http_error_pct: float | None
    # One row per captioned booth (series.caption_booths): recogniser, delays, word error rate.
    caption_booths: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)


_RECOGNISER_TEXT = {"speech": "a speech recogniser", "stand-in": "the marker stand-in (no speech recognition)"}


def _caption_booth_text(row) -> str:
    def sec(ms) -> str:
        return "n/a" if ms is None or pd.isna(ms) else f"{ms / 1000:.1f} s"

    who = " and ".join(_RECOGNISER_TEXT.get(r.strip(), r.strip()) for r in str(row.recogniser).split(","))
    text = (f"Booth {row.booth}, captioned by {who}: final p50 {sec(row.final_p50_ms)} / p95 {sec(row.final_p95_ms)} "
            f"after the audio ({row.final_count} samples), first caption p50 {sec(row.first_partial_p50_ms)} / "
            f"p95 {sec(row.first_partial_p95_ms)}")
    if row.word_error_rate is not None and not pd.isna(row.word_error_rate):
        text += f", word error rate {100 * row.word_error_rate:.0f} %"
    return text + "."


def statements(run: RunData, inputs: CapacityInputs, verdicts: Verdicts, health: GeneratorHealthView,
               findings: list[Finding], outages: list[Outage] = ()) -> list[Statement]:
    out: list[Statement] = []
    # What went wrong during the run comes first, in words with its time (the plots only show it).
    for event in verdicts.events:
        out.append(Statement("run", f"{str(event.get('text', '')).rstrip('.')}.", False))
    for outage in outages:
        out.append(Statement("outage", outage.describe(), False))
    shape = inputs.shape
    event = run.scenario.get("event") or {}
    rooms = len(event.get("rooms") or [])
    if shape and inputs.m2e:
        note, ok = _slo_note(verdicts, "mouth_to_ear_latency_ms")
        where = f" in {rooms} room{'s' if rooms != 1 else ''}" if rooms else ""
        out.append(Statement("audience", (
            f"Carried {shape['booths']} booth{'s' if shape['booths'] != 1 else ''}{where} x up to {shape['max_per_booth']} listeners "
            f"({shape['sessions']} listener sessions, {shape['peak_receiving']} receiving audio at the peak) at p95 mouth-to-ear "
            f"{_ms(inputs.m2e['p95'])} (p50 {_ms(inputs.m2e['p50'])}, p99 {_ms(inputs.m2e['p99'])}; {inputs.m2e_source}){note}."), ok))
    elif not shape and not run.is_probe_run:
        out.append(Statement("audience", "No listener audio was measured (no media listener data): this run says nothing about audio capacity.", False))
    if inputs.loss:
        loss_note, loss_ok = _slo_note(verdicts, "packet_loss_pct")
        jitter_note, jitter_ok = _slo_note(verdicts, "jitter_ms")
        # Each figure carries its own objective, so neither reads as judged by the other's.
        out.append(Statement("audio", (
            f"Packet loss averaged {inputs.loss['loss_mean_pct']:.2f} % per listener-second (worst second {inputs.loss['loss_max_pct']:.1f} %)"
            f"{loss_note}; jitter p95 {_ms(inputs.loss['jitter_p95_ms'])}{jitter_note}."), loss_ok and jitter_ok))
    setups = inputs.setups
    listeners = setups[setups["role"].isin(("listener", "probe"))] if not setups.empty else setups
    if not listeners.empty:
        ok_rows = listeners[listeners["ok"]]
        failed = listeners[~listeners["ok"]]
        first = ok_rows["first_packet_ms"].dropna()
        note, ok = _slo_note(verdicts, "whep_time_to_first_audio_ms")
        text = f"{len(ok_rows)} of {len(listeners)} listener WHEP sessions started"
        if not first.empty:
            text += f"; listeners heard the first audio p95 {_ms(first.quantile(0.95))} after their WHEP request{note}"
        if not failed.empty:
            phases = failed["phase"].fillna("unknown").value_counts()
            text += "; failed in phase " + ", ".join(f"{p} ({n})" for p, n in phases.items())
        out.append(Statement("first audio", text + ".", ok and failed.empty))
    handovers = inputs.handovers
    if not handovers.empty:
        done = handovers[handovers["ok"]]
        note, ok = _slo_note(verdicts, "handover_gap_ms")
        text = f"{len(done)} of {len(handovers)} handovers completed"
        gaps = done.dropna(subset=["gap_max_ms"])
        if not gaps.empty:
            worst = gaps.loc[gaps["gap_max_ms"].idxmax()]
            text += (f"; the longest silence a listener heard across one was {_ms(worst['gap_max_ms'])} "
                     f"({worst['booth']} at +{worst['t_s']:.0f} s){note}")
        unheard = done[done["listeners"] == 0]
        if not unheard.empty:
            # Issue 10 item 9: a switch nobody was listening to measured nothing.
            text += (f"; {len(unheard)} handover(s) had no listener present to hear them ("
                     + ", ".join(f"{b} at +{t:.0f} s" for b, t in unheard[["booth", "t_s"]].itertuples(index=False))
                     + "): no data, not a pass")
            ok = False
        out.append(Statement("handovers", text + ".", ok and len(done) == len(handovers)))
    captions = inputs.captions
    transcribed = [ref for ref, b in ((run.event or {}).get("booths") or {}).items() if isinstance(b, dict) and b.get("transcribed")]
    if not captions.empty:
        note, ok = _slo_note(verdicts, "caption_delay_ms")
        booths = captions["booth"].nunique()
        out.append(Statement("captions", (
            f"Captions of {booths} transcribed booth{'s' if booths != 1 else ''} arrived p95 {captions['ms'].quantile(0.95) / 1000:.1f} s "
            f"after the audio (p50 {captions['ms'].median() / 1000:.1f} s, {len(captions)} caption samples){note}."), ok))
    for row in inputs.caption_booths.itertuples(index=False):
        out.append(Statement(f"captions:{row.booth}", _caption_booth_text(row), row.final_count > 0))
    if captions.empty and transcribed:
        out.append(Statement("captions", f"No caption arrived for the {len(transcribed)} transcribed booth(s) ({', '.join(transcribed)}).", False))
    if not inputs.refusals.empty:
        refused = len(inputs.refusals)
        total = max(len(transcribed), refused)
        first_refused = total - refused + 1
        out.append(Statement("captions", (
            f"Transcription was refused (HTTP 429, the portal's worker cap, contract 7.2) for {refused} of {total} transcribed booths "
            f"({', '.join(inputs.refusals['booth'])}): captions stop from the {_ordinal(first_refused)} transcribed booth."), False))
    if inputs.http:
        note, ok = _slo_note(verdicts, "http_error_rate")
        text = (f"The portal answered {inputs.http['count']:,} HTTP requests (peak {inputs.http_peak_rps:.1f} req/s) "
                f"with p95 {_ms(inputs.http['p95'])} and p99 {_ms(inputs.http['p99'])}; {inputs.http_error_pct:.2f} % failed{note}")
        top = _top_failure(run)
        if top:
            text += f". Most frequent failure: {top}"
        out.append(Statement("portal", text + ".", ok))
    warning = health.warning()
    if warning:
        out.append(Statement("generator", warning, not health.saturated))
    elif health.measured and not verdicts.events:
        out.append(Statement("generator", "The load generator kept up for the whole run (no saturated second in the media engines or the Locust hub).", True))
    for finding in findings:
        knee = f"; knee at {finding.knee.x_column} = {finding.knee.x:g} ({finding.method})" if finding.knee else f" ({finding.method}; no knee found)"
        out.append(Statement(f"probe:{finding.probe}", f"{finding.title}: {finding.limit_text()}{knee}.", finding.severity is Severity.INFO))
    return out


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _top_failure(run: RunData) -> str | None:
    failures = run.failures
    if failures.empty or "Occurrences" not in failures:
        return None
    row = failures.sort_values("Occurrences", ascending=False).iloc[0]
    return f"{row.get('Method', '')} {row.get('Name', '')}: {row.get('Error', '')} ({int(row['Occurrences'])}x)".strip()


def recommendations(run: RunData, inputs: CapacityInputs, verdicts: Verdicts, health: GeneratorHealthView,
                    findings: list[Finding]) -> list[Recommendation]:
    out: list[Recommendation] = []
    for finding in findings:
        if finding.recommendation:
            out.append(Recommendation(finding.recommendation, f"probe {finding.probe}: {finding.limit_text()}"))
    if not inputs.refusals.empty:
        out.append(Recommendation(
            "Plan at most 10 transcribed booths per portal process: the worker cap is hard-coded (contract 7.2, 14.2) and the 11th start "
            "is refused; stop workers cleanly (leaked slots stay taken, contract 14.3) or caption the remaining booths another way.",
            f"{len(inputs.refusals)} transcription start(s) refused with HTTP 429"))
    errors = _failure_text(run)
    if "429" in errors:
        out.append(Recommendation(
            "Rate limits answered 429 (contract 10, 14.6-14.8): spread listeners over client IPs or carry the join-code cookie, reuse "
            "sessions instead of logging in again, and keep listener-token requests under 60/min/IP.", "HTTP 429 in Locust's failures"))
    if "500" in errors or "database is locked" in errors:
        out.append(Recommendation(
            "HTTP 500s point at the database (contract 9, 14.9-14.10): SQLite serialises writers and the pool holds 15 sessions; keep write "
            "bursts (joins, admin forms) away from show time or move to a server database.", "HTTP 500 in Locust's failures"))
    failed_handovers = inputs.handovers[~inputs.handovers["ok"]] if not inputs.handovers.empty else inputs.handovers
    if not failed_handovers.empty:
        out.append(Recommendation(
            "Handovers failed: after booth:set-active or an active interpreter leaving, handoff_state stays pending/completed and every "
            "further handoff is refused until the booth empties (contract 5.3, 14.15); brief interpreters to hand over by offer/accept only.",
            f"{len(failed_handovers)} failed handover(s)"))
    for row in verdicts.rows:
        if row.state == "no_data" and row.required:
            out.append(Recommendation(f"Measure {row.metric} before signing: the objective {row.threshold_text} got no samples, which is not a pass.",
                                      f"SLO {row.metric}: no data"))
        elif row.state == "insufficient_data" and row.required:
            out.append(Recommendation(f"Measure {row.metric} over the whole steady state before signing: its samples cover "
                                      f"{row.coverage_text} of it, which is not a pass.", f"SLO {row.metric}: insufficient data"))
    if verdicts.invalid_reasons:
        out.append(Recommendation("Rerun before signing: this run is not valid evidence (" + "; ".join(verdicts.invalid_reasons) + ").",
                                  "run validity"))
    if health.saturated:
        out.append(Recommendation(
            "Rerun with more generator capacity (scenario media.engines, more cores, or a second load machine) before signing: "
            "while the generator was saturated it, not the target, set the numbers.", "generator health: saturated"))
    return out


def _failure_text(run: RunData) -> str:
    if run.failures.empty or "Error" not in run.failures:
        return ""
    return " ".join(str(e) for e in run.failures["Error"].dropna())


def as_dicts(items: list[Any]) -> list[dict[str, Any]]:
    return [dataclasses.asdict(i) for i in items]
