"""Identifier formats of VoxBento (contract section 2): event slugs, language codes, booth ids, paths.

The string booth id (``{event_slug}-{room_id}-{language_code}``) names the WebSocket routes; the
MediaMTX path (``{event_slug}/{room_id}/{language_code}``) names the WHIP/WHEP channel; the integer
DB ids name admin URLs. Layout since 2026-08-14 (commit d2bee53); older targets used two segments.
"""

from __future__ import annotations

import dataclasses
import re

# Contract 2: event slug `^[a-z0-9]+(?:-[a-z0-9]+)*$`, at most 64 characters, lower-cased.
SLUG_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
SLUG_MAX_LEN = 64
# Contract 2: two lower-case letters from an ISO 639-1 allow-list, or `floor`. The allow-list itself
# is the server's; the client only checks the shape.
LANGUAGE_PATTERN = re.compile(r"^(?:[a-z]{2}|floor)$")


class InvalidIdentifier(ValueError):
    """A slug or language code that the portal would reject with 400 (contract 4.2)."""


def check_slug(slug: str) -> str:
    if len(slug) > SLUG_MAX_LEN or not SLUG_PATTERN.match(slug):
        raise InvalidIdentifier(f"invalid event slug {slug!r}: must match {SLUG_PATTERN.pattern} and be <= {SLUG_MAX_LEN} chars")
    return slug


def check_language(code: str) -> str:
    if not LANGUAGE_PATTERN.match(code):
        raise InvalidIdentifier(f"invalid language code {code!r}: two lower-case letters or 'floor'")
    return code


@dataclasses.dataclass(frozen=True)
class BoothRef:
    """One booth, by the three parts every client-side identifier is derived from."""

    event_slug: str
    room_id: int
    language_code: str

    @property
    def booth_id(self) -> str:
        # Contract 2: `{event_slug}-{room_id}-{language_code}` (room_id = DB room id).
        return f"{self.event_slug}-{self.room_id}-{self.language_code}"

    @property
    def mediamtx_path(self) -> str:
        # Contract 2: `{event_slug}/{room_id}/{language_code}`; also the booth's default channel (5.1).
        return f"{self.event_slug}/{self.room_id}/{self.language_code}"
