"""Identifier formats of VoxBento (contract section 2): event slugs, language codes, booth ids, paths.

The string booth id (``{event_slug}-{room_id}-{language_code}``) names the WebSocket routes; the
MediaMTX path (``{event_slug}/{room_id}/{language_code}``) names the WHIP/WHEP channel; the integer
DB ids name admin URLs. Layout since 2026-08-14 (commit d2bee53); older targets used two segments, and
``BoothRef.room_scoped`` says which one a target uses.
"""

from __future__ import annotations

import dataclasses

from ..contract import languages
from ..errors import VoxloadError


class InvalidIdentifier(VoxloadError, ValueError):
    """A slug or language code that the portal would reject with 400 (contract 4.2)."""


def check_slug(slug: str) -> str:
    if not languages.is_valid_slug(slug):
        raise InvalidIdentifier(f"invalid event slug {slug!r}: must match {languages.SLUG_RE.pattern} and be <= {languages.SLUG_MAX_LEN} chars")
    return slug


def check_language(code: str) -> str:
    # The ISO 639-1 allow-list is the server's to apply; the client checks the shape only.
    if not languages.has_language_code_shape(code):
        raise InvalidIdentifier(f"invalid language code {code!r}: two lower-case letters or 'floor'")
    return code


@dataclasses.dataclass(frozen=True)
class BoothRef:
    """One booth, by the three parts every client-side identifier is derived from.

    ``room_scoped`` is the layout of the target's version (contract 2, 15): True since 2026-08-14 (d2bee53),
    where booth ids, MediaMTX paths and the booth page carry the room id; False before. It is never guessed:
    it is recognised from what the server hands out (:func:`recognise_room_scoped`).
    """

    event_slug: str
    room_id: int
    language_code: str
    room_scoped: bool = True

    @property
    def booth_id(self) -> str:
        # Contract 2: `{event_slug}-{room_id}-{language_code}` (room_id = DB room id); before d2bee53 `{event_slug}-{language_code}`.
        if self.room_scoped:
            return f"{self.event_slug}-{self.room_id}-{self.language_code}"
        return f"{self.event_slug}-{self.language_code}"

    @property
    def mediamtx_path(self) -> str:
        # Contract 2: `{event_slug}/{room_id}/{language_code}`; also the booth's default channel (5.1). Before d2bee53 two segments.
        if self.room_scoped:
            return f"{self.event_slug}/{self.room_id}/{self.language_code}"
        return f"{self.event_slug}/{self.language_code}"

    @property
    def page_path(self) -> str:
        # Contract 5.1: `/interpreter/{event_slug}/{room_id}/{language_code}`; before d2bee53 `/interpreter/{event_slug}/{language_code}`.
        return f"/interpreter/{self.mediamtx_path}"

    def with_layout_of(self, server_booth_id: str) -> BoothRef:
        """This booth in the layout the server's own booth id shows (ValueError when it is neither layout)."""
        return dataclasses.replace(self, room_scoped=recognise_room_scoped(server_booth_id, self.event_slug, self.room_id, self.language_code))


def recognise_room_scoped(server_booth_id: str, event_slug: str, room_id: int, language_code: str) -> bool:
    """Which layout (contract 15, d2bee53) a booth id the server handed out has, for a booth we know the parts of."""
    if server_booth_id == f"{event_slug}-{room_id}-{language_code}":
        return True
    if server_booth_id == f"{event_slug}-{language_code}":
        return False
    raise ValueError(f"booth id {server_booth_id!r} is neither {event_slug}-{room_id}-{language_code} nor {event_slug}-{language_code}")
