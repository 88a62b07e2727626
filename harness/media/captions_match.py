"""Caption matching: captions (partial and final) aligned with the known transcript of the speech corpus.

Pure measurement (no Locust, no sockets): what a listener's caption socket received, the booth's publisher
schedules and the transcript of what they played go in; per-utterance delays and the booth's word error rate
come out. It works on any caption source with VoxBento's message shape (contract 6.3): the reference portal's
recogniser and a real VoxBento's Whisper workers alike.

- Text is normalised before anything is compared: Unicode-folded, lower case, accents and punctuation dropped,
  apostrophes and hyphens split words, numbers written out in the booth's language (num2words), so "5" and
  "five", "Twenty-one" and "twenty one" are the same words.
- Each utterance of the loop recurs once per loop per publisher schedule: an *instance* with wall-clock audio
  start and end. A caption received at ``t`` is aligned (longest common word subsequence, rapidfuzz) against the
  instances whose audio started before ``t`` and ended less than ``MAX_DELAY_S`` before it, and, once captions
  have carried an instance, only against that one's neighbourhood: one loop's worth of instances from
  ``BACK_SLACK`` before it; and only the latest repetition of each sentence. Captions follow the audio in order,
  so this keeps a recogniser that lags by more than a loop (an overloaded host) on the right repetition. An aligned hit, or a word between two
  hits where the caption also has words (a misheard word inside a recognised stretch), *covers* that reference
  word.
- An instance is *carried* once the captions received so far cover at least ``CARRY_SHARE`` (a third) of its words; union
  over captions, so an utterance split over two captions is carried when the second arrives, and one caption
  may carry several merged utterances. First-partial delay: from the end of the instance's audio to the first
  caption of any status by which it is carried (a final counts: it is then the first thing shown); final delay:
  the same over finals only. Delays can be negative when a recogniser shows most of an utterance before the
  speaker finished it (streaming recognisers, or a 3 s chunk boundary late in a long sentence).
- Word error rate (jiwer): the finals received from the audio start of the first instance the finals carry to the
  final that carries the last one, against the transcript of every instance in between (so audio spoken before the worker started or after the socket closed does not
  count as deleted).
"""

from __future__ import annotations

import bisect
import dataclasses
import re
import unicodedata
from collections.abc import Iterable, Sequence

import jiwer
from rapidfuzz.distance import LCSseq

from ..rtc.markers import STAND_IN_PATTERN
from .schedule import PublisherSchedule
from .speech import Transcript

MAX_DELAY_S = 120.0  # a caption later than this after its audio is not matched (no sample, never a wrong one)
BACK_SLACK = 2  # instances before the latest carried one that a caption may still complete (split utterances)
# An utterance is carried once a third of its words are covered: a poor recogniser's captions still carry what
# they got partly right (how right is the word error rate's job), and two stray hits on common words ("the") do
# not carry a six-word sentence.
CARRY_SHARE = 1 / 3
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
_NOT_WORD = re.compile(r"[^\w\s]|_")

PARTIAL = "partial"
FINAL = "final"


class Recogniser:
    """What produced a booth's captions, as seen from the captions alone."""

    SPEECH = "speech"  # words (a real recogniser)
    STAND_IN = "stand-in"  # "marker N" texts (the reference portal's marker stand-in)
    NONE = "none"  # no caption text at all


@dataclasses.dataclass(frozen=True)
class ReceivedCaption:
    status: str  # partial | final (clear messages carry no text and are not passed in)
    text: str
    received_s: float  # wall clock (time.time() scale), the same clock as the publisher schedules


@dataclasses.dataclass(frozen=True)
class UtteranceResult:
    index: int  # utterance index in the transcript
    audio_end_s: float  # wall clock
    words: int
    first_partial_delay_ms: float | None
    final_delay_ms: float | None


@dataclasses.dataclass(frozen=True)
class BoothCaptionResult:
    recogniser: str
    utterances: tuple[UtteranceResult, ...]  # every instance that ended while captions were awaited
    word_error_rate: float | None
    reference_words: int
    hypothesis_words: int

    @property
    def carried(self) -> int:
        return sum(u.final_delay_ms is not None for u in self.utterances)


