"""Service-level objectives: the metric vocabulary, threshold parsing and three-state verdicts.

Owns (conventions item 9, modelled on k6 ``metrics/thresholds.go``):

* ``METRICS``: the ONE registry of metric names the harness measures, with unit, kind and meaning.
  The scenario validator, the summary writer and the reports all read it; a metric that is not
  here cannot appear in a scenario's ``slos``.
* ``parse_threshold``: ``"p95 < 400"`` -> ``Threshold``, which keeps its source text, file and line.
  Thresholds are parsed and validated when the scenario loads, i.e. before any load starts.
* ``evaluate``: thresholds + observed samples -> ``SloResult`` rows in one of three states,
  ``pass``, ``fail``, ``no_data`` or ``insufficient_data``. A threshold whose metric got no samples is
  ``no_data``, never a pass.
* The coverage rule (``COVERAGE_REQUIRED``): a media SLO (``Metric.needs_coverage``) holds only when its
  samples cover at least 90 % of the listener-seconds the scenario expected over its steady state
  (``harness.results.measures.media_coverage`` counts both). Below that it is ``insufficient_data`` whatever the
  samples say: 18 good seconds out of 60 are not evidence that the other 42 were good.

Input of ``evaluate``: a mapping ``metric name -> 1-D samples`` (list, numpy array or pandas Series).
``samples_from_frame`` turns a long DataFrame with ``metric`` and ``value`` columns (what
``harness.results.run_folder.read_samples`` returns) into that mapping. NaN and infinite samples are ignored (a
producer that cannot measure writes nothing, or NaN; it never invents a number).

Aggregations: ``p50 p90 p95 p99`` (any ``pNN`` or k6's ``p(NN)``), ``min``, ``max``, ``mean`` (k6 ``avg``),
``count``, ``rate`` and ``value``. Which of them a metric accepts depends on its kind:

=========  ============================================  =========================================
kind       samples are                                    aggregations
=========  ============================================  =========================================
trend      one measured value per observation             pNN, min, max, mean, count (= n samples)
rate       1 (event happened) or 0 per observation        rate (= mean), count (= n samples)
gauge      successive readings of one quantity            value (= last reading), min, max
counter    increments                                     count (= sum of increments)
=========  ============================================  =========================================
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import VoxloadError


class MetricKind(enum.Enum):
    TREND = "trend"
    RATE = "rate"
    GAUGE = "gauge"
    COUNTER = "counter"


class SloState(enum.Enum):
    PASS = "pass"
    FAIL = "fail"
    # Conventions item 9: a threshold whose metric got no samples must not pass silently.
    NO_DATA = "no_data"
    # Samples exist but cover too little of the steady state (COVERAGE_REQUIRED): not a pass either.
    INSUFFICIENT = "insufficient_data"


# The coverage rule, stated once: a media SLO needs samples for >= 90 % of the expected listener-seconds of the
# steady window (and every handover heard by a listener present before it); below that it is insufficient data.
COVERAGE_REQUIRED = 0.90


@dataclasses.dataclass(frozen=True)
class Metric:
    name: str
    unit: str
    kind: MetricKind
    description: str
    needs_coverage: bool = False  # judged only when its samples cover the steady state (COVERAGE_REQUIRED)


def _metrics(*items: Metric) -> Mapping[str, Metric]:
    return {m.name: m for m in items}


# The metric vocabulary. Producers (media engine, clients, Locust users) write samples under these names.
METRICS: Mapping[str, Metric] = _metrics(
    Metric("mouth_to_ear_latency_ms", "ms", MetricKind.TREND,
           "interpreter's send time of an audio packet to a listener's receipt of the same payload (media-design 4)", needs_coverage=True),
    Metric("whep_time_to_first_audio_ms", "ms", MetricKind.TREND,
           "listener's WHEP POST start to the first RTP packet received (media-design 3)"),
    Metric("whip_setup_ms", "ms", MetricKind.TREND,
           "interpreter's WHIP POST start to ICE+DTLS connected"),
    Metric("handover_gap_ms", "ms", MetricKind.TREND,
           "silence at a listener across a handover: last packet of the old active interpreter to first of the new", needs_coverage=True),
    Metric("handover_duration_ms", "ms", MetricKind.TREND,
           "booth:initiate-handoff sent to the booth:state showing the new active interpreter (contract 5.3)"),
    Metric("handover_failure_rate", "ratio", MetricKind.RATE,
           "1 per scheduled handover that was refused by booth:error or did not complete, else 0 (contract 5.3, 14.15)"),
    Metric("caption_delay_ms", "ms", MetricKind.TREND,
           "end of an utterance's audio (speech corpus; or a timing marker's send, marker stand-in) to the caption "
           "'final' message carrying it on /ws/captions (contract 6.3; harness/media/captions_match.py)"),
    Metric("caption_first_partial_delay_ms", "ms", MetricKind.TREND,
           "end of an utterance's audio (or a marker's send) to the first caption of any status carrying it: when a "
           "listener first sees it; negative when shown before the speaker finished"),
    Metric("caption_word_error_rate", "ratio", MetricKind.TREND,
           "word error rate of a listener's caption finals against the transcript of what the booth's publishers "
           "said (jiwer), one sample per listener of a booth with a speech recogniser"),
    Metric("http_req_duration_ms", "ms", MetricKind.TREND,
           "HTTP round trip of every portal request (page, form, JSON API, audio-delay poll)"),
    Metric("http_error_rate", "ratio", MetricKind.RATE,
           "1 per HTTP request that failed (transport error or a status the contract does not list), else 0"),
    Metric("ws_connect_ms", "ms", MetricKind.TREND,
           "booth or captions WebSocket handshake time"),
    Metric("packet_loss_pct", "%", MetricKind.TREND,
           "per listener and second: lost RTP packets / expected packets x 100 (media-design 6.7)", needs_coverage=True),
    Metric("jitter_ms", "ms", MetricKind.TREND,
           "RFC 3550 interarrival jitter per listener and second, in milliseconds", needs_coverage=True),
    Metric("audio_gap_ms", "ms", MetricKind.TREND,
           "length of each silence longer than media.silence_threshold_ms at a receiving listener", needs_coverage=True),
    Metric("listeners_receiving_ratio", "ratio", MetricKind.GAUGE,
           "listeners that received audio / listeners that were started, computed at the end of the run", needs_coverage=True),
    Metric("captioned_booths_ratio", "ratio", MetricKind.GAUGE,
           "transcribed booths whose caption socket delivered at least one 'final' / transcribed booths"),
    Metric("transcription_start_rejected", "count", MetricKind.COUNTER,
           "transcription start calls refused at the worker cap (429, contract 7.2)"),
    Metric("generator_cpu_pct", "%", MetricKind.TREND,
           "CPU busy of each load-generator process (Locust and media engines), per second"),
    Metric("generator_loop_lag_ms", "ms", MetricKind.TREND,
           "event-loop (or gevent hub) lag of each load-generator process, per second"),
    # Browser canaries (harness/browser): headless Chromium playing the target's own listener page.
    Metric("browser_mouth_to_ear_latency_ms", "ms", MetricKind.TREND,
           "interpreter's send time of a timing marker to Chromium handing the decoded marker over for playout "
           "(markers detected in the audio the canary's page played; excludes the sound card)"),
    Metric("browser_jitter_buffer_delay_ms", "ms", MetricKind.TREND,
           "per canary listener and second: getStats() jitterBufferDelay / jitterBufferEmittedCount (NetEq), in ms"),
    Metric("browser_concealed_pct", "%", MetricKind.TREND,
           "per canary listener and second: getStats() concealedSamples / totalSamplesReceived x 100"),
    Metric("browser_listeners_receiving_ratio", "ratio", MetricKind.GAUGE,
           "canary listeners whose page received audio packets / canary listeners started, at the end of the run"),
)

_AGGREGATIONS_BY_KIND: Mapping[MetricKind, frozenset[str]] = {
    MetricKind.TREND: frozenset({"percentile", "min", "max", "mean", "count"}),
    MetricKind.RATE: frozenset({"rate", "count"}),
    MetricKind.GAUGE: frozenset({"value", "min", "max"}),
    MetricKind.COUNTER: frozenset({"count"}),
}

_OPERATORS: Mapping[str, Callable[[float, float], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq,
}
# k6 aliases are accepted and normalised: avg -> mean, med -> p50, p(95) -> p95.
_ALIASES = {"avg": "mean", "med": "p50"}
_THRESHOLD_RE = re.compile(
    r"""^\s*
    (?P<agg>p\(\s*\d+(?:\.\d+)?\s*\)|p\d+(?:\.\d+)?|[a-z]+)
    \s*(?P<op><=|>=|==|<|>)\s*
    (?P<bound>[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)
    \s*$""",
    re.VERBOSE,
)
_SIMPLE_AGGREGATIONS = ("min", "max", "mean", "count", "rate", "value")


class SloError(VoxloadError, ValueError):
    """Base of errors raised while defining thresholds (one line, no file/line: the caller adds those)."""


class UnknownMetric(SloError):
    pass


class ThresholdSyntaxError(SloError):
    pass


class AggregationNotAllowed(SloError):
    pass


@dataclasses.dataclass(frozen=True)
class Threshold:
    """One parsed threshold, e.g. ``mouth_to_ear_latency_ms: p95 < 400``."""

    metric: str
    source: str  # as written in the scenario file, e.g. "p95 < 400"
    aggregation: str  # normalised: "p95", "p99.9", "mean", "rate", ...
    op: str
    bound: float
    # Not required = no_data or insufficient_data is reported but does not make the run exit 3 (harness.results.run_folder.exit_code).
    required: bool = True
    file: str | None = None
    line: int | None = None

    @property
    def percentile(self) -> float | None:
        return float(self.aggregation[1:]) if self.aggregation.startswith("p") else None

    @property
    def unit(self) -> str:
        return METRICS[self.metric].unit

    def describe(self) -> str:
        return f"{self.metric}: {self.source}"


@dataclasses.dataclass(frozen=True)
class SloResult:
    threshold: Threshold
    state: SloState
    observed: float | None  # the aggregate compared with the bound; None when there was no data
    sample_count: int
    coverage: float | None = None  # share of the expected steady-state samples present (media SLOs only)

    def as_dict(self) -> dict[str, Any]:
        t = self.threshold
        return {
            "metric": t.metric,
            "source": t.source,
            "file": t.file,
            "line": t.line,
            "aggregation": t.aggregation,
            "op": t.op,
            "bound": t.bound,
            "unit": t.unit,
            "required": t.required,
            "state": self.state.value,
            "observed": self.observed,
            "sample_count": self.sample_count,
            "coverage": self.coverage,
        }


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The closest of `choices` to `word` (difflib ratio >= 0.6), or None."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return close[0] if close else None


def suggest(word: str, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for a close match, else ''."""
    match = closest(word, choices)
    return f" (did you mean {match!r}?)" if match else ""


def lookup_metric(name: str) -> Metric:
    try:
        return METRICS[name]
    except KeyError:
        raise UnknownMetric(f"unknown metric {name!r}{suggest(name, METRICS)}") from None


def _normalise_aggregation(raw: str, source: str) -> tuple[str, str]:
    """(normalised aggregation, its family: 'percentile' or the simple name)."""
    agg = _ALIASES.get(raw, raw)
    if agg.startswith("p") and agg not in _SIMPLE_AGGREGATIONS:
        number = agg[1:].strip("()").strip()
        try:
            pct = float(number)
        except ValueError:
            raise ThresholdSyntaxError(f"cannot parse threshold {source!r}: unknown aggregation {raw!r}") from None
        if not 0.0 <= pct <= 100.0:
            raise ThresholdSyntaxError(f"cannot parse threshold {source!r}: percentile {number} is outside 0-100")
        return f"p{pct:g}", "percentile"
    if agg not in _SIMPLE_AGGREGATIONS:
        known = ("p50", "p90", "p95", "p99", *_SIMPLE_AGGREGATIONS)
        raise ThresholdSyntaxError(f"cannot parse threshold {source!r}: unknown aggregation {raw!r}{suggest(raw, known)}")
    return agg, agg


def parse_threshold(
    metric: str, source: str, *, required: bool = True, file: str | None = None, line: int | None = None
) -> Threshold:
    """Parse ``"AGG OP NUMBER"`` for `metric`; raises an ``SloError`` subclass with a one-line message."""
    info = lookup_metric(metric)
    match = _THRESHOLD_RE.match(source)
    if match is None:
        raise ThresholdSyntaxError(f"cannot parse threshold {source!r}: expected 'AGGREGATION OPERATOR NUMBER', e.g. 'p95 < 400'")
    aggregation, family = _normalise_aggregation(match["agg"].replace(" ", ""), source)
    allowed = _AGGREGATIONS_BY_KIND[info.kind]
    if family not in allowed:
        names = sorted("pNN" if a == "percentile" else a for a in allowed)
        raise AggregationNotAllowed(
            f"aggregation {aggregation!r} does not apply to {info.kind.value} metric {metric!r} (use {', '.join(names)})"
        )
    bound = float(match["bound"])
    return Threshold(metric=metric, source=source.strip(), aggregation=aggregation, op=match["op"], bound=bound,
                     required=required, file=file, line=line)


def _clean(samples: Any) -> np.ndarray:
    values = np.asarray(samples, dtype=float).reshape(-1)
    return values[np.isfinite(values)]


def aggregate(threshold: Threshold, values: np.ndarray) -> float:
    """The threshold's aggregate over non-empty, finite `values`."""
    kind = METRICS[threshold.metric].kind
    agg = threshold.aggregation
    if threshold.percentile is not None:
        return float(np.percentile(values, threshold.percentile))
    if agg == "count":
        # A counter's samples are increments; for the other kinds count is the number of observations.
        return float(values.sum()) if kind is MetricKind.COUNTER else float(values.size)
    if agg == "value":
        return float(values[-1])
    if agg == "rate":
        return float(values.mean())
    return float({"min": np.min, "max": np.max, "mean": np.mean}[agg](values))


def evaluate_one(threshold: Threshold, samples: Any | None, coverage: float | None = None) -> SloResult:
    """`coverage`: share of the expected steady-state samples present, for metrics that need it (else None)."""
    values = _clean(samples if samples is not None else [])
    if not METRICS[threshold.metric].needs_coverage:
        coverage = None
    if values.size == 0:
        return SloResult(threshold, SloState.NO_DATA, None, 0, coverage)
    observed = aggregate(threshold, values)
    if coverage is not None and coverage < COVERAGE_REQUIRED:
        return SloResult(threshold, SloState.INSUFFICIENT, observed, int(values.size), coverage)
    ok = _OPERATORS[threshold.op](observed, threshold.bound)
    return SloResult(threshold, SloState.PASS if ok else SloState.FAIL, observed, int(values.size), coverage)


def evaluate(thresholds: Sequence[Threshold], samples: Mapping[str, Any],
             coverage: Mapping[str, float] | None = None) -> tuple[SloResult, ...]:
    """Evaluate every threshold against ``samples[metric]`` (missing metric = no data).

    `coverage`: ``{metric: share}`` from ``harness.results.measures.media_coverage``; a media metric absent from it is
    judged on its samples alone (a caller that cannot know the expected samples, e.g. a unit test)."""
    coverage = coverage or {}
    return tuple(evaluate_one(t, samples.get(t.metric), coverage.get(t.metric)) for t in thresholds)


def samples_from_frame(frame: Any, metric_column: str = "metric", value_column: str = "value") -> dict[str, np.ndarray]:
    """A long pandas DataFrame (one row per sample) -> ``{metric: values}`` in row order."""
    if frame is None or len(frame) == 0:
        return {}
    return {str(name): group[value_column].to_numpy(dtype=float) for name, group in frame.groupby(metric_column, sort=False)}

