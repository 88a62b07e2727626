"""What the target's pages get wrong, recorded per canary: console errors, uncaught exceptions, failed requests.

Playwright page events (``console`` of type error or warning, ``pageerror``, ``requestfailed``, and ``response`` with a
status >= 400) become records ``{kind, text, url, t_epoch_s}`` in the canary's ``page`` file. ``summarise``
groups them by (kind, text) with a count and the first occurrence, which is what the report shows: a page
that throws the same ReferenceError every 3 s is one line with a count, not thousands.
Requests the canary itself blocks (anything not on the target's or its media server's host: no traffic
leaves the machine) are recorded as kind ``blocked``, apart from the page's own failures.
"""

from __future__ import annotations

import enum
import re
import time
from collections.abc import Iterable

from ..contract import routes


class PageProblem(enum.Enum):
    CONSOLE_ERROR = "console_error"
    # Pages catch exceptions and log them as warnings (VoxBento's listener page: its audio-delay refresh);
    # a caught ReferenceError is still the page's bug.
    CONSOLE_WARNING = "console_warning"
    UNCAUGHT_EXCEPTION = "uncaught_exception"
    FAILED_REQUEST = "failed_request"  # no response at all (network error, aborted)
    HTTP_ERROR = "http_error"  # a response with status >= 400
    BLOCKED = "blocked"  # the canary refused to let it leave the machine (not the page's fault)


# Text that varies per occurrence (ids, ports, timestamps) would split one problem into many lines.
_VOLATILE = re.compile(r"\b\d{4,}\b|[0-9a-f]{8}-[0-9a-f-]{27,}")


def _key_text(text: str) -> str:
    return _VOLATILE.sub("N", text.strip().splitlines()[0] if text.strip() else "")[:300]


# Invite tokens travel in the path (contract 2): logs and files show the route with a placeholder instead.
_INVITE_PATH = re.compile(routes.JOIN.regex())


def loggable_url(url: str) -> str:
    """A URL fit for logs and files: no query (join codes, tokens, cache busters) and no invite token in the path."""
    return _INVITE_PATH.sub(routes.JOIN.path(token="<invite>"), url.split("?", 1)[0])


class PageLog:
    """Attach to a Playwright page; every problem goes to ``sink(record)`` (a JsonLines.write)."""

    def __init__(self, sink, canary: str, blocked_failure_text: str = "net::ERR_BLOCKED_BY_CLIENT") -> None:
        self._sink = sink
        self.canary = canary
        self.counts: dict[PageProblem, int] = dict.fromkeys(PageProblem, 0)
        self._blocked_text = blocked_failure_text
        self.blocked_urls: set[str] = set()

    def attach(self, page) -> None:
        page.on("console", self._on_console)
        page.on("pageerror", self._on_pageerror)
        page.on("requestfailed", self._on_requestfailed)
        page.on("response", self._on_response)

    def record(self, kind: PageProblem, text: str, url: str | None = None) -> None:
        self.counts[kind] += 1
        # No query strings: they carry join codes, tokens and cache busters.
        url = loggable_url(url.removeprefix("at ")) if url else None
        self._sink({"canary": self.canary, "kind": kind.value, "text": text[:2000], "url": url, "t_epoch_s": round(time.time(), 3)})

    def _on_console(self, message) -> None:
        if self._blocked_text in message.text:
            return  # Chromium echoing the canary's own block
        kind = {"error": PageProblem.CONSOLE_ERROR, "warning": PageProblem.CONSOLE_WARNING}.get(message.type)
        if kind is not None:
            location = message.location or {}
            self.record(kind, message.text, location.get("url") or None)

    def _on_pageerror(self, error) -> None:
        # Playwright gives an Error: "name: message" plus the stack; the first line is the finding.
        text = f"{error.name}: {error.message}" if getattr(error, "name", None) else str(error)
        self.record(PageProblem.UNCAUGHT_EXCEPTION, text, (error.stack or "").splitlines()[1].strip() if error.stack and "\n" in error.stack else None)

    def _on_requestfailed(self, request) -> None:
        failure = request.failure or "failed"
        if request.url in self.blocked_urls:
            return  # recorded as BLOCKED when the canary refused it
        self.record(PageProblem.FAILED_REQUEST, f"{request.method} {failure}", request.url)

    def _on_response(self, response) -> None:
        if response.status >= 400:
            self.record(PageProblem.HTTP_ERROR, f"{response.request.method} {response.status}", response.url)

    def blocked(self, url: str) -> None:
        self.blocked_urls.add(url)
        self.record(PageProblem.BLOCKED, "request to a host outside the target, not sent", url)


def summarise(records: Iterable[dict]) -> list[dict]:
    """One row per (canary, kind, text): count, first and last occurrence, one example URL; most frequent first."""
    rows: dict[tuple, dict] = {}
    for r in records:
        key = (r.get("canary"), r.get("kind"), _key_text(r.get("text") or ""))
        row = rows.get(key)
        if row is None:
            rows[key] = {"canary": key[0], "kind": key[1], "text": (r.get("text") or "").strip().splitlines()[0][:300] if r.get("text") else "",
                         "url": r.get("url"), "count": 1, "first_epoch_s": r.get("t_epoch_s"), "last_epoch_s": r.get("t_epoch_s")}
        else:
            row["count"] += 1
            row["last_epoch_s"] = r.get("t_epoch_s")
    return sorted(rows.values(), key=lambda row: (row["kind"] == PageProblem.BLOCKED.value, -row["count"]))
