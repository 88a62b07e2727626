"""How long caption matching takes for one listener's caption stream (each listener matches its own at the end of
its session, inside the Locust process, so this is time the gevent hub is busy).

Synthesises a caption stream of the given length against the English transcript: per utterance a partial 2 s
and a final 5 s after its audio, a misheard word in every other caption.

    PYTHONPATH=. python3 benchmarks/caption_match_speed.py [--hours H]
"""

from __future__ import annotations

import argparse
import sys
import time

from harness.media.captions_match import FINAL, PARTIAL, ReceivedCaption, match_booth
from harness.media.schedule import PublisherSchedule
from harness.media.speech import load_corpus

EPOCH_S = 1_000_000.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=1.0, metavar="H")
    args = parser.parse_args(argv)
    transcript = load_corpus().transcript("en")
    schedule = PublisherSchedule("p", int(EPOCH_S * 1e9), round(transcript.loop_s / 0.02), language="en")
    duration_s = args.hours * 3600
    captions = []
    loop = 0
    while loop * transcript.loop_s < duration_s - transcript.loop_s:
        for u in transcript.utterances:
            end_s = EPOCH_S + loop * transcript.loop_s + u.end_s
            text = u.text if len(captions) % 4 else u.text.replace(" the ", " a ", 1)
            captions += [ReceivedCaption(PARTIAL, text, end_s + 2.0), ReceivedCaption(FINAL, text, end_s + 5.0)]
        loop += 1
    start = time.perf_counter()
    result = match_booth(transcript, [schedule], captions, language="en", listen_start_s=EPOCH_S, listen_end_s=EPOCH_S + duration_s)
    elapsed_s = time.perf_counter() - start
    print(f"{args.hours:g} h: {len(captions)} captions, {len(result.utterances)} utterances ({result.carried} carried), "
          f"word error rate {result.word_error_rate:.3f}, matched in {elapsed_s:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
