"""The run-folder files browser canaries write (one owner of their names) and reading them back.

Under ``RUN/browser/``, per canary NAME (``l0``, ``l1``, ``i0``), each a JSON-lines file flushed per line:

* ``canary-NAME-seconds.jsonl``: one record per second: getStats() interval figures, marker latencies,
  the canary's state and the CPU/memory of its browser.
* ``canary-NAME-events.jsonl``: state transitions, setup figures, WHEP/WHIP POSTs, the end.
* ``canary-NAME-page.jsonl``: what the target's pages got wrong: console errors, uncaught exceptions,
  failed requests (pagelog.py).
* ``status.jsonl``: the fleet's own lines (Chromium unavailable, a canary that could not start or died).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from .layout import BROWSER_DIR, BROWSER_STATUS_JSONL, canary_file_name


def browser_dir(run_path: Path) -> Path:
    return Path(run_path) / BROWSER_DIR


def canary_file(run_path: Path, name: str, kind: str) -> Path:
    return browser_dir(run_path) / canary_file_name(name, kind)


class JsonLines:
    """Append-only JSON lines, one flush per record (a crash loses at most the line being written)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(path, "a", encoding="utf-8")
        self._lock = threading.Lock()

    def write(self, record: dict) -> None:
        record.setdefault("t_epoch_s", round(time.time(), 3))
        with self._lock:
            if self._fh.closed:
                return
            self._fh.write(json.dumps(record, separators=(",", ":")) + "\n")
            self._fh.flush()

    def close(self) -> None:
        with self._lock:
            self._fh.close()


def read_jsonl(path: Path) -> list[dict]:
    records = []
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # the last line of a writer that died
    except FileNotFoundError:
        return []
    return records


def canary_names(run_path: Path) -> list[str]:
    names = set()
    for path in browser_dir(run_path).glob("canary-*-*.jsonl"):
        names.add(path.name[len("canary-"):].rsplit("-", 1)[0])
    return sorted(names)


def read_canaries(run_path: Path) -> dict[str, dict[str, list[dict]]]:
    """{canary name: {"seconds": [...], "events": [...], "page": [...]}}."""
    return {name: {kind: read_jsonl(canary_file(run_path, name, kind)) for kind in ("seconds", "events", "page")}
            for name in canary_names(run_path)}


def read_status(run_path: Path) -> list[dict]:
    return read_jsonl(browser_dir(run_path) / BROWSER_STATUS_JSONL)
