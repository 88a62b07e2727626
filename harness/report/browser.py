"""The report's browser section: what real Chromium canaries measured, beside the synthetic listeners, and
what the target's own pages got wrong, in plain words.

Input: the canaries' files (harness/results/browser_files.py) and the run's listener frame (rundata). Output: one
``BrowserSection`` record the HTML and Markdown writers print. Calibration compares, per booth, the browser's
mouth-to-ear with the synthetic probe listeners' (decoded in aiortc) over the same run, and states the offset
and what each figure includes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from ..results.browser_files import read_canaries, read_status
from ..browser.pagelog import PageProblem, summarise

# What each synthetic figure includes (media-design 3 and 4): the reader must not take them for a browser's.
SYNTHETIC_PROBE_LABEL = ("synthetic probe listener (aiortc, decoded audio markers): includes aiortc's fixed 80 ms "
                         "jitter-buffer prefetch (4 x 20 ms) and Opus decode, no adaptive jitter buffer")
SYNTHETIC_TAP_LABEL = "synthetic tap listener (aiortc, payload identity at RTP arrival): no jitter buffer, no decode"
BROWSER_LABEL = ("Chromium canary (markers in the audio its page played): NetEq adaptive jitter buffer and decode, up to "
                 "the hand-over for playout; the sound card is not included")

_KIND_WORDS = {
    PageProblem.UNCAUGHT_EXCEPTION.value: "threw an uncaught exception",
    PageProblem.CONSOLE_ERROR.value: "logged a console error",
    PageProblem.CONSOLE_WARNING.value: "logged a console warning",
    PageProblem.FAILED_REQUEST.value: "had a request fail without a response",
    PageProblem.HTTP_ERROR.value: "got an HTTP error response",
    PageProblem.BLOCKED.value: ("asked for a host outside the target, which the canary did not send (no traffic leaves the "
                                "machine; errors from a library of that host not loading are the canary's doing)"),
}


@dataclasses.dataclass(frozen=True)
class CanaryRow:
    name: str
    role: str
    booth: str
    player: str  # "page" (the target's own player code) or "canary" (player.js: the page cannot play)
    final_state: str
    playing_s: int
    packets: int
    lost: int
    concealed_pct_mean: float | None
    jitter_buffer_delay_p50_ms: float | None
    m2e_p50_ms: float | None
    m2e_p95_ms: float | None
    markers: int
    page_to_first_audio_ms: float | None
    pick_to_first_audio_ms: float | None  # from the language pick (or the canary player's start)
    whep_posts: int
    whep_failed: int
    cpu_pct_mean: float | None
    rss_mb_max: float | None
    error: str | None
    packets_sent: int = 0  # interpreter canaries: RTP packets the page published
    whip_posts: int = 0
    handovers: tuple[str, ...] = ()  # the page controls clicked, e.g. ("PASS MIC", "TAKE OVER")
    publish_stops: int = 0  # times the page stopped publishing


@dataclasses.dataclass(frozen=True)
class CalibrationRow:
    booth: str
    browser_p50_ms: float | None
    probe_p50_ms: float | None
    tap_p50_ms: float | None
    offset_ms: float | None  # browser - probe
    browser_jbd_p50_ms: float | None
    browser_loss_pct: float | None
    synthetic_loss_pct: float | None


@dataclasses.dataclass(frozen=True)
class ProblemLine:
    canary: str
    kind: str
    text: str
    url: str | None
    count: int
    first_at: str
    sentence: str


@dataclasses.dataclass(frozen=True)
class BrowserSection:
    status_lines: list[str]
    canaries: list[CanaryRow]
    calibration: list[CalibrationRow]
    problems: list[ProblemLine]
    device_after_play_ms: float | None  # what the headless output device adds after the measured point
    labels: dict[str, str]

    @property
    def page_players(self) -> list[str]:
        return [c.name for c in self.canaries if c.player == "page"]


def _p(values, q: float) -> float | None:
    values = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.percentile(values, q)) if values else None


def _clock(epoch_s: float | None) -> str:
    if epoch_s is None:
        return "unknown"
    return dt.datetime.fromtimestamp(epoch_s, dt.timezone.utc).strftime("%H:%M:%S UTC")


def _canary_row(name: str, data: dict) -> CanaryRow:
    seconds, events = data["seconds"], data["events"]
    listener = [s for s in seconds if s.get("role") == "listener"]
    latencies = [x for s in listener for x in s.get("latencies_ms") or []]
    states = [e["new"] for e in events if e.get("event") == "state"]
    players = [e.get("player") for e in events if e.get("event") == "player"]
    first = next((e for e in events if e.get("event") == "first_audio"), None)
    whep = [e for e in events if e.get("event") == "whep_post"]
    errors = [e.get("error") for e in events if e.get("event") == "error"]
    cpu = [(s.get("health") or {}).get("cpu_pct") for s in seconds]
    rss = [(s.get("health") or {}).get("rss_mb") for s in seconds]
    received = [s for s in listener if s.get("packets", 0) > 0]
    start = next((e for e in events if e.get("event") == "start"), {})
    return CanaryRow(
        name=name,
        role=start.get("role") or (seconds[0].get("role") if seconds else None) or "listener",
        booth=start.get("booth") or (seconds[0].get("booth") if seconds else "") or "",
        player=players[-1] if players else ("page" if name.startswith("i") else "none"),
        final_state=states[-1] if states else "never started",
        playing_s=sum(1 for s in seconds if s.get("state") == "playing"),
        packets=int(sum(s.get("packets", 0) for s in listener)),
        lost=int(sum(s.get("lost", 0) for s in listener)),
        concealed_pct_mean=float(np.mean([s["concealed_pct"] for s in received if s.get("concealed_pct") is not None]))
        if any(s.get("concealed_pct") is not None for s in received) else None,
        jitter_buffer_delay_p50_ms=_p([s.get("jitter_buffer_delay_ms") for s in received], 50),
        m2e_p50_ms=_p(latencies, 50),
        m2e_p95_ms=_p(latencies, 95),
        markers=max([s.get("markers_total", 0) for s in seconds] or [0]),
        page_to_first_audio_ms=first.get("page_to_first_audio_ms") if first else None,
        pick_to_first_audio_ms=first.get("pick_to_first_audio_ms") if first else None,
        whep_posts=len(whep),
        whep_failed=sum(1 for e in whep if not (e.get("status") in (200, 201))),
        cpu_pct_mean=float(np.mean([c for c in cpu if c is not None])) if any(c is not None for c in cpu) else None,
        rss_mb_max=max([r for r in rss if r is not None], default=None),
        error=next((e for e in errors if e), None),
        packets_sent=int(sum(s.get("packets_sent", 0) for s in seconds)),
        whip_posts=sum(1 for e in events if e.get("event") == "whip_post"),
        handovers=tuple(e.get("control") or ("failed: " + (e.get("error") or "")) for e in events if e.get("event") == "handover"),
        publish_stops=sum(1 for e in events if e.get("event") == "state" and e.get("old") == "publishing" and e.get("new") == "waiting_audio"),
    )


def _calibration(canaries: dict[str, dict], listeners: pd.DataFrame) -> list[CalibrationRow]:
    by_booth: dict[str, list[dict]] = {}
    for data in canaries.values():
        for s in data["seconds"]:
            if s.get("role") == "listener":
                by_booth.setdefault(s.get("booth") or "", []).append(s)
    rows = []
    for booth, seconds in sorted(by_booth.items()):
        synthetic = listeners[listeners["booth"] == booth] if not listeners.empty and "booth" in listeners else pd.DataFrame()
        probe = synthetic.loc[synthetic["role"] == "probe", "marker_latency_ms"].dropna() if not synthetic.empty else pd.Series(dtype=float)
        tap = synthetic.loc[synthetic["role"] == "listener", "latency_p50_ms"].dropna() if not synthetic.empty else pd.Series(dtype=float)
        expected = synthetic.loc[synthetic["expected"] > 0] if not synthetic.empty and "expected" in synthetic else pd.DataFrame()
        browser = _p([x for s in seconds for x in s.get("latencies_ms") or []], 50)
        probe_p50 = float(probe.median()) if len(probe) else None
        packets = sum(s.get("packets", 0) for s in seconds)
        lost = sum(s.get("lost", 0) for s in seconds)
        rows.append(CalibrationRow(
            booth=booth,
            browser_p50_ms=browser,
            probe_p50_ms=probe_p50,
            tap_p50_ms=float(tap.median()) if len(tap) else None,
            offset_ms=browser - probe_p50 if browser is not None and probe_p50 is not None else None,
            browser_jbd_p50_ms=_p([s.get("jitter_buffer_delay_ms") for s in seconds if s.get("packets", 0) > 0], 50),
            browser_loss_pct=100.0 * lost / (packets + lost) if packets + lost else None,
            synthetic_loss_pct=100.0 * float(expected["lost"].sum()) / float(expected["expected"].sum()) if len(expected) else None,
        ))
    return rows


def _sentence(row: dict, role: str) -> str:
    page = "booth page" if role == "interpreter" else "listener page"
    words = _KIND_WORDS.get(row["kind"], row["kind"])
    where = f" ({row['url']})" if row.get("url") else ""
    times = "once" if row["count"] == 1 else f"{row['count']} times"
    span = ""
    if row["count"] > 1 and row.get("first_epoch_s") and row.get("last_epoch_s") and row["last_epoch_s"] > row["first_epoch_s"]:
        every_s = (row["last_epoch_s"] - row["first_epoch_s"]) / (row["count"] - 1)
        span = f", about every {every_s:.1f} s"
    return (f"The target's {page} {words} {times}{span}, first at {_clock(row.get('first_epoch_s'))} "
            f"(canary {row['canary']}): {row['text']}{where}")


def browser_section(run_path: Path, listeners: pd.DataFrame) -> BrowserSection | None:
    """None when the run had nothing to do with browsers (no canary asked for, none ran)."""
    canaries = read_canaries(run_path)
    status = read_status(run_path)
    if not canaries and not status:
        return None
    rows = [_canary_row(name, data) for name, data in canaries.items()]
    roles = {r.name: r.role for r in rows}
    problems = []
    for row in summarise(r for data in canaries.values() for r in data["page"]):
        problems.append(ProblemLine(row["canary"], row["kind"], row["text"], row.get("url"), row["count"],
                                    _clock(row.get("first_epoch_s")), _sentence(row, roles.get(row["canary"], "listener"))))
    lines = [s["text"] for s in status if s.get("kind") != "started"]
    for r in rows:
        if r.player == "canary":
            lines.append(f"canary {r.name}: the target's listener page offered no way to play {r.booth} (no player code), "
                         "so the canary played the booth's WHEP URL from the page's data with its own player: "
                         "the page's own player was not exercised")
        if r.error:
            lines.append(f"canary {r.name} stopped with an error: {r.error}")
        if r.role == "interpreter":
            line = (f"canary {r.name} (interpreter, {r.booth}): the booth page published {r.packets_sent} RTP packets "
                    f"through its own WHIP code in {r.whip_posts} WHIP session(s)")
            if r.handovers:
                line += f"; handovers through the page: {', '.join(r.handovers)}"
            if r.publish_stops:
                line += f"; it stopped publishing {r.publish_stops} time(s) and ended {r.final_state.replace('_', ' ')}"
            if not r.packets_sent:
                line += ": it never published (a page without publishing code, or the booth never went live)"
            lines.append(line)
    device = [(s.get("tap") or {}).get("device_after_play_ms") for data in canaries.values() for s in data["seconds"]]
    return BrowserSection(
        status_lines=lines,
        canaries=rows,
        calibration=_calibration(canaries, listeners),
        problems=problems,
        device_after_play_ms=_p(device, 50),
        labels={"browser": BROWSER_LABEL, "probe": SYNTHETIC_PROBE_LABEL, "tap": SYNTHETIC_TAP_LABEL},
    )
