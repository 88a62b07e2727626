"""The committed speech corpus: its layout (markers only between utterances), the loops engines publish per booth
language, the payload index listeners share, the builder that made it, and an engine publishing it for real."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from harness.rtc.audio import decode_opus
from harness.media.bridge import MediaBridge
from harness.media.listener import ProbeAnalyzer
from harness.rtc.markers import MARKER_INTERVAL_S, MarkerDetector, SAMPLE_RATE
from harness.media.schedule import BoothSchedules
from harness.media.speech import CORPUS_DIR, TRANSCRIPT_FILE, AudioLibrary, load_corpus

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def corpus():
    return load_corpus()


def test_every_scenario_language_has_a_loop_of_one_length(corpus):
    scenario_languages = {"en", "es", "fr", "de", "it"}  # scenarios/*.yaml
    assert scenario_languages <= set(corpus.languages)
    lengths = {corpus.loop(lang).length for lang in corpus.languages}
    assert lengths == {round(corpus.loop_s / 0.02)}
    for lang in corpus.languages:
        utterances = corpus.transcript(lang).utterances
        assert len(utterances) == 8 and all(0 < u.start_s < u.end_s <= corpus.loop_s for u in utterances)
    total_bytes = sum(p.stat().st_size for p in CORPUS_DIR.iterdir())
    assert total_bytes < 450 * 1024  # a few hundred KB in the repository


def test_markers_sit_between_utterances_and_are_heard(corpus):
    slots = corpus.marker_slots
    for lang in corpus.languages:
        for u in corpus.transcript(lang).utterances:
            for slot in slots:
                start_s = slot * MARKER_INTERVAL_S
                assert start_s + 0.04 <= u.start_s or start_s >= u.end_s, (lang, u, slot)
    # Through Opus: each marker slot's id is detected in the decoded audio, and nothing else.
    pcm = decode_opus(corpus.loop("fr").payloads)
    found = [(marker_id, offset) for marker_id, offset in MarkerDetector(SAMPLE_RATE).push(pcm)]
    assert [m for m, _ in found] == list(slots)
    # The codec's look-ahead (312 samples) plus a little: each marker is where its slot starts.
    assert all(abs(offset - m * MARKER_INTERVAL_S * SAMPLE_RATE) < 700 for m, offset in found)


def test_probe_counts_skipped_marker_slots_not_ids(corpus):
    loop = corpus.loop("en")
    pcm = decode_opus(loop.payloads)
    analyzer = ProbeAnalyzer(loop.params.loop_markers, loop.marker_slots)
    frame = 960
    # Drop the audio of the third marker cluster (slots 20-22, 10.0-11.0 s): three markers lost, the rest heard.
    assert loop.marker_slots[4:7] == (20, 21, 22)
    start, end = int(9.9 * SAMPLE_RATE), int(11.3 * SAMPLE_RATE)
    for i in range(0, len(pcm) - frame, frame):
        if not start <= i < end:
            analyzer.on_frame(pcm[i:i + frame], None, time.time_ns(), BoothSchedules())
    interval = analyzer.take_interval()
    assert interval.markers == len(loop.marker_slots) - 3
    assert interval.markers_skipped == 3


def test_library_languages_fallback_and_one_payload_index(corpus):
    library = AudioLibrary.speech(corpus)
    assert library.loop_for("es").language == "es"
    assert library.loop_for("es-419").language == "es"
    assert library.loop_for("ja").language == "en"  # no Japanese voice in the corpus: English speech
    index = library.listening.index_by_payload
    for lang in corpus.languages:
        loop = library.loop_for(lang)
        known = [i for i, payload in enumerate(loop.payloads) if index.get(payload) == i]
        assert len(known) >= 0.99 * loop.length, lang  # room tone keeps packets distinct


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (apt-get install espeak-ng)")
def test_builder_reproduces_the_committed_corpus(tmp_path):
    out = tmp_path / "corpus"
    result = subprocess.run([sys.executable, str(REPO / "tools" / "build_speech_corpus.py"), "--out", "corpus"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=240, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert "5 languages, loop 40.5 s" in result.stdout
    committed = json.loads((CORPUS_DIR / TRANSCRIPT_FILE).read_text(encoding="utf-8"))
    assert json.loads((out / TRANSCRIPT_FILE).read_text(encoding="utf-8")) == committed
    built = load_corpus(out)
    assert built.loop("de").length == load_corpus().loop("de").length


def test_engine_publishes_the_booth_language_and_listeners_know_every_packet(relay, tmp_path):
    path = "speech/1/fr"
    assert httpx.post(f"{relay.media_api_url}/v3/config/paths/add/{path}", json={"alwaysAvailable": True}).status_code == 200
    records: list[dict] = []
    with MediaBridge(tmp_path, engines=1, on_stats=records.append) as bridge:
        publisher = bridge.publish(f"{relay.media_http_url}/{path}/whip", "speech-1-fr", language="fr")
        assert publisher.schedule["language"] == "fr"
        listener = bridge.listen(f"{relay.media_http_url}/{path}/whep", "speech-1-fr", probe=False)
        start = time.time()
        time.sleep(2.5)
        groups = [g for r in records if r["t_epoch_s"] >= start for g in r["groups"]
                  if g["booth"] == "speech-1-fr" and g["role"] == "listener"]
        bridge.close(listener)
        bridge.close(publisher)
    assert sum(g["packets"] for g in groups) > 50
    # Every French packet is found in the shared index: payload-hash latency works for every booth language.
    assert all(g["unknown_payloads"] == 0 for g in groups)
    assert any(g.get("latency_ms") for g in groups)
