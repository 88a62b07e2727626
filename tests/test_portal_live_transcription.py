"""Transcription workers, cap, leaks and captions against a real portal (contract 6.3, 7.1-7.4, 14.2, 14.3)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from test_portal_live_helpers import (
    connect,
    cookie_header,
    http,
    join,
    mint,
    provision,
    recv_json,
    send,
    session_claims,
    sql,
)

from harness.refstack.portal.captions import CaptionAggregator

SLUG = "capfest"
LANGS = ("es", "fr", "de", "it", "pt", "nl", "sv", "pl", "ro", "cs", "da", "fi")
TESTS_DIR = str(Path(__file__).parent)


def _start_path(room_id: int, lang: str, slug: str = SLUG) -> str:
    return f"/api/events/{slug}/rooms/{room_id}/booths/{lang}/transcription/start"


def _enable_transcription(stack) -> None:
    """What the admin settings form stores (contract 4.3), written to the real SQLite file."""
    sql(stack, "UPDATE booths SET transcription_enabled = 1")


def _provision_enabled(stack, langs) -> dict[str, int]:
    rooms = {lang: provision(stack, SLUG, lang, room_id=1)["room_id"] for lang in langs}
    _enable_transcription(stack)
    return rooms


@pytest.mark.parametrize("cap", [10, 3])
def test_start_api_429_for_the_first_booth_over_the_cap(stack_factory, cap):
    env = {} if cap == 10 else {"REFSTACK_MAX_TOTAL_WORKERS": str(cap)}
    portal = stack_factory(portal_env=env)
    rooms = _provision_enabled(portal, LANGS[: cap + 1])
    with http(portal) as client:
        answers = [client.post(_start_path(rooms[lang], lang), json={}) for lang in LANGS[: cap + 1]]
        assert [a.status_code for a in answers] == [200] * cap + [429]
        assert answers[0].json() == {"status": "started", "provider": "local", "model": "tiny"}
        assert answers[-1].json() == {"detail": f"System at maximum capacity ({cap} concurrent transcription booths)."}
        # Contract 7.1: "started" also when the booth already has a worker, even at the cap.
        assert client.post(_start_path(rooms["es"], "es")).json()["status"] == "started"
        # A stop frees a slot; stop always answers 200.
        assert client.post(_start_path(rooms["es"], "es").replace("start", "stop")).json() == {"status": "stopped"}
        assert client.post(_start_path(rooms["es"], "es").replace("start", "stop")).json() == {"status": "stopped"}
        last = LANGS[cap]
        assert client.post(_start_path(rooms[last], last)).status_code == 200


def test_disabled_booth_and_invalid_language(portal):
    room_id = provision(portal, SLUG, "es")["room_id"]
    with http(portal) as client:
        disabled = client.post(_start_path(room_id, "es"))
        assert disabled.status_code == 200 and disabled.json()["status"] == "disabled"
        # Contract 7.1 [V]: an invalid language segment ends in a 500.
        assert client.post(_start_path(room_id, "zz")).status_code == 500


def test_interpreter_disconnect_leaks_the_slot_and_lock_frees_it(stack_factory):
    portal = stack_factory(portal_env={"REFSTACK_MAX_TOTAL_WORKERS": "1"})
    rooms = _provision_enabled(portal, ("es", "fr"))
    booth_es = f"{SLUG}-{rooms['es']}-es"

    async def interpreter_starts_then_vanishes():
        headers = cookie_header("session_token", mint(portal, session_claims(SLUG, rooms["es"], "es")))
        async with await connect(portal, booth_es, headers) as ws:
            await join(ws)
            with http(portal) as client:
                assert client.post(_start_path(rooms["es"], "es")).status_code == 200
        # The socket closes without any transcription/stop call (a killed browser tab).

    asyncio.run(interpreter_starts_then_vanishes())
    with http(portal) as client:
        # Contract 7.1, 14.3: nothing stopped the worker, so the only slot is still taken.
        assert client.post(_start_path(rooms["fr"], "fr")).status_code == 429

    async def coordinator_locks():
        async with await connect(portal, booth_es, cookie_header("admin_token", mint(portal, {"admin": True}))) as ws:
            await send(ws, "booth:set-broadcast-unlocked", unlocked=False)
            assert (await recv_json(ws))["type"] == "booth:state"

    asyncio.run(coordinator_locks())
    with http(portal) as client:
        # Contract 5.3: locking stopped the worker, so the slot is free again.
        assert client.post(_start_path(rooms["fr"], "fr")).status_code == 200


def test_admin_settings_form_at_the_cap_is_500_and_rolls_back(stack_factory):
    portal = stack_factory(portal_env={"REFSTACK_MAX_TOTAL_WORKERS": "1"})
    rooms = _provision_enabled(portal, ("es",))
    provision(portal, SLUG, "fr", room_id=rooms["es"])  # transcription off
    (event_id,) = sql(portal, "SELECT id FROM events WHERE slug = ?", (SLUG,))[0]
    (fr_db_id,) = sql(portal, "SELECT id FROM booths WHERE language_code = 'fr'")[0]
    booth_fr = f"{SLUG}-{rooms['es']}-fr"
    admin = cookie_header("admin_token", mint(portal, {"admin": True}))

    async def scenario():
        headers = cookie_header("session_token", mint(portal, session_claims(SLUG, rooms["es"], "fr")))
        async with await connect(portal, booth_fr, headers) as ws:
            await join(ws)  # the fr booth now has an active interpreter (contract 4.3 precondition)
            with http(portal, headers=admin) as client:
                assert client.post(_start_path(rooms["es"], "es")).status_code == 200
                return client.post(
                    f"/admin/events/{event_id}/rooms/{rooms['es']}/booths/{fr_db_id}/transcription-settings",
                    data={"transcription_enabled": "true", "transcription_provider": "local", "transcription_model": "base"},
                )

    resp = asyncio.run(scenario())
    assert resp.status_code == 500
    assert sql(portal, "SELECT transcription_enabled, transcription_model FROM booths WHERE id = ?", (fr_db_id,)) == [(0, "tiny")]


def test_caption_messages_and_segments_from_a_running_worker(stack_factory):
    portal = stack_factory(
        portal_env={"REFSTACK_CAPTION_PROVIDER": "test_portal_live_helpers:scripted_transcribe", "PYTHONPATH": TESTS_DIR}
    )
    rooms = _provision_enabled(portal, ("es",))
    booth_id = f"{SLUG}-{rooms['es']}-es"

    async def scenario():
        async with await connect(portal, booth_id, kind="captions") as captions:
            with http(portal) as client:
                assert client.post(_start_path(rooms["es"], "es")).status_code == 200
            first_loop = [await recv_json(captions, 10) for _ in range(5)]
            # The provider ended; after the 1 s pause a new loop iteration builds a new aggregator.
            second_loop_final = await recv_json(captions, 10)
            while second_loop_final["status"] != "final":
                second_loop_final = await recv_json(captions, 10)
            with http(portal) as client:
                client.post(_start_path(rooms["es"], "es").replace("start", "stop"))
            return first_loop, second_loop_final

    first_loop, second_final = asyncio.run(scenario())
    statuses = [(m["status"], m["text"]) for m in first_loop]
    assert statuses == [
        ("final", "one two three four five six seven eight nine ten."),
        ("partial", "eleven"),
        ("final", "eleven"),
        ("clear", ""),
        ("final", "one two three four five six seven eight nine ten."),
    ]
    assert [first_loop[0]["seq"], first_loop[2]["seq"]] == [1, 2]
    # Contract 6.3: seq restarts at 1 per loop iteration; segment ids are fresh uuid4s.
    assert first_loop[4]["seq"] == 1 and second_final["seq"] == 2
    assert len({first_loop[0]["segment_id"], first_loop[2]["segment_id"], first_loop[4]["segment_id"]}) == 3
    rows = sql(portal, "SELECT booth_id, room_id, seq, text FROM transcript_segments ORDER BY id")
    assert rows[:2] == [
        (booth_id, rooms["es"], 1, "one two three four five six seven eight nine ten."),
        (booth_id, rooms["es"], 2, "eleven"),
    ]


def test_aggregator_local_chunk_rules():
    sent: list[dict] = []
    finals: list = []

    async def collect(message: dict) -> None:
        sent.append(message)

    async def feed():
        agg = CaptionAggregator(collect, finals.append)
        await agg.add_chunk("Short. sentence without enough words")  # '.' after 1 word: not a cut
        await agg.add_chunk("and it keeps going on and on without any end")  # no punctuation after: partial grows
        await agg.add_chunk("until here! Then more")
        await agg.add_silence()
        await agg.add_silence()
        await agg.add_chunk("a b c d e f g h i j?")  # exactly 10 words then '?': final and clear

    asyncio.run(feed())
    assert [m["status"] for m in sent] == ["partial", "partial", "final", "partial", "final", "clear", "final", "clear"]
    assert sent[2]["text"] == "Short. sentence without enough words and it keeps going on and on without any end until here!"
    assert sent[3]["text"] == "Then more"
    assert sent[4]["text"] == "Then more"
    assert [f.seq for f in finals] == [1, 2, 3]
    assert sent[6] == {"type": "caption", "status": "final", "text": "a b c d e f g h i j?", "segment_id": finals[2].segment_id, "seq": 3}


def test_admin_disable_on_a_live_booth_pushes_an_empty_final(portal):
    rooms = _provision_enabled(portal, ("es",))
    booth_id = f"{SLUG}-{rooms['es']}-es"
    (event_id,) = sql(portal, "SELECT id FROM events WHERE slug = ?", (SLUG,))[0]
    (db_id,) = sql(portal, "SELECT id FROM booths WHERE language_code = 'es'")[0]
    admin = cookie_header("admin_token", mint(portal, {"admin": True}))

    async def scenario():
        headers = cookie_header("session_token", mint(portal, session_claims(SLUG, rooms["es"], "es")))
        async with await connect(portal, booth_id, headers) as ws, await connect(portal, booth_id, kind="captions") as captions:
            await join(ws)
            with http(portal, headers=admin) as client:
                assert client.post(_start_path(rooms["es"], "es")).status_code == 200
                resp = client.post(f"/admin/events/{event_id}/rooms/{rooms['es']}/booths/{db_id}/transcription-settings", data={})
                assert resp.status_code == 303
            message = await recv_json(captions, 10)
            while message.get("status") != "final" or message.get("segment_id"):
                message = await recv_json(captions, 10)
            return message

    # Contract 6.3: the settings-change notice is a final with empty text and no id/seq.
    assert asyncio.run(scenario()) == {"type": "caption", "status": "final", "text": ""}


def test_end_to_end_captions_from_published_booth_audio(stack):
    """Real chain: WHIP publisher -> relay -> worker's WHEP captioner -> aggregator -> /ws/captions (contract 7)."""
    from harness.rtc.audio import load_loop
    from harness.refstack.media.loopback_peers import LoopPublisher

    booth = provision(stack, SLUG, "es")
    _enable_transcription(stack)
    booth_id, room_id = booth["booth_id"], booth["room_id"]

    async def scenario():
        async with httpx.AsyncClient() as client:
            publisher = await LoopPublisher(client, stack.media_http_url, booth["mediamtx_path"], load_loop().payloads).start()
            try:
                async with await connect(stack, booth_id, kind="captions") as captions:
                    resp = await client.post(stack.portal_url + _start_path(room_id, "es"))
                    assert resp.json()["status"] == "started"
                    deadline = asyncio.get_running_loop().time() + 30
                    while asyncio.get_running_loop().time() < deadline:
                        message = await recv_json(captions, 30)
                        if message["status"] == "final" and message["text"]:
                            return message
            finally:
                await client.post(stack.portal_url + _start_path(room_id, "es").replace("start", "stop"))
                await publisher.close()
        raise AssertionError("no final caption within 30 s")

    final = asyncio.run(scenario())
    assert final["text"].startswith("marker ") and final["text"].endswith(".")
    assert final["seq"] >= 1
