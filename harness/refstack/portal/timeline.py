"""VoxBento's version timeline (contract section 15) and the behaviours of the portal that depend on it.

Owns the dated changes a client can observe (one :class:`Change` per commit, with the contract section
that describes it), :class:`Timeline` (the switches derived from ``REFSTACK_VOXBENTO_DATE``, default HEAD
2026-08-23) and :class:`BoothNaming` (booth ids, MediaMTX paths and booth-page URLs of each era). Each
switch is read at the line that enforces it; this module only says which era a date belongs to.

Only the changes in :data:`CHANGES` are modelled. Others are not: the RBAC refactor, Mission Control and
listener join codes of 2026-06-14 (``20bc0b9``) exist at every date here, the TTS socket is not served at all,
and dates before 2026-06-07 (no transcription, ``0fcd624``) are refused.
Stdlib only: ``config`` imports it and the CLI imports ``config``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from ...contract import routes


@dataclasses.dataclass(frozen=True)
class Change:
    since: dt.date
    commit: str
    section: str
    what: str


# Contract header: the snapshot the contract describes.
HEAD_DATE = dt.date(2026, 8, 23)

# Contract 15, newest first.
LISTENER_DATA_SCRIPT = Change(dt.date(2026, 8, 17), "6134303", "6.1, 15",
                              'listener page data in <script id="listener-data"> (before: only inline boothsData/roomsData arrays)')
MULTIROOM = Change(dt.date(2026, 8, 14), "d2bee53", "2, 4.4, 5.1",
                   "room id in booth ids, MediaMTX paths, the booth page and the transcription/delete routes")
WS_TOKEN_OR_COOKIE = Change(dt.date(2026, 8, 9), "913da47", "3.5, 3.6",
                            "WebSocket auth accepts a token or a scoped cookie (before: ?token= only)")
EMAIL_VERIFICATION = Change(dt.date(2026, 7, 10), "f11389f, 36754dd", "3.3, 10",
                            "email verification for login, optional password at register, login/magic-link/forgot-password limiters")
LISTENER_LIMITER = Change(dt.date(2026, 7, 6), "07ebe53", "10", "listener join-code per-IP failure limiter")
DEBUG_DEFAULT_FALSE = Change(dt.date(2026, 6, 30), "86615cb", "1.2", "DEBUG defaults to false (before: true)")
WEAK_SECRET_REFUSAL = Change(dt.date(2026, 6, 29), "cf72e29", "1.2", "startup refuses weak JWT secrets")
AUDIO_DELAY_ROUTE = Change(dt.date(2026, 6, 21), "ec2eefa", "6.2", "room audio delay and /listener/{slug}/rooms/{room_id}/audio-delay")
WORKER_CAP_ALL = Change(dt.date(2026, 6, 8), "55d9740, 30f96e1", "7.2",
                        "MAX_TOTAL_WORKERS counts every worker and the start route answers 429 at the cap")
# Contract 15: per-booth transcription and /ws/captions appear (0fcd624); nothing older is modelled.
TRANSCRIPTION = Change(dt.date(2026, 6, 7), "0fcd624", "7", "per-booth transcription and /ws/captions")

CHANGES = (LISTENER_DATA_SCRIPT, MULTIROOM, WS_TOKEN_OR_COOKIE, EMAIL_VERIFICATION, LISTENER_LIMITER, DEBUG_DEFAULT_FALSE,
           WEAK_SECRET_REFUSAL, AUDIO_DELAY_ROUTE, WORKER_CAP_ALL)
# The oldest date the knob accepts: the portal has no transcription surface to play before it.
EARLIEST_DATE = TRANSCRIPTION.since


@dataclasses.dataclass(frozen=True)
class BoothNaming:
    """Contract 2: the string booth id, the MediaMTX path (= channel id) and the booth page of one era."""

    multiroom: bool = True

    def booth_id(self, event_slug: str, room_id: int | str | None, language_code: str) -> str:
        # Contract 2 (d2bee53, 2026-08-14): `{slug}-{room_id}-{lang}`; before it `{slug}-{lang}`.
        if self.multiroom and room_id is not None:
            return f"{event_slug}-{room_id}-{language_code}"
        return f"{event_slug}-{language_code}"

    def mediamtx_path(self, event_slug: str, room_id: int | str | None, language_code: str) -> str:
        # Contract 2 (d2bee53): `{slug}/{room_id}/{lang}`; before it `{slug}/{lang}`.
        if self.multiroom and room_id is not None:
            return f"{event_slug}/{room_id}/{language_code}"
        return f"{event_slug}/{language_code}"

    def booth_page(self, event_slug: str, room_id: int | str | None, language_code: str) -> str:
        # Contract 2, 5.1 (d2bee53): `/interpreter/{slug}/{room_id}/{lang}`; before it `/interpreter/{slug}/{lang}`.
        if self.multiroom and room_id is not None:
            return routes.INTERPRETER_BOOTH_PAGE.path(slug=event_slug, room_id=room_id, lang=language_code)
        return routes.INTERPRETER_BOOTH_PAGE.single_room().path(slug=event_slug, lang=language_code)

    def parse(self, booth_id: str) -> tuple[str, int | None, str]:
        """(event_slug, room_id, language_code) named by a booth id. Slugs may contain hyphens, so the split
        is from the right; a multiroom id without a numeric room segment (or any string a client invents)
        still names a booth with no room (contract 8.2). Before d2bee53 there is no room segment to look for:
        `conf-2026-es` is event `conf-2026`, language `es`."""
        if self.multiroom:
            parts = booth_id.rsplit("-", 2)
            if len(parts) == 3 and parts[1].isdigit():
                return parts[0], int(parts[1]), parts[2]
        slug, _, lang = booth_id.rpartition("-")
        return (slug, None, lang) if slug else (booth_id, None, "")


@dataclasses.dataclass(frozen=True)
class Timeline:
    """Which side of each :data:`CHANGES` entry the portal plays (``REFSTACK_VOXBENTO_DATE``)."""

    date: dt.date = HEAD_DATE

    def has(self, change: Change) -> bool:
        return self.date >= change.since

    @property
    def naming(self) -> BoothNaming:
        return BoothNaming(multiroom=self.has(MULTIROOM))


def parse_date(name: str, raw: str) -> dt.date:
    """``YYYY-MM-DD`` (or ``HEAD``) within the modelled range; ``ValueError`` with a one-line message otherwise."""
    text = raw.strip()
    if text.upper() in {"", "HEAD"}:
        return HEAD_DATE
    try:
        value = dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{name}={raw!r}: expected YYYY-MM-DD or HEAD") from None
    if not EARLIEST_DATE <= value <= HEAD_DATE:
        raise ValueError(f"{name}={raw!r}: must be between {EARLIEST_DATE} and {HEAD_DATE} (HEAD)")
    return value
