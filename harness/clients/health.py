"""`GET /healthz` (contract 9.2, 12.2): the portal's liveness route, and how a VoxBento portal is recognised.

It opens no DB session, so it is a process-alive signal only, not a DB health signal; ``mediamtx_ok``
reflects the MediaMTX Control API check (cached 5 s on the portal). The body is VoxBento's own
(`portal/routers/public.py`, identical at 7cc5f3e and 0c0ddc3): `{"ok": true, "server": "fastapi", "mediamtx_ok": <bool>}`;
a 200 with any other body is not a VoxBento portal.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from ..contract import routes
from .errors import MalformedResponse
from .http import PortalHttp

# Contract 9.2: the body's fixed keys and values.
SERVER_NAME = "fastapi"
EXPECTED_BODY = '{"ok": true, "server": "fastapi", "mediamtx_ok": <bool>}'


@dataclasses.dataclass(frozen=True)
class Health:
    ok: bool
    server: str
    mediamtx_ok: bool


def parse_health(body: object, url: str) -> Health:
    """The `/healthz` body as a record; MalformedResponse naming the URL when it is not VoxBento's."""
    if (not isinstance(body, Mapping) or body.get("ok") is not True or body.get("server") != SERVER_NAME
            or not isinstance(body.get("mediamtx_ok"), bool)):
        raise MalformedResponse(url, f"expected {EXPECTED_BODY} (contract 9.2), got {str(body)[:120]}")
    return Health(ok=True, server=SERVER_NAME, mediamtx_ok=body["mediamtx_ok"])


def healthz(http: PortalHttp) -> Health:
    """200 with VoxBento's body; a dead portal raises TargetUnreachable, a sick one UnexpectedStatus."""
    response = http.request("GET", routes.HEALTHZ.path(), name=routes.HEALTHZ.name, expected=(200,))
    return parse_health(http.json_body(response), response.url)
