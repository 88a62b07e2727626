"""Caption matching on crafted caption streams against the committed English transcript.

The schedule and every receive time are chosen, so each expected delay and error rate is exact.
"""

from __future__ import annotations

import pytest

from harness.media.captions_match import (FINAL, PARTIAL, Recogniser, ReceivedCaption, match_booth, normalise)
from harness.media.schedule import PublisherSchedule
from harness.media.speech import load_corpus

EPOCH_S = 1_000_000.0


@pytest.fixture(scope="module")
def transcript():
    return load_corpus().transcript("en")


def schedule(transcript, epoch_s=EPOCH_S, publisher="p1"):
    return PublisherSchedule(publisher, int(epoch_s * 1e9), round(transcript.loop_s / 0.02), language="en")


def end_s(transcript, index, loop=0, epoch_s=EPOCH_S):
    return epoch_s + loop * transcript.loop_s + transcript.utterances[index].end_s


def cap(status, text, t):
    return ReceivedCaption(status, text, t)


def by_index(result):
    return {u.index: u for u in result.utterances}


def test_normalise_digits_case_punctuation_accents():
    assert normalise("Please take your seats, we start in 5 minutes!") == normalise("please take your seats we start in five minutes")
    assert normalise("Twenty-one", "en") == ["twenty", "one"]
    assert normalise("Faisons une courte pause de 20 minutes.", "fr")[-2:] == ["vingt", "minutes"]
    assert normalise("Hoy hablamos del presupuesto del próximo año", "es")[-2:] == ["proximo", "ano"]


def test_digits_split_merged_and_partials(transcript):
    u = transcript.utterances
    assert u[1].text.startswith("Please take your seats") and "five" in u[1].text
    captions = [
        # Utterance 0 split over two finals: 2 of 8 words (less than a third), then the rest.
        cap(FINAL, "Good morning", end_s(transcript, 0) - 1.0),
        cap(FINAL, "and welcome to the annual meeting.", end_s(transcript, 0) + 0.5),
        # Utterance 1 with a digit where the speaker said "five", shown first as a growing partial.
        cap(PARTIAL, "PLEASE TAKE", end_s(transcript, 1) + 0.2),
        cap(PARTIAL, "please take your seats, we start", end_s(transcript, 1) + 0.7),
        cap(FINAL, "Please take your seats; we start in 5 minutes.", end_s(transcript, 1) + 2.0),
        # Utterances 2 and 3 merged into one final.
        cap(FINAL, u[2].text + " " + u[3].text, end_s(transcript, 3) + 1.5),
    ]
    result = match_booth(transcript, [schedule(transcript)], captions, language="en",
                         listen_start_s=EPOCH_S, listen_end_s=end_s(transcript, 3) + 3.0)
    assert result.recogniser == Recogniser.SPEECH
    rows = by_index(result)
    assert sorted(rows) == [0, 1, 2, 3]
    assert rows[0].final_delay_ms == pytest.approx(500.0)
    assert rows[0].first_partial_delay_ms == pytest.approx(500.0)  # the first final alone covers 2/8 < a third
    assert rows[1].first_partial_delay_ms == pytest.approx(700.0)  # 2/9 by the first partial, 6/9 by the second
    assert rows[1].final_delay_ms == pytest.approx(2000.0)
    merged_t = end_s(transcript, 3) + 1.5
    assert rows[2].final_delay_ms == pytest.approx((merged_t - end_s(transcript, 2)) * 1000.0)
    assert rows[3].final_delay_ms == pytest.approx(1500.0)
    assert result.word_error_rate == pytest.approx(0.0)
    assert result.carried == 4


def test_word_error_rate_counts_errors_and_loop_wrap_picks_the_right_instance(transcript):
    u = transcript.utterances
    # Second loop occurrence: the caption must match loop 1, not loop 0 (40.5 s earlier).
    t4 = end_s(transcript, 4, loop=1) + 1.0
    t5 = end_s(transcript, 5, loop=1) + 2.5
    words4 = u[4].text.rstrip(".").split()  # "We have three questions from the audience" (7 words)
    wrong4 = " ".join(words4[:3] + ["west", "and"] + words4[5:])  # two substitutions
    captions = [cap(FINAL, wrong4, t4), cap(FINAL, u[5].text + " extra", t5)]  # one insertion
    result = match_booth(transcript, [schedule(transcript)], captions, language="en",
                         listen_start_s=EPOCH_S + transcript.loop_s + u[4].start_s - 0.1, listen_end_s=t5 + 1.0)
    rows = by_index(result)
    assert rows[4].final_delay_ms == pytest.approx(1000.0)
    assert rows[5].final_delay_ms == pytest.approx(2500.0)
    ref_words = len(normalise(u[4].text)) + len(normalise(u[5].text))
    assert result.reference_words == ref_words
    assert result.word_error_rate == pytest.approx(3 / ref_words)


