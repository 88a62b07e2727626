"""In-process rate limiters of the HTML/auth surfaces (contract section 10).

Owns the per-email sliding-window limiters of ``/login``, ``/api/auth/magic-link`` and
``/api/auth/forgot-password``, and the per-IP listener join-code failure limiter. Like VoxBento's they
are plain dictionaries: reset on restart, never shared between processes, never evicted. None of them
sets ``Retry-After``. ``REFSTACK_LOGIN_RATE_LIMIT`` / ``REFSTACK_LISTENER_RATE_LIMIT`` switch the login
and listener limiters off so drills can measure what is behind them; ``REFSTACK_VOXBENTO_DATE`` switches off
the ones that did not exist yet at that date (contract 10, "Since").
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from . import timeline
from .config import Settings

# Contract 10: /login allows 10 attempts (all outcomes) per lower-cased email per sliding 3600 s.
LOGIN_LIMIT = 10
LOGIN_WINDOW_S = 3600.0
# Contract 10: magic-link and forgot-password allow 5 per email per sliding 3600 s.
EMAIL_LINK_LIMIT = 5
EMAIL_LINK_WINDOW_S = 3600.0
# Contract 10: listener join code: 10 failures per IP in a fixed 60 s window that starts at the first failure.
LISTENER_FAILURE_LIMIT = 10
LISTENER_WINDOW_S = 60.0


class SlidingWindowLimiter:
    """``allow(key)`` records an attempt and says whether it is within ``limit`` per ``window_s``."""

    def __init__(self, limit: int, window_s: float, enabled: bool = True, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window_s = window_s
        self.enabled = enabled
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}

    def allow(self, key: str) -> bool:
        if not self.enabled:
            return True
        now = self._clock()
        hits = self._hits.setdefault(key, deque())
        while hits and now - hits[0] >= self.window_s:
            hits.popleft()
        if len(hits) >= self.limit:
            return False
        hits.append(now)
        return True


class FixedWindowFailureLimiter:
    """Counts failures per key in a window that opens at the first failure; a success resets the key."""

    def __init__(self, limit: int, window_s: float, enabled: bool = True, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window_s = window_s
        self.enabled = enabled
        self._clock = clock
        self._windows: dict[str, tuple[float, int]] = {}  # key -> (window_start, failures)

    def _current(self, key: str) -> tuple[float, int] | None:
        entry = self._windows.get(key)
        if entry is not None and self._clock() - entry[0] >= self.window_s:
            del self._windows[key]
            return None
        return entry

    def blocked(self, key: str) -> bool:
        """True once the key has used up its failures in the current window."""
        if not self.enabled:
            return False
        entry = self._current(key)
        return entry is not None and entry[1] >= self.limit

    def record_failure(self, key: str) -> None:
        if not self.enabled:
            return
        entry = self._current(key)
        self._windows[key] = (self._clock(), 1) if entry is None else (entry[0], entry[1] + 1)

    def reset(self, key: str) -> None:
        self._windows.pop(key, None)


class Limiters:
    """The limiters ``app.state.limiters`` holds; key builders keep VoxBento's key shapes."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self.login = SlidingWindowLimiter(LOGIN_LIMIT, LOGIN_WINDOW_S, enabled=settings.login_rate_limit, clock=clock)
        # Contract 10: the magic-link and forgot-password limiters came with f11389f (2026-07-10), like /login's.
        email_limits = settings.timeline.has(timeline.EMAIL_VERIFICATION)
        self.magic_link = SlidingWindowLimiter(EMAIL_LINK_LIMIT, EMAIL_LINK_WINDOW_S, enabled=email_limits, clock=clock)
        self.forgot_password = SlidingWindowLimiter(EMAIL_LINK_LIMIT, EMAIL_LINK_WINDOW_S, enabled=email_limits, clock=clock)
        self.listener = FixedWindowFailureLimiter(
            LISTENER_FAILURE_LIMIT, LISTENER_WINDOW_S, enabled=settings.listener_rate_limit, clock=clock
        )

    @staticmethod
    def login_key(email: str) -> str:
        return f"login:{email.strip().lower()}"

    @staticmethod
    def magic_link_key(email: str) -> str:
        return f"magic_link:{email.strip().lower()}"

    @staticmethod
    def forgot_password_key(email: str) -> str:
        return f"forgot_password:{email.strip().lower()}"
