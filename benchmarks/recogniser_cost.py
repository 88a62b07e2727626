"""What the reference portal's real recogniser costs: CPU seconds per second of booth audio, and its word error rate.

Decodes the committed English speech loop (harness/media/corpus) the way the captioner hears it (Opus decoded,
resampled to 16 kHz, cut into speech segments by pocketsphinx's endpointer, captioner._Segmenter), then decodes
every segment with pocketsphinx in this process, for the captioner's decoder options and pocketsphinx's defaults.
CPU is process time (user + system) of the decoding alone; the word error rate is jiwer's, over the whole loop,
after the normalisation caption matching uses.

    PYTHONPATH=. python3 benchmarks/recogniser_cost.py [--repeat N]

Busy machines inflate CPU a little (cache contention) but not as much as wall time: CPU is what is reported.
"""

from __future__ import annotations

import argparse
import os
import sys

import av
import jiwer
import numpy as np

from harness.rtc.audio import decode_opus
from harness.media.captions_match import normalise
from harness.media.speech import load_corpus
from harness.refstack.portal import captioner, recogniser


def segments_of(pcm48k: np.ndarray) -> list[bytes]:
    resampler = av.AudioResampler(format="s16", layout="mono", rate=recogniser.RECOGNISER_SAMPLE_RATE_HZ)
    frame = av.AudioFrame.from_ndarray(pcm48k.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = 48000
    pcm16k = np.concatenate([f.to_ndarray().reshape(-1) for f in resampler.resample(frame)])
    segmenter = captioner._Segmenter()
    found, _ = segmenter.push(pcm16k)
    tail, _ = segmenter.push(np.zeros(recogniser.RECOGNISER_SAMPLE_RATE_HZ, dtype=np.int16))  # a second of silence ends the last one
    return [pcm for pcm, _ in found + tail]


def measure(options: dict, segments: list[bytes], reference: str, audio_s: float, repeat: int) -> tuple[float, float]:
    from pocketsphinx import Decoder

    recogniser._decoder = Decoder(samprate=recogniser.RECOGNISER_SAMPLE_RATE_HZ, logfn=os.devnull, **options)
    cpu_s = 0.0
    texts: list[str] = []
    for _ in range(repeat):
        texts = []
        for pcm in segments:
            text, cost_s = recogniser.recognise_segment(pcm)
            cpu_s += cost_s
            texts.append(text)
    hypothesis = " ".join(w for t in texts for w in normalise(t))
    return cpu_s / (audio_s * repeat), float(jiwer.wer(reference, hypothesis))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2, metavar="N", help="decode the loop N times per setting")
    args = parser.parse_args(argv)
    if not recogniser.available_for("en"):
        print("pocketsphinx with its English model is not installed", file=sys.stderr)
        return 2
    corpus = load_corpus()
    transcript = corpus.transcript("en")
    pcm = decode_opus(corpus.loop("en").payloads)
    segments = segments_of(pcm)
    reference = " ".join(w for u in transcript.utterances for w in normalise(u.text))
    print(f"English loop: {corpus.loop_s} s, {len(transcript.utterances)} utterances, {len(segments)} speech segments found")
    print(f"{'decoder options':<40} {'CPU s per audio s':>18} {'word error rate':>16}")
    for label, options in (("captioner (recogniser._DECODER_OPTIONS)", recogniser._DECODER_OPTIONS), ("pocketsphinx defaults", {})):
        cpu, wer = measure(options, segments, reference, corpus.loop_s, args.repeat)
        print(f"{label:<40} {cpu:>18.3f} {wer:>16.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
