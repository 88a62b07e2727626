"""The speech corpus: pre-encoded Opus loops of espeak-ng sentences, one per language, with their transcript.

Owns the corpus folder (``harness/media/corpus/``, built by ``tools/build_speech_corpus.py`` and committed), its
file names and format, the transcript model (``Utterance``: text and audio start/end within the loop) and
``AudioLibrary``: the loops an engine publishes (one per booth language, media-design 2: publishers stay
pre-encoded) and the one payload index its listeners look packets up in.

Every language's loop has the same length and the same marker slots (the builder lays utterance ``i`` at the same
time in every language), so a payload names its loop index whatever the booth's language, and marker ``m`` sits in
packet ``m * 25`` as with the synthetic loop (schedule.py). Markers sit only between utterances, where they do not
hurt recognition. A booth whose language has no corpus speaks the fallback language (``FALLBACK_LANGUAGE``).
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import VoxloadError

if TYPE_CHECKING:
    from ..rtc.audio import AudioParams, OpusLoop

# audio.py (PyAV) is imported where loops are built, not here: Locust processes read transcripts (caption
# matching) without loading the codec stack.

CORPUS_VERSION = 1
CORPUS_DIR = Path(__file__).parent / "corpus"
TRANSCRIPT_FILE = "transcript.json"
FALLBACK_LANGUAGE = "en"


def packets_file(language: str) -> str:
    return f"speech-{language}.npz"


def write_packets(path: Path, payloads: list[bytes]) -> None:
    from ..rtc.audio import _write_cache

    _write_cache(path, payloads)


class CorpusError(VoxloadError, RuntimeError):
    """The corpus folder is missing or malformed (names the file)."""


@dataclasses.dataclass(frozen=True)
class Utterance:
    index: int
    text: str
    start_s: float  # audio start within the loop
    end_s: float  # audio end within the loop: caption delays count from here


@dataclasses.dataclass(frozen=True)
class Transcript:
    """What one language's loop says, and when."""

    language: str
    loop_s: float
    utterances: tuple[Utterance, ...]


@dataclasses.dataclass(frozen=True)
class SpeechCorpus:
    path: Path
    loop_s: float
    bitrate_bps: int
    marker_slots: tuple[int, ...]
    transcripts: Mapping[str, Transcript]

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(sorted(self.transcripts))

    def language_for(self, language: str | None) -> str:
        """The corpus language a booth of ``language`` speaks ('es-419' -> 'es'; unknown -> the fallback)."""
        base = (language or "").lower().split("-")[0].split("_")[0]
        return base if base in self.transcripts else FALLBACK_LANGUAGE

    def transcript(self, language: str | None) -> Transcript:
        return self.transcripts[self.language_for(language)]

    def loop(self, language: str) -> OpusLoop:
        from ..rtc.audio import AudioParams, OpusLoop, _read_cache

        path = self.path / packets_file(language)
        try:
            payloads = _read_cache(path)
        except (OSError, ValueError, KeyError) as exc:
            raise CorpusError(f"{path}: unreadable speech packets ({exc})") from exc
        loop_markers = round(self.loop_s / 0.5)
        params = AudioParams(seed=0, bitrate_bps=self.bitrate_bps, loop_markers=loop_markers)
        if len(payloads) != loop_markers * 25:
            raise CorpusError(f"{path}: {len(payloads)} packets, the transcript says {self.loop_s} s")
        return OpusLoop.from_payloads(params, payloads, marker_slots=self.marker_slots, language=language)


def load_corpus(path: Path | None = None) -> SpeechCorpus:
    path = Path(path) if path is not None else CORPUS_DIR
    file = path / TRANSCRIPT_FILE
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
        if data.get("version") != CORPUS_VERSION:
            raise CorpusError(f"{file}: corpus version {data.get('version')!r}, expected {CORPUS_VERSION}")
        loop_s = float(data["loop_s"])
        transcripts = {
            lang: Transcript(lang, loop_s, tuple(Utterance(i, u["text"], float(u["start_s"]), float(u["end_s"]))
                                                 for i, u in enumerate(entry["utterances"])))
            for lang, entry in data["languages"].items()
        }
        return SpeechCorpus(path, loop_s, int(data["bitrate_bps"]), tuple(int(k) for k in data["marker_slots"]), transcripts)
    except OSError as exc:
        raise CorpusError(f"{file}: {exc.strerror or exc}") from exc
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CorpusError(f"{file}: malformed transcript ({exc.__class__.__name__}: {exc})") from exc


@functools.cache
def default_corpus() -> SpeechCorpus:
    """The committed corpus, read once per process (its transcript is what caption matching compares with)."""
    return load_corpus()


class AudioSource:
    """Which audio publishers play: ``speech`` (the corpus, per booth language) or ``synthetic`` (audio.py)."""

    SPEECH = "speech"
    SYNTHETIC = "synthetic"
    CHOICES = (SPEECH, SYNTHETIC)


class AudioLibrary:
    """The loops one engine publishes, and the payload index shared by its listeners."""

    def __init__(self, loops: Mapping[str | None, OpusLoop], fallback: str | None) -> None:
        lengths = {loop.length for loop in loops.values()}
        if len(lengths) != 1:
            raise CorpusError(f"loops of different lengths {sorted(lengths)}: payload indexes would disagree")
        self._loops = dict(loops)
        self._fallback = fallback
        from ..rtc.audio import OpusLoop

        self.listening = OpusLoop.merged(list(self._loops.values()))

    @classmethod
    def synthetic(cls, params: AudioParams | None = None, cache_dir: Path | None = None) -> AudioLibrary:
        from ..rtc.audio import load_loop

        return cls({None: load_loop(params, cache_dir)}, None)

    @classmethod
    def speech(cls, corpus: SpeechCorpus | None = None, languages: Iterable[str] | None = None) -> AudioLibrary:
        corpus = corpus or load_corpus()
        wanted = corpus.languages if languages is None else sorted({corpus.language_for(x) for x in languages})
        return cls({lang: corpus.loop(lang) for lang in wanted}, corpus.language_for(FALLBACK_LANGUAGE))

    @property
    def length(self) -> int:
        return self.listening.length

    def loop_for(self, language: str | None) -> OpusLoop:
        if self._fallback is None:
            return self._loops[None]
        base = (language or "").lower().split("-")[0].split("_")[0]
        return self._loops.get(base) or self._loops[self._fallback]
