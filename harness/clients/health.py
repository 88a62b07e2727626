"""`GET /healthz` (contract 9.2, 12.2): the portal's liveness route.

It opens no DB session, so it is a process-alive signal only, not a DB health signal; ``mediamtx_ok``
reflects the MediaMTX Control API check (cached 5 s on the portal).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import MalformedResponse
from .http import PortalHttp

HEALTHZ = "/healthz"


def healthz(http: PortalHttp) -> Mapping[str, Any]:
    """200 `{"status": "ok", ...}`; a dead portal raises TargetUnreachable, a sick one UnexpectedStatus."""
    response = http.request("GET", HEALTHZ, name=HEALTHZ, expected=(200,))
    body = http.json_body(response)
    if not isinstance(body, Mapping) or "status" not in body:
        raise MalformedResponse(response.url, 'expected {"status": ...} (contract 9.2)')
    return body
