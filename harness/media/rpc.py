"""The engine's JSON-lines RPC over a Unix socket: message shapes shared by engine.py and bridge.py.

One JSON object per line, UTF-8, in both directions.

Client -> engine, requests: ``{"id": <int>, "op": <op>, "args": {...}}``; every request gets exactly one
response ``{"id": <same>, "ok": true, "result": {...}}`` or ``{"id": <same>, "ok": false, "error":
{"type": <errors.py class name>, "message": ..., ["status": <HTTP status>]}}``. Requests run concurrently
in the engine; responses come in completion order.

Ops: ``hello`` -> {engine, pid, protocol, uvloop, imported: {gevent, locust}}; ``publish`` {whip_url, booth}
-> {handle, setup, schedule}; ``listen`` {whep_url, booth, mode (listener|probe|stock), schedules: [schedule...]} -> {handle, setup};
``schedule`` {booth, schedule} -> {} (a publisher of that booth started elsewhere); ``close`` {handle} ->
{transitions}; ``shutdown`` -> {} (the engine closes every session and exits 0).

Engine -> client, pushes (no id): ``{"push": "stats", "data": <aggregate.py record + health>}`` once per
interval, and ``{"push": "event", "data": {...}}`` for sessions that disconnect on their own.
"""

from __future__ import annotations

import json

PROTOCOL_VERSION = 1
OPS = ("hello", "publish", "listen", "schedule", "close", "shutdown")
MAX_LINE_BYTES = 16 * 1024 * 1024


def encode(message: dict) -> bytes:
    return (json.dumps(message, separators=(",", ":")) + "\n").encode()


def decode(line: bytes) -> dict:
    message = json.loads(line)
    if not isinstance(message, dict):
        raise ValueError("an RPC message must be a JSON object")
    return message
