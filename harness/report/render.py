"""Writers of report.html, summary.md and verdict.json from a ``Report`` (Jinja2 templates in ``templates/``).

Owns the file formats. The HTML embeds every figure as base64 PNG and all CSS inline, so it opens with no
network. verdict.json is for machines; its shape is ``VERDICT_SCHEMA_VERSION`` 1::

    {"schema_version", "run_id", "scenario", "status", "verdict" (passed | slo_failed | error, as in
     summary.json: passed | slo_failed | error | invalid | interrupted; findings for a probe run), "exit_code",
     "exit_code_meaning" (harness.errors.EXIT_CODE_MEANINGS), "provisional", "reason", "invalid_reasons",
     "events": [{t, kind, text, ...}] (engine died, worker lost, Ctrl-C), "outages": [{start_s, end_s,
     recovered_s, failed, requests, errors, text}],
     "slos": [{metric, source, aggregation, op, bound, unit, required, state, observed, sample_count,
               file, line, measured, threshold}],
     "capacity": [{"topic", "text", "ok"}], "recommendations": [{"text", "because"}],
     "generator_health": {saturated, periods: [{source, start_s, end_s, reasons, duration_s}], ...},
     "findings": [{probe, title, limit, method, knee, severity, paragraph, recommendation}],
     "key_numbers": {...}, "missing": [...], "generated_at", "files": {...}}
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import jinja2

from ..errors import EXIT_CODE_MEANINGS, ExitCode
from ..results.run_folder import exit_code_meaning, write_json_atomic
from .build import Report
from .capacity import as_dicts

VERDICT_SCHEMA_VERSION = 1
# The words after the dash are the exit code's meaning, as README, --help and JUnit say it.
VERDICT_WORDS = {"passed": f"PASSED — {EXIT_CODE_MEANINGS[ExitCode.OK]}",
                 "slo_failed": f"FAILED — {EXIT_CODE_MEANINGS[ExitCode.SLO_BREACHED]}",
                 "error": f"NOT SIGNABLE — {EXIT_CODE_MEANINGS[ExitCode.USAGE]}",
                 "invalid": f"NOT VALID EVIDENCE — {EXIT_CODE_MEANINGS[ExitCode.INVALID_RUN]}",
                 "interrupted": f"INTERRUPTED — {EXIT_CODE_MEANINGS[ExitCode.INTERRUPTED]}; the results are partial",
                 "findings": "PROBE FINDINGS — a limit probe states what it found (no SLOs judged)"}
STATE_WORDS = {"pass": "pass", "fail": "FAIL", "no_data": "no data", "insufficient_data": "insufficient data"}

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("harness.report", "templates"),
    autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
    undefined=jinja2.StrictUndefined,
    trim_blocks=False,
    keep_trailing_newline=True,
)


def render_template(name: str, **context: Any) -> str:
    return _ENV.get_template(name).render({"verdict_words": VERDICT_WORDS, "state_words": STATE_WORDS, "zip": zip, **context})


def write_html(report: Report, path: Path) -> None:
    images = {plot.key: plot.png_base64() for plot in report.plots}
    path.write_text(render_template("report.html.j2", r=report, images=images), encoding="utf-8")


def write_summary_md(report: Report, path: Path) -> None:
    path.write_text(render_template("summary.md.j2", r=report), encoding="utf-8")


def _finite(value: Any) -> Any:
    """JSON has no NaN: a number that could not be measured is null (no data is not zero)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def verdict_document(report: Report) -> dict[str, Any]:
    return _finite({
        "schema_version": VERDICT_SCHEMA_VERSION,
        "run_id": report.run_id,
        "scenario": report.scenario_name,
        "status": report.status,
        "verdict": report.verdicts.verdict,
        "exit_code": report.verdicts.exit_code,
        "exit_code_meaning": exit_code_meaning(report.verdicts.exit_code),
        "provisional": report.verdicts.provisional,
        "reason": report.verdicts.reason,
        "invalid_reasons": list(report.verdicts.invalid_reasons),
        "events": [dict(e) for e in report.verdicts.events],
        "outages": [o.as_dict() for o in report.outages],
        "slos": [row.as_dict() for row in report.verdicts.rows],
        "capacity": as_dicts(report.statements),
        "recommendations": as_dicts(report.recommendations),
        "generator_health": report.health.as_dict(),
        "findings": [f.as_dict() for f in report.findings],
        "key_numbers": dict(report.key_numbers),
        "missing": list(report.missing),
        "generated_at": report.generated_at,
        "files": {"html": "report.html", "pdf": "report.pdf", "summary": "summary.md"},
    })


def write_verdict_json(report: Report, path: Path) -> None:
    write_json_atomic(path, verdict_document(report))


def load_verdict(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)
