"""Caption matching: captions (partial and final) aligned with the known transcript of the speech corpus.

Pure measurement (no Locust, no sockets): what a listener's caption socket received, the booth's publisher
schedules and the transcript of what they played go in; per-utterance delays and the booth's word error rate
come out. It works on any caption source with VoxBento's message shape (contract 6.3): the reference portal's
recogniser and a real VoxBento's Whisper workers alike.

- Text is normalised before anything is compared: Unicode-folded, lower case, accents and punctuation dropped,
  apostrophes and hyphens split words, numbers written out in the booth's language (num2words), so "5" and
  "five", "Twenty-one" and "twenty one" are the same words.
- Each utterance of the loop recurs once per loop per publisher schedule: an *instance* with wall-clock audio
  start and end. A caption received at ``t`` is aligned (jiwer's word alignment, i.e. minimal edit distance)
  against the instances whose audio started before ``t`` and ended less than ``LOOKBACK_S`` before it; an
  aligned hit, or a substitution between two hits (a misheard word inside a recognised stretch), *covers* that
  reference word.
- An instance is *carried* once the captions received so far cover at least ``CARRY_SHARE`` of its words; union
  over captions, so an utterance split over two captions is carried when the second arrives, and one caption
  may carry several merged utterances. First-partial delay: from the end of the instance's audio to the first
  caption of any status by which it is carried (a final counts: it is then the first thing shown); final delay:
  the same over finals only. Delays can be negative when a recogniser shows most of an utterance before the
  speaker finished it (streaming recognisers, or a 3 s chunk boundary late in a long sentence).
- Word error rate (jiwer): the concatenated finals against the transcript of every instance from the first to
  the last one the finals carry (so audio spoken before the worker started or after the socket closed does not
  count as deleted).
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from collections.abc import Iterable, Sequence

import jiwer

from .schedule import PublisherSchedule
from .speech import Transcript

LOOKBACK_S = 30.0  # how far back a caption may reach; must stay below the loop length (40.5 s) to be unambiguous
CARRY_SHARE = 0.5
STAND_IN_PATTERN = re.compile(r"\bmarker\s+\d+", re.IGNORECASE)  # the reference portal's marker stand-in
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


def _number_words(token: str, language: str) -> str:
    from num2words import num2words

    value = int(token) if token.isdigit() else float(token.replace(",", "."))
    try:
        return num2words(value, lang=language)
    except NotImplementedError:  # a language num2words lacks: English words still beat digits
        return num2words(value, lang="en")


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
    """Utterance instances with audio in [since_s - LOOKBACK_S, until_s], each schedule valid until the next one's epoch."""
    words = [normalise(u.text, language) for u in transcript.utterances]
    ordered = sorted(schedules, key=lambda s: s.epoch_ns)
    out: list[_Instance] = []
    for i, schedule in enumerate(ordered):
        epoch_s = schedule.epoch_ns / 1e9
        loop_s = schedule.loop_length * schedule.period_ns / 1e9
        valid_until_s = ordered[i + 1].epoch_ns / 1e9 if i + 1 < len(ordered) else until_s
        k = max(0, int((since_s - LOOKBACK_S - epoch_s) // loop_s))
        while epoch_s + k * loop_s < min(valid_until_s, until_s):
            base = epoch_s + k * loop_s
            for u in transcript.utterances:
                start, end = base + u.start_s, base + u.end_s
                if end <= valid_until_s and start < until_s and end > since_s - LOOKBACK_S:
                    out.append(_Instance(u.index, start, end, words[u.index]))
            k += 1
    out.sort(key=lambda inst: inst.start_s)
    return out


def _covered(ref_tags: list[tuple[int, int]], ref_words: list[str], hyp_words: list[str]) -> list[tuple[int, int]]:
    """(instance, word) pairs that ``hyp_words`` covers: aligned hits, and substitutions between two hits."""
    if not ref_words or not hyp_words:
        return []
    # Aligned back to front: where the same words occur twice in the window (a publisher restarted the loop),
    # the tie goes to the most recent audio, the likelier source of a caption just received.
    ref_tags = ref_tags[::-1]
    chunks = jiwer.process_words(" ".join(ref_words[::-1]), " ".join(hyp_words[::-1])).alignments[0]
    covered: list[tuple[int, int]] = []
    for n, chunk in enumerate(chunks):
        if chunk.type == "equal":
            covered.extend(ref_tags[chunk.ref_start_idx:chunk.ref_end_idx])
        elif chunk.type == "substitute" and 0 < n < len(chunks) - 1 \
                and chunks[n - 1].type == "equal" and chunks[n + 1].type == "equal":
            covered.extend(ref_tags[chunk.ref_start_idx:chunk.ref_end_idx])
    return covered


def match_booth(transcript: Transcript, schedules: Sequence[PublisherSchedule], captions: Sequence[ReceivedCaption], *,
                language: str, listen_start_s: float, listen_end_s: float) -> BoothCaptionResult:
    """Align one caption stream with what the booth's publishers played (see the module docstring)."""
    captions = sorted((c for c in captions if c.text.strip()), key=lambda c: c.received_s)
    recogniser = recogniser_of(captions)
    if not schedules:
        return BoothCaptionResult(recogniser, (), None, 0, 0)
    instances = _instances(transcript, schedules, language, listen_start_s, listen_end_s)
    for caption in captions:
        t = caption.received_s
        window = [n for n, inst in enumerate(instances) if inst.start_s < t and inst.end_s > t - LOOKBACK_S]
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
    finals = [c for c in captions if c.status == FINAL]
    hyp = [w for c in finals for w in normalise(c.text, language)]
    # Stray hits on common words ("the") may land in any instance of the window: span the carried ones.
    touched = [n for n, inst in enumerate(instances) if inst.first_final_s is not None]
    if not touched or recogniser != Recogniser.SPEECH:
        return BoothCaptionResult(recogniser, results, None, 0, len(hyp))
    ref = [w for inst in instances[touched[0]:touched[-1] + 1] for w in inst.words]
    wer = float(jiwer.wer(" ".join(ref), " ".join(hyp))) if hyp else 1.0
    return BoothCaptionResult(recogniser, results, wer, len(ref), len(hyp))