def test_unrecognisable_captions_carry_nothing_and_stand_in_is_named(transcript):
    t = end_s(transcript, 2) + 1.0
    garbage = match_booth(transcript, [schedule(transcript)], [cap(FINAL, "orca linda huh", t)], language="en",
                          listen_start_s=EPOCH_S, listen_end_s=t + 1.0)
    assert garbage.recogniser == Recogniser.SPEECH
    assert garbage.carried == 0 and all(r.first_partial_delay_ms is None for r in garbage.utterances)
    assert garbage.word_error_rate is None  # no final covers any utterance: nothing to compare against
    stand_in = match_booth(transcript, [schedule(transcript)], [cap(FINAL, "marker 8 marker 9 marker 10.", t)],
                           language="en", listen_start_s=EPOCH_S, listen_end_s=t + 1.0)
    assert stand_in.recogniser == Recogniser.STAND_IN and stand_in.word_error_rate is None
    none = match_booth(transcript, [schedule(transcript)], [], language="en", listen_start_s=EPOCH_S, listen_end_s=t)
    assert none.recogniser == Recogniser.NONE and none.carried == 0


def test_handover_schedule_replaces_the_old_one(transcript):
    # A second publisher started 10 s into the loop: from then on its instances are the ones spoken.
    second_epoch = EPOCH_S + 10.0
    u0_end = second_epoch + transcript.utterances[0].end_s
    result = match_booth(transcript, [schedule(transcript), schedule(transcript, second_epoch, "p2")],
                         [cap(FINAL, transcript.utterances[0].text, u0_end + 1.2)], language="en",
                         listen_start_s=EPOCH_S, listen_end_s=u0_end + 2.0)
    carried = [r for r in result.utterances if r.final_delay_ms is not None]
    assert [(r.index, round(r.final_delay_ms)) for r in carried] == [(0, 1200)]


def test_a_caption_is_located_in_a_long_window_with_every_hit_kept(transcript):
    # Recorded from pocketsphinx on the corpus: "the committee" misheard as "but can we be", merged with the
    # sentence before. Minimal edit distance aligned this badly inside a window of six utterances (the same cost
    # with fewer hits); the caption must carry both utterances.
    t = end_s(transcript, 3) + 7.6
    captions = [cap(PARTIAL, "today we discussed the budget for next year.", end_s(transcript, 2) + 5.0),
                cap(FINAL, "today we discussed the budget for next year. but can we be approved the new proposal.", t)]
    result = match_booth(transcript, [schedule(transcript)], captions, language="en",
                         listen_start_s=EPOCH_S + 10.0, listen_end_s=end_s(transcript, 5) + 1.0)
    rows = by_index(result)
    assert rows[2].first_partial_delay_ms == pytest.approx(5000.0)
    assert rows[3].final_delay_ms == pytest.approx(7600.0)
    assert rows[4].final_delay_ms is None and rows[5].final_delay_ms is None
    # 14 reference words; "discussed" for "discuss" and "but can we be" for "the committee": 3 S + 2 I = 5 errors.
    assert result.reference_words == 14
    assert result.word_error_rate == pytest.approx(5 / 14)


def test_a_recogniser_lagging_by_more_than_a_loop_stays_on_the_right_repetition(transcript):
    # An overloaded recogniser: its backlog grows from 3 s to 48 s over two loops, past the 40.5 s loop length,
    # so late captions also match the next repetition, whose audio has already started; continuity keeps the
    # right one.
    spoken = [(loop, u) for loop in (0, 1) for u in transcript.utterances]
    lags_s = [3.0 + 3.0 * i for i in range(len(spoken))]
    captions = [cap(FINAL, u.text, end_s(transcript, u.index, loop) + lag) for (loop, u), lag in zip(spoken, lags_s)]
    result = match_booth(transcript, [schedule(transcript)], captions, language="en",
                         listen_start_s=EPOCH_S, listen_end_s=EPOCH_S + 2 * transcript.loop_s)
    assert len(result.utterances) == len(spoken)
    assert [round(u.final_delay_ms) for u in result.utterances] == [round(lag * 1000) for lag in lags_s]
    assert result.word_error_rate == pytest.approx(0.0)


@pytest.mark.parametrize(("text", "language", "words"), [
    ("1,000 people", "en", ["one", "thousand", "people"]),
    ("3.5 minutes", "en", ["three", "point", "five", "minutes"]),
    ("2.000 personas", "es", ["dos", "mil", "personas"]),
    ("...!?", "en", []),
    ("", "en", []),
    ("会议 5", "zh", ["会议", "five"]),  # no num2words for Chinese: English number words, the text kept
    ("9" * 400, "en", ["9" * 400]),  # too large to say: kept as it is, no exception
])
def test_normalise_hostile_text(text, language, words):
    assert normalise(text, language) == words
