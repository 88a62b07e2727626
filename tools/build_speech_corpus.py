"""Build the committed speech corpus (harness/media/corpus/): espeak-ng sentences -> one Opus loop per language.

Run once when the sentences or the layout change (needs Debian's ``espeak-ng``), then commit the output::

    PYTHONPATH=. python3 tools/build_speech_corpus.py            # writes harness/media/corpus/
    PYTHONPATH=. python3 tools/build_speech_corpus.py --out DIR  # elsewhere (tests)

Layout (the same for every language, so a marker slot is free of speech in all of them): utterance ``i`` starts
at the same time in every language, 100 ms after a 500 ms marker slot boundary; its cell lasts as long as the
longest language's utterance plus ``GAP_S`` of pause. A timing marker (markers.py) is embedded in every slot whose
40 ms marker does not touch speech in any language (so markers sit between utterances and never under a word),
and the loop is padded to a whole number of slots. The transcript (``transcript.json``) keeps, per language and
utterance, the text as spoken and its audio start and end (trimmed of espeak's own leading/trailing silence).
"""

from __future__ import annotations

import argparse
import io
import json
import math
import subprocess
import sys
import wave
from pathlib import Path

import av
import numpy as np

from harness.media import speech
from harness.rtc.audio import encode_opus_loop
from harness.rtc.markers import MARKER_ID_COUNT, MARKER_INTERVAL_S, SAMPLE_RATE, marker_start_sample, marker_waveform

# Sentences a chair says at a conference, with numbers (recognisers write them as digits or words).
SENTENCES: dict[str, list[str]] = {
    "en": [
        "Good morning and welcome to the annual meeting.",
        "Please take your seats, we start in five minutes.",
        "Today we discuss the budget for next year.",
        "The committee approved the new proposal.",
        "We have three questions from the audience.",
        "Thank you all for coming to this session.",
        "The next speaker will talk about the climate.",
        "Let us take a short break of twenty minutes.",
    ],
    "es": [
        "Buenos días y bienvenidos a la reunión anual.",
        "Por favor, tomen asiento, empezamos en cinco minutos.",
        "Hoy hablamos del presupuesto del próximo año.",
        "El comité aprobó la nueva propuesta.",
        "Tenemos tres preguntas del público.",
        "Gracias a todos por venir a esta sesión.",
        "El próximo orador hablará sobre el clima.",
        "Hagamos una pausa corta de veinte minutos.",
    ],
    "fr": [
        "Bonjour et bienvenue à la réunion annuelle.",
        "Veuillez prendre place, nous commençons dans cinq minutes.",
        "Aujourd'hui nous discutons du budget de l'année prochaine.",
        "Le comité a approuvé la nouvelle proposition.",
        "Nous avons trois questions du public.",
        "Merci à tous d'être venus à cette séance.",
        "Le prochain orateur parlera du climat.",
        "Faisons une courte pause de vingt minutes.",
    ],
    "de": [
        "Guten Morgen und willkommen zur Jahresversammlung.",
        "Bitte nehmen Sie Platz, wir beginnen in fünf Minuten.",
        "Heute besprechen wir das Budget für nächstes Jahr.",
        "Der Ausschuss hat den neuen Vorschlag angenommen.",
        "Wir haben drei Fragen aus dem Publikum.",
        "Vielen Dank an alle für Ihr Kommen.",
        "Der nächste Redner spricht über das Klima.",
        "Machen wir eine kurze Pause von zwanzig Minuten.",
    ],
    "it": [
        "Buongiorno e benvenuti alla riunione annuale.",
        "Prego, prendete posto, iniziamo tra cinque minuti.",
        "Oggi discutiamo il bilancio del prossimo anno.",
        "Il comitato ha approvato la nuova proposta.",
        "Abbiamo tre domande dal pubblico.",
        "Grazie a tutti per essere venuti a questa sessione.",
        "Il prossimo relatore parlerà del clima.",
        "Facciamo una breve pausa di venti minuti.",
    ],
}
# espeak-ng voices: en-us+f2 is the variant pocketsphinx's US English model recognised best (tools run, see README).
VOICES = {"en": "en-us+f2", "es": "es+f2", "fr": "fr-fr+f2", "de": "de+f2", "it": "it+f2"}
WORDS_PER_MINUTE = 125  # slower than espeak's 175 default: clearer for recognisers
SPEECH_LEVEL_DBFS = -20.0
FLOOR_LEVEL_DBFS = -60.0  # room tone: keeps every Opus packet distinct (payload identity, audio.py)
LEAD_S = 0.1  # an utterance starts this long after a slot boundary (after that slot's 40 ms marker)
GAP_S = 1.2  # pause after the longest language's utterance in a cell
MARKER_GUARD_S = 0.05  # no speech this close to a marker
TRIM_DBFS = -45.0  # espeak's leading/trailing silence is cut at this level (20 ms frames)
BITRATE_BPS = 16000