_GROUPED = re.compile(r"\d{1,3}(?:([,.])\d{3})(?:\1\d{3})*")  # 1,000 / 1.000.000: thousands separators


def _number_words(token: str, language: str) -> str:
    from num2words import num2words

    if token.isdigit() or _GROUPED.fullmatch(token):
        value: int | float = int(re.sub(r"\D", "", token))
    else:
        value = float(token.replace(",", "."))
    try:
        return num2words(value, lang=language)
    except NotImplementedError:  # a language num2words lacks: English words still beat digits
        return num2words(value, lang="en")
    except (OverflowError, ValueError, ArithmeticError):
        return token


def normalise(text: str, language: str = "en") -> list[str]:
    """Comparable words of ``text`` (see the module docstring)."""
    lang = (language or "en").lower().split("-")[0]
    text = unicodedata.normalize("NFKC", text).lower()
    text = _NUMBER.sub(lambda m: f" {_number_words(m.group(0), lang)} ", text)
    text = "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))
    text = _NOT_WORD.sub(" ", text)
    return text.split()


def recogniser_of(captions: Iterable[ReceivedCaption]) -> str:
    texts = [c.text for c in captions if c.text.strip()]
    if not texts:
        return Recogniser.NONE
    if any(STAND_IN_PATTERN.search(t) for t in texts):
        return Recogniser.STAND_IN
    return Recogniser.SPEECH


@dataclasses.dataclass
class _Instance:
    index: int
    start_s: float
    end_s: float
    words: list[str]
    covered_any: set[int] = dataclasses.field(default_factory=set)
    covered_final: set[int] = dataclasses.field(default_factory=set)
    first_any_s: float | None = None
    first_final_s: float | None = None


