"""report.pdf: the HTML report's content as PDF pages, drawn with matplotlib's PdfPages.

Owns the PDF layout. Chosen over printing the HTML with headless Chromium because it needs nothing outside
the Python dependencies (a fresh machine has no browser) and gives the same text and the same figures:
text pages (verdict, overview, capacity, SLO table, health, recommendations, findings, missing data), then
one page per figure with its caption.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from .build import Report
from .render import STATE_WORDS, VERDICT_WORDS

PAGE_IN = (8.27, 11.69)  # A4 portrait
MARGIN = 0.06  # of the page
LINE = 0.0155  # one 9 pt line, as a fraction of the page height
CHARS_PER_LINE = 96  # 9 pt DejaVu Sans across the A4 text width
_COLORS = {"pass": "#1b7a1f", "fail": "#b00020", "no_data": "#8a6d00", "insufficient_data": "#8a6d00"}
_BANNER = {"passed": "#1b7a1f", "slo_failed": "#b00020", "error": "#a06800", "invalid": "#a06800", "interrupted": "#a06800",
           "findings": "#2f5597"}


class _TextPages:
    """Top-to-bottom text flow over as many pages as needed."""

    def __init__(self, pdf: PdfPages, title: str) -> None:
        self.pdf = pdf
        self.title = title
        self.fig: Figure | None = None
        self.y = 0.0
        self.page = 0

    def _new_page(self) -> None:
        self.flush()
        self.page += 1
        self.fig = Figure(figsize=PAGE_IN)
        self.fig.text(MARGIN, 1 - MARGIN / 2, f"{self.title} — page {self.page}", fontsize=7, color="#777")
        self.y = 1 - MARGIN

    def _room(self, lines: int) -> None:
        if self.fig is None or self.y - lines * LINE < MARGIN:
            self._new_page()

    def heading(self, text: str, size: int = 13) -> None:
        self._room(3)
        self.y -= LINE * 0.8
        self.fig.text(MARGIN, self.y, text, fontsize=size, weight="bold", va="top")
        self.y -= LINE * (size / 9 + 0.4)

    def paragraph(self, text: str, *, color: str = "#222", indent: float = 0.0, bullet: bool = False, size: int = 9) -> None:
        width = CHARS_PER_LINE - int(indent * 110) - (2 if bullet else 0)
        lines = textwrap.wrap(text, width) or [""]
        for i, line in enumerate(lines):
            self._room(1)
            prefix = ("• " if i == 0 else "  ") if bullet else ""
            self.fig.text(MARGIN + indent, self.y, prefix + line, fontsize=size, color=color, va="top", family="DejaVu Sans")
            self.y -= LINE
        self.y -= LINE * 0.3

    def row(self, cells: list[tuple[float, str]], *, color: str = "#222", bold: bool = False) -> None:
        """One table row: (x offset as page fraction, text) per cell; long cells wrap within their column."""
        columns = [x for x, _ in cells] + [1 - 2 * MARGIN]
        wrapped = [textwrap.wrap(text, max(8, int((columns[i + 1] - x) * 125))) or [""] for i, (x, text) in enumerate(cells)]
        height = max(len(w) for w in wrapped)
        self._room(height)
        for (x, _), lines in zip(cells, wrapped):
            for j, line in enumerate(lines):
                self.fig.text(MARGIN + x, self.y - j * LINE, line, fontsize=8, color=color, va="top", weight="bold" if bold else "normal")
        self.y -= LINE * (height + 0.25)

    def flush(self) -> None:
        if self.fig is not None:
            self.pdf.savefig(self.fig)
            self.fig = None


def write_pdf(report: Report, path: Path) -> None:
    with PdfPages(path, metadata={"Title": f"voxload capacity report {report.run_id}", "Creator": "voxload"}) as pdf:
        text = _TextPages(pdf, f"voxload capacity report {report.run_id}")
        text.heading("Capacity sign-off report", 16)
        text.paragraph(f"run {report.run_id} · scenario {report.scenario_name} · generated {report.generated_at}", color="#555")
        verdict = VERDICT_WORDS.get(report.verdicts.verdict, report.verdicts.verdict)
        text.paragraph(f"Verdict: {verdict} (exit code {report.verdicts.exit_code})", color=_BANNER.get(report.verdicts.verdict, "#222"), size=12)
        if report.verdicts.reason:
            text.paragraph(report.verdicts.reason)
        warning = report.health.warning()
        if warning:
            text.paragraph(f"GENERATOR SATURATED. {warning}" if report.health.saturated else warning,
                           color="#b00020" if report.health.saturated else "#a06800")
        text.heading("Target, configuration and harness")
        for label, value in report.overview:
            text.row([(0.0, label), (0.2, value)])
        text.heading("Capacity")
        for statement in report.statements:
            text.paragraph(statement.text, bullet=True, color="#222" if statement.ok else "#b00020")
        text.heading("Verdicts: one row per SLO")
        if report.verdicts.provisional:
            text.paragraph("Provisional: recomputed from partial data because summary.json is missing.", color="#a06800")
        text.row([(0.0, "Metric"), (0.33, "Measured"), (0.5, "Threshold"), (0.7, "Result"), (0.8, "Samples")], bold=True)
        for row in report.verdicts.rows:
            text.row([(0.0, row.metric), (0.33, row.measured_text), (0.5, row.threshold_text), (0.7, STATE_WORDS.get(row.state, row.state)),
                      (0.8, str(row.sample_count))], color=_COLORS.get(row.state, "#222"))
        text.heading("Generator health")
        health = report.health
        text.paragraph(f"Saturated: {'yes' if health.saturated else ('no' if health.measured else 'unknown (no health data)')}")
        for period in health.periods:
            text.paragraph(period.describe(), bullet=True, color="#b00020")
        for note in health.notes:
            text.paragraph(note, bullet=True)
        if report.browser is not None:
            _browser_pages(text, report.browser)
        text.heading("Recommendations")
        for rec in report.recommendations or []:
            text.paragraph(f"{rec.text} (because: {rec.because})", bullet=True)
        if not report.recommendations:
            text.paragraph("None: no finding of this run calls for a change.")
        if report.findings:
            text.heading("Probe findings")
            for finding in report.findings:
                knee = (f"knee at {finding.knee.x_column} = {finding.knee.x:g} ({finding.knee.y_column} = {finding.knee.y:g})"
                        if finding.knee else "no knee found")
                text.paragraph(f"{finding.title} ({finding.severity.value}) — {finding.limit_text()}; method {finding.method}; {knee}.", size=10)
                text.paragraph(finding.paragraph, indent=0.02)
                for line in (f"Symptom: {finding.symptom}" if finding.symptom else "", f"Trigger: {finding.trigger}" if finding.trigger else "",
                             *finding.evidence, f"Recommendation: {finding.recommendation}" if finding.recommendation else ""):
                    if line:
                        text.paragraph(line, indent=0.02, bullet=True)
        text.heading("Missing data")
        for item in report.missing or ["Nothing: every file a finished run writes was present and whole."]:
            text.paragraph(item, bullet=True)
        text.flush()
        for plot in report.plots:
            caption = plot.figure.text(0.01, 0.0, textwrap.fill(f"{plot.title}. {plot.caption}", 150), fontsize=8, va="top", color="#444")
            pdf.savefig(plot.figure, bbox_inches="tight")
            caption.remove()  # the figure stays as the HTML showed it


def _ms(value: float | None, fmt: str = "%.0f ms") -> str:
    return fmt % value if value is not None else "no data"


def _browser_pages(text: _TextPages, browser) -> None:
    """The HTML report's browser section, as text (harness/report/browser.py)."""
    text.heading("Browser canaries: real Chromium beside the synthetic listeners")
    for line in browser.status_lines:
        text.paragraph(line, bullet=True, color="#a06800")
    for c in browser.canaries:
        text.paragraph(f"{c.name} ({c.role}, {c.booth}, player: {c.player}): ended {c.final_state}, playing {c.playing_s} s, "
                       f"{c.packets} packets ({c.lost} lost), jitter buffer p50 {_ms(c.jitter_buffer_delay_p50_ms)}, "
                       f"mouth-to-ear p50 {_ms(c.m2e_p50_ms)} / p95 {_ms(c.m2e_p95_ms)}, language picked to first audio "
                       f"{_ms(c.pick_to_first_audio_ms)} (page load {_ms(c.page_to_first_audio_ms)}), {c.whep_posts} WHEP POSTs ({c.whep_failed} failed), CPU "
                       f"{_ms(c.cpu_pct_mean, '%.0f %%')}, RSS max {_ms(c.rss_mb_max, '%.0f MB')}", bullet=True)
    for row in browser.calibration:
        offset = f"{row.offset_ms:+.1f} ms" if row.offset_ms is not None else "n/a"
        text.paragraph(f"Calibration {row.booth}: browser {_ms(row.browser_p50_ms, '%.1f ms')} vs synthetic probe "
                       f"{_ms(row.probe_p50_ms, '%.1f ms')} (offset {offset}), synthetic tap {_ms(row.tap_p50_ms, '%.1f ms')}, "
                       f"browser jitter buffer {_ms(row.browser_jbd_p50_ms)}", bullet=True)
    if browser.calibration:
        for label in browser.labels.values():
            text.paragraph(label, indent=0.02, size=8, color="#555")
    for problem in browser.problems:
        text.paragraph(problem.sentence, bullet=True, color="#b00020" if problem.kind != "blocked" else "#555")
    if not browser.problems:
        text.paragraph("No console error, uncaught exception or failed request in any canary page." if browser.canaries
                       else "No canary ran.")
