"""Every URL path of VoxBento (and of its MediaMTX control API) that voxload requests, and the name Locust's
statistics group it under.

The one owner of these paths: clients build requests with :meth:`Route.path` and report them under
:attr:`Route.name`, so a route changed by a VoxBento release is changed here once. Section numbers are the
contract's (/work/shared/voxbento-contract.md). Placeholders: ``{e}``, ``{r}``, ``{b}`` are the integer DB ids
of event, room and booth (admin URLs); ``{slug}``, ``{room_id}``, ``{lang}`` the parts of a booth (section 2);
``{booth_id}`` the string booth id of the WebSocket routes; ``{token}`` a 64-hex invite token.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping

# Stats names replace each placeholder with a bracketed label so Locust's table does not grow per id.
_STATS_LABEL = {"e": "id", "r": "id", "b": "id", "room_id": "id"}
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
# Placeholders that stand for integer DB ids.
_DB_IDS = frozenset({"e", "r", "b", "room_id"})


@dataclasses.dataclass(frozen=True)
class Route:
    """A path template and the name its requests are reported under (derived unless given)."""

    template: str
    stats_name: str | None = None

    @property
    def name(self) -> str:
        if self.stats_name is not None:
            return self.stats_name
        return _PLACEHOLDER.sub(lambda m: f"[{_STATS_LABEL.get(m[1], m[1])}]", self.template)

    def path(self, **parts: object) -> str:
        return self.template.format(**parts)

    def single_room(self) -> Route:
        """The route as targets before d2bee53 (2026-08-14) serve it: without the room segment (contract 2, 15)."""
        for segment in ("/rooms/{room_id}", "/{room_id}"):
            if segment in self.template:
                return Route(self.template.replace(segment, "", 1), self.stats_name)
        raise ValueError(f"{self.template} has no room segment")

    def server(self, *names: str) -> str:
        """The template with the server's own parameter names in order, in FastAPI's path syntax (a name may carry
        a converter, ``"channel_id:path"``): how the reference portal declares the same route."""
        holders = _PLACEHOLDER.findall(self.template)
        if len(names) != len(holders):
            raise ValueError(f"{self.template} has {len(holders)} parameters, got {len(names)} names")
        return self.path(**{holder: f"{{{name}}}" for holder, name in zip(holders, names)})

    def regex(self, groups: Mapping[str, str] | None = None, **parts: object) -> str:
        """The template as a regular expression (no anchors) for reading paths back out of pages and headers:
        the given parts literally, each other placeholder a capture group: of ``groups[name]`` when given,
        else of digits for DB ids or of one path segment."""
        groups = groups or {}
        pieces = _PLACEHOLDER.split(self.template)  # literal text and placeholder names, alternating
        out = []
        for i, piece in enumerate(pieces):
            if i % 2 == 0:
                out.append(re.escape(piece))
            elif piece in parts:
                out.append(re.escape(str(parts[piece])))
            else:
                out.append(f"({groups[piece]})" if piece in groups else r"(\d+)" if piece in _DB_IDS else r"([^/?#]+)")
        return "".join(out)


# --- admin panel (contract 3.2, 4.1, 4.3, 4.4, 4.5) ---
ADMIN_LOGIN = Route("/admin/login")
ADMIN_LOGOUT = Route("/admin/logout")
ADMIN_DASHBOARD = Route("/admin/")
# Contract 4.1 (wizard)
ADMIN_SETUP = Route("/admin/setup")
ADMIN_SETUP_ROOMS = Route("/admin/events/{e}/setup/rooms")
ADMIN_SETUP_BOOTHS = Route("/admin/events/{e}/setup/booths")
ADMIN_SETUP_INVITE = Route("/admin/events/{e}/setup/invite")
# Contract 4.1 (classic) and the pages of 4.5
ADMIN_EVENTS = Route("/admin/events/")
ADMIN_EVENT = Route("/admin/events/{e}/")
ADMIN_ROOMS = Route("/admin/events/{e}/rooms/")
ADMIN_ROOM = Route("/admin/events/{e}/rooms/{r}/")
ADMIN_BOOTHS = Route("/admin/events/{e}/rooms/{r}/booths/")
ADMIN_BOOTH = Route("/admin/events/{e}/rooms/{r}/booths/{b}/")
ADMIN_TOKENS = Route("/admin/events/{e}/rooms/{r}/booths/{b}/tokens/")
ADMIN_MEMBERS = Route("/admin/events/{e}/members/")
ADMIN_REGENERATE_JOIN_CODE = Route("/admin/events/{e}/regenerate_join_code/")
# Contract 4.3
ADMIN_TRANSCRIPTION_SETTINGS = Route("/admin/events/{e}/rooms/{r}/booths/{b}/transcription-settings")
# Contract 4.4
ADMIN_DELETE_EVENT = Route("/admin/events/{e}/delete")
ADMIN_DELETE_ROOM = Route("/admin/events/{e}/rooms/{r}/delete")
ADMIN_DELETE_BOOTH = Route("/admin/events/{e}/rooms/{r}/booths/{b}/delete")
ADMIN_REVOKE_TOKEN = Route("/admin/events/{e}/rooms/{r}/booths/{b}/tokens/{token}/revoke")

# --- booth JSON API (contract 3.5, 4.2, 4.4, 5.2, 5.5, 7.1) ---
# Contract 4.2 (POST creates a booth; GET lists the in-memory booths of the event)
API_BOOTHS = Route("/api/events/{slug}/booths")
# Contract 5.2 step 1: never creates a booth; 404 when not in the in-memory registry.
API_BOOTH_STATE = Route("/api/events/{slug}/booths/{lang}/state")
# Contract 5.5: scripted publishers.
API_WHIP_URL = Route("/api/events/{slug}/booths/{lang}/whip-url")
# Contract 7.1
API_TRANSCRIPTION_START = Route("/api/events/{slug}/rooms/{room_id}/booths/{lang}/transcription/start")
API_TRANSCRIPTION_STOP = Route("/api/events/{slug}/rooms/{room_id}/booths/{lang}/transcription/stop")
# Contract 4.4
API_DELETE_BOOTH = Route("/api/events/{slug}/rooms/{room_id}/booths/{lang}")
# Contract 2, 15: before d2bee53 (2026-08-14) the three routes above had no `/rooms/{room_id}` segment (Route.single_room).
# Contract 3.5
API_AUTH_TOKEN = Route("/api/auth/token")
# Contract 5.2 step 2: never guarded; the channel is encodeURIComponent'ed.
API_INTERPRETER_STATUS = Route("/api/interpreter/status/{channel}")

# --- interpreter pages (contract 3.4, 5.1) ---
JOIN = Route("/join/{token}")
INTERPRETER_LOBBY = Route("/interpreter")
# Contract 5.1: `/interpreter/{event_slug}/{room_id}/{language_code}` (before d2bee53 without the room id).
INTERPRETER_BOOTH_PAGE = Route("/interpreter/{slug}/{room_id}/{lang}", stats_name="/interpreter/[slug]/[room_id]/[lang]")

# --- registered users (contract 3.3) ---
USER_LOGIN = Route("/login")
USER_REGISTER = Route("/register")

# --- listener (contract 6.1, 6.2) ---
LISTENER_PAGE = Route("/listener/{slug}")
LISTENER_AUDIO_DELAY = Route("/listener/{slug}/rooms/{room_id}/audio-delay")

# --- WebSockets (contract 3.6, 5.3, 6.3) ---
WS_BOOTH = Route("/ws/booth/{booth_id}")
WS_CAPTIONS = Route("/ws/captions/{booth_id}")

# --- health (contract 9.2: not a DB health signal) ---
HEALTHZ = Route("/healthz")

# --- MediaMTX control API (contract 12.2, 12.3) ---
MEDIAMTX_PATHS_LIST = Route("/v3/paths/list")
MEDIAMTX_PATH_CONF = Route("/v3/config/paths/get/{path}", stats_name="/v3/config/paths/get/{path}")