def _instances(transcript: Transcript, schedules: Sequence[PublisherSchedule], language: str,
               since_s: float, until_s: float) -> list[_Instance]:
    """Utterance instances with audio in [since_s - MAX_DELAY_S, until_s], each schedule valid until the next one's epoch."""
    words = [normalise(u.text, language) for u in transcript.utterances]
    ordered = sorted(schedules, key=lambda s: s.epoch_ns)
    out: list[_Instance] = []
    for i, schedule in enumerate(ordered):
        epoch_s = schedule.epoch_ns / 1e9
        loop_s = schedule.loop_length * schedule.period_ns / 1e9
        valid_until_s = ordered[i + 1].epoch_ns / 1e9 if i + 1 < len(ordered) else until_s
        k = max(0, int((since_s - MAX_DELAY_S - epoch_s) // loop_s))
        while epoch_s + k * loop_s < min(valid_until_s, until_s):
            base = epoch_s + k * loop_s
            for u in transcript.utterances:
                start, end = base + u.start_s, base + u.end_s
                if end <= valid_until_s and start < until_s and end > since_s - MAX_DELAY_S:
                    out.append(_Instance(u.index, start, end, words[u.index]))
            k += 1
    out.sort(key=lambda inst: inst.start_s)
    return out


def _covered(ref_tags: list[tuple[int, int]], ref_words: list[str], hyp_words: list[str]) -> list[tuple[int, int]]:
    """(instance, word) pairs that ``hyp_words`` covers: the longest common subsequence's hits, and between two hits
    as many reference words as the caption has words there (misheard words inside a recognised stretch).

    Longest common subsequence, not minimal edit distance: a short caption against a long window has many
    alignments of equal edit cost, and the cheapest may trade hits for substitutions; the LCS keeps every hit.
    """
    if not ref_words or not hyp_words:
        return []
    ops = LCSseq.opcodes(ref_words, hyp_words)
    covered: list[tuple[int, int]] = []
    between: list = []  # insert/delete ops since the last hit
    seen_hit = False
    for op in ops:
        if op.tag == "equal":
            if seen_hit and between:
                deleted = [i for o in between if o.tag == "delete" for i in range(o.src_start, o.src_end)]
                inserted = sum(o.dest_end - o.dest_start for o in between if o.tag == "insert")
                covered.extend(ref_tags[i] for i in deleted[:inserted])
            covered.extend(ref_tags[op.src_start:op.src_end])
            seen_hit, between = True, []
        else:
            between.append(op)
    return covered


def match_booth(transcript: Transcript, schedules: Sequence[PublisherSchedule], captions: Sequence[ReceivedCaption], *,
                language: str, listen_start_s: float, listen_end_s: float) -> BoothCaptionResult:
    """Align one caption stream with what the booth's publishers played (see the module docstring)."""
    captions = sorted((c for c in captions if c.text.strip()), key=lambda c: c.received_s)
    recogniser = recogniser_of(captions)
    if not schedules:
        return BoothCaptionResult(recogniser, (), None, 0, 0)
    instances = _instances(transcript, schedules, language, listen_start_s, listen_end_s)
    per_loop = len(transcript.utterances)
    starts = [inst.start_s for inst in instances]
    longest_s = max((inst.end_s - inst.start_s for inst in instances), default=0.0)
    cursor: int | None = None  # the latest instance carried so far
    for caption in captions:
        t = caption.received_s
        # Instances are sorted by start: only those starting in [t - MAX_DELAY_S - longest, t) can qualify
        # (an hour-long run has hundreds; each listener matches its captions at the end of its session).
        lo, hi = bisect.bisect_left(starts, t - MAX_DELAY_S - longest_s), bisect.bisect_left(starts, t)
        if cursor is not None:
            lo, hi = max(lo, cursor - BACK_SLACK), min(hi, cursor - BACK_SLACK + per_loop)
        window = [n for n in range(lo, hi) if instances[n].end_s > t - MAX_DELAY_S]
        # One repetition per sentence, the latest (a restarted publisher's, or before anything was carried the
        # newest loop's): the alignment must never choose between two copies of the same words.
        latest = {instances[n].index: n for n in window}
        window = sorted(latest.values())
        ref_words: list[str] = []
        ref_tags: list[tuple[int, int]] = []
        for n in window:
            ref_words.extend(instances[n].words)
            ref_tags.extend((n, w) for w in range(len(instances[n].words)))
        for n, w in _covered(ref_tags, ref_words, normalise(caption.text, language)):
            inst = instances[n]
            inst.covered_any.add(w)
            if caption.status == FINAL:
                inst.covered_final.add(w)
        for n in window:
            inst = instances[n]
            need = CARRY_SHARE * len(inst.words)
            if inst.first_any_s is None and inst.words and len(inst.covered_any) >= need:
                inst.first_any_s = t
            if inst.first_final_s is None and inst.words and len(inst.covered_final) >= need:
                inst.first_final_s = t
            if inst.first_any_s is not None and (cursor is None or n > cursor):
                cursor = n
    # Utterances whose audio the listener was there for, and that ended early enough to be captioned by the end.
    due = [inst for inst in instances if inst.start_s >= listen_start_s and inst.end_s <= listen_end_s]
    results = tuple(
        UtteranceResult(
            inst.index, inst.end_s, len(inst.words),
            None if inst.first_any_s is None else (inst.first_any_s - inst.end_s) * 1000.0,
            None if inst.first_final_s is None else (inst.first_final_s - inst.end_s) * 1000.0,
        )
        for inst in due
    )
    # Stray hits on common words ("the") may land in any instance of the window: span the carried ones, and
    # compare them with the finals received from the first one's audio start to the last one's carrying final.
    touched = [n for n, inst in enumerate(instances) if inst.first_final_s is not None]
    if not touched or recogniser != Recogniser.SPEECH:
        return BoothCaptionResult(recogniser, results, None, 0, 0)
    first, last = instances[touched[0]], instances[touched[-1]]
    finals = [c for c in captions if c.status == FINAL and first.start_s <= c.received_s <= last.first_final_s]
    hyp = [w for c in finals for w in normalise(c.text, language)]
    ref = [w for inst in instances[touched[0]:touched[-1] + 1] for w in inst.words]
    wer = float(jiwer.wer(" ".join(ref), " ".join(hyp))) if hyp else 1.0
    return BoothCaptionResult(recogniser, results, wer, len(ref), len(hyp))