def synthesise(text: str, voice: str) -> np.ndarray:
    """espeak-ng -> float PCM at 48 kHz, trimmed to the speech itself, at SPEECH_LEVEL_DBFS RMS."""
    raw = subprocess.run(["espeak-ng", "-v", voice, "-s", str(WORDS_PER_MINUTE), "--stdout", text],
                         capture_output=True, check=True).stdout
    with wave.open(io.BytesIO(raw)) as wav:
        rate = wav.getframerate()
        pcm16 = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
    frame = av.AudioFrame.from_ndarray(pcm16.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = rate
    resampler = av.AudioResampler(format="dbl", layout="mono", rate=SAMPLE_RATE)
    pcm = np.concatenate([f.to_ndarray().reshape(-1) for f in resampler.resample(frame) + resampler.resample(None)])
    frame = SAMPLE_RATE // 50
    level = np.array([np.sqrt(np.mean(pcm[i:i + frame] ** 2) + 1e-20) for i in range(0, len(pcm) - frame, frame)])
    loud = np.nonzero(20 * np.log10(level) > TRIM_DBFS)[0]
    if not len(loud):
        raise RuntimeError(f"espeak-ng produced silence for {text!r} ({voice})")
    pcm = pcm[loud[0] * frame:(loud[-1] + 1) * frame]
    active = pcm[np.abs(pcm) > 10 ** (TRIM_DBFS / 20)]
    return pcm * (10 ** (SPEECH_LEVEL_DBFS / 20) / np.sqrt(np.mean(active ** 2)))


def build(out_dir: Path) -> dict:
    languages = sorted(SENTENCES)
    count = {len(SENTENCES[lang]) for lang in languages}
    if len(count) != 1:
        raise SystemExit("every language needs the same number of sentences (one layout for all)")
    waves = {lang: [synthesise(text, VOICES[lang]) for text in SENTENCES[lang]] for lang in languages}
    slot = MARKER_INTERVAL_S
    starts_s: list[float] = []
    t = 0.0
    for i in range(count.pop()):
        starts_s.append(t + LEAD_S)
        longest_s = max(len(waves[lang][i]) for lang in languages) / SAMPLE_RATE
        t = math.ceil((t + LEAD_S + longest_s + GAP_S) / slot) * slot
    loop_slots = int(round(t / slot))
    if loop_slots > MARKER_ID_COUNT:
        raise SystemExit(f"loop of {loop_slots} slots exceeds the {MARKER_ID_COUNT} marker ids")
    total = marker_start_sample(loop_slots)
    spans = [(starts_s[i], starts_s[i] + max(len(waves[lang][i]) for lang in languages) / SAMPLE_RATE) for i in range(len(starts_s))]
    marker_slots = [k for k in range(loop_slots)
                    if all(k * slot + 0.04 + MARKER_GUARD_S <= a or k * slot - MARKER_GUARD_S >= b for a, b in spans)]
    rng = np.random.default_rng(7)
    transcript = {"version": speech.CORPUS_VERSION, "loop_s": loop_slots * slot, "bitrate_bps": BITRATE_BPS,
                  "marker_slots": marker_slots, "words_per_minute": WORDS_PER_MINUTE, "languages": {}}
    out_dir.mkdir(parents=True, exist_ok=True)
    for lang in languages:
        signal = np.zeros(total)
        utterances = []
        for i, (text, pcm) in enumerate(zip(SENTENCES[lang], waves[lang])):
            start = int(round(starts_s[i] * SAMPLE_RATE))
            signal[start:start + len(pcm)] += pcm
            utterances.append({"text": text, "start_s": round(starts_s[i], 3), "end_s": round((start + len(pcm)) / SAMPLE_RATE, 3)})
        floor = rng.standard_normal(total)
        signal += floor * (10 ** (FLOOR_LEVEL_DBFS / 20) / np.sqrt(np.mean(floor ** 2)))
        for k in marker_slots:
            wave_ = marker_waveform(k)
            start = marker_start_sample(k)
            signal[start:start + len(wave_)] += wave_
        payloads = encode_opus_loop(np.clip(signal, -1.0, 1.0), BITRATE_BPS)
        speech.write_packets(out_dir / speech.packets_file(lang), payloads)
        transcript["languages"][lang] = {"voice": VOICES[lang], "utterances": utterances}
    (out_dir / speech.TRANSCRIPT_FILE).write_text(json.dumps(transcript, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return transcript


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=speech.CORPUS_DIR, metavar="DIR")
    args = parser.parse_args(argv)
    transcript = build(args.out)
    size = sum(p.stat().st_size for p in args.out.iterdir())
    print(f"{len(transcript['languages'])} languages, loop {transcript['loop_s']} s, "
          f"{len(transcript['marker_slots'])} marker slots, {size / 1024:.0f} KiB in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
