"""Shared helpers of the portal-live tests (no tests here): JWT minting, WS clients, booth provisioning.

Credentials are minted the way contract 3.1 allows a harness that knows the secret to do it.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from typing import Any
from urllib.parse import urlparse

import httpx
import jwt
import websockets

WS_OPEN_TIMEOUT_S = 5.0
RECV_TIMEOUT_S = 5.0


def mint(stack, claims: dict[str, Any], expiry_s: int = 3600) -> str:
    now = int(time.time())
    return jwt.encode({**claims, "iat": now, "exp": now + expiry_s}, stack.secret_key, algorithm="HS256")


def session_claims(slug: str, room_id: int, lang: str, role: str = "interpreter", sub: str = "invite-sub") -> dict[str, Any]:
    """Contract 3.1: the `session_token` claims an invite join sets."""
    return {"sub": sub, "booth_id": 1, "role": role, "event_slug": slug, "room_id": room_id, "language_code": lang}


def cookie_header(name: str, token: str) -> dict[str, str]:
    return {"Cookie": f"{name}={token}"}


def ws_url(stack, path: str) -> str:
    return "ws://" + urlparse(stack.portal_url).netloc + path


def http(stack, **kwargs) -> httpx.Client:
    return httpx.Client(base_url=stack.portal_url, follow_redirects=False, timeout=10.0, **kwargs)


def provision(stack, slug: str, lang: str, **body: Any) -> dict[str, Any]:
    with http(stack) as client:
        resp = client.post(f"/api/events/{slug}/booths", json={"language_code": lang, **body})
    assert resp.status_code == 201, resp.text
    return resp.json()


def sql(stack, statement: str, params: tuple = ()) -> list[tuple]:
    """Direct access to the stack's real SQLite file (what an admin form would have written)."""
    db_path = stack.portal_env["DATABASE_URL"].split(":///", 1)[1]
    with sqlite3.connect(db_path, timeout=10) as conn:
        rows = conn.execute(statement, params).fetchall()
        conn.commit()
    return rows


async def connect(stack, booth_id: str, headers: dict[str, str] | None = None, query: str = "", kind: str = "booth", **kwargs):
    return await websockets.connect(
        ws_url(stack, f"/ws/{kind}/{booth_id}{query}"),
        additional_headers=headers or {},
        open_timeout=WS_OPEN_TIMEOUT_S,
        **kwargs,
    )


async def recv_json(ws, timeout_s: float = RECV_TIMEOUT_S) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout_s))


async def recv_until(ws, msg_type: str, timeout_s: float = RECV_TIMEOUT_S, where=None) -> dict[str, Any]:
    """Skip messages until one of ``msg_type`` (and matching ``where``) arrives."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            raise TimeoutError(f"no {msg_type} within {timeout_s} s")
        message = await recv_json(ws, remaining)
        if message.get("type") == msg_type and (where is None or where(message)):
            return message


async def join(ws, **fields: Any) -> dict[str, Any]:
    await ws.send(json.dumps({"type": "booth:join", **fields}))
    return await recv_until(ws, "booth:joined")


async def send(ws, msg_type: str, **fields: Any) -> None:
    await ws.send(json.dumps({"type": msg_type, **fields}))


# --- a caption provider for the portal subprocess (REFSTACK_CAPTION_PROVIDER=test_portal_live_helpers:scripted_transcribe) ---
# It stands in for ffmpeg + speech recognition with a fixed script, one chunk per "3 s of audio" (paced
# much faster here), so the worker loop, the aggregator and the caption fan-out run for real.
SCRIPTED_CHUNKS = (
    "one two three four five six seven eight nine ten. eleven",  # -> final (10 words) + partial "eleven"
    "",  # silence -> final "eleven"
    "",  # silence with nothing pending -> clear
)
SCRIPTED_CHUNK_PAUSE_S = 0.2


async def scripted_transcribe(whep_url: str, *, language: str | None = None):
    assert whep_url.endswith("/whep"), whep_url
    for chunk in SCRIPTED_CHUNKS:
        await asyncio.sleep(SCRIPTED_CHUNK_PAUSE_S)
        yield chunk
