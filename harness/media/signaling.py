"""WHIP/WHEP signalling over HTTP: the one module that builds those requests and reads their replies.

Governed by WHIP (RFC 9725) and WHEP (draft-ietf-wish-whep), as VoxBento's clients use them (contract 5.5,
6.2, 12.3): the complete SDP offer is POSTed with ``Content-Type: application/sdp`` after full ICE gathering
(no trickle, so no PATCH is ever sent); success is ``201 Created`` with the SDP answer as body, a ``Location``
header naming the session resource (relative to the POST URL), optionally an ``ETag``; teardown is a
``DELETE`` of that resource. aiohttp errors are translated here into ``SignalingError``/``HttpStatusError``.
"""

from __future__ import annotations

import asyncio
import dataclasses
from urllib.parse import urljoin

import aiohttp

from .errors import HttpStatusError, SignalingError

SDP_CONTENT_TYPE = "application/sdp"


@dataclasses.dataclass(frozen=True)
class SessionAnswer:
    sdp: str
    status: int
    location: str | None  # absolute URL of the session resource, when the server named one
    etag: str | None


async def post_offer(http: aiohttp.ClientSession, url: str, offer_sdp: str, timeout_s: float) -> SessionAnswer:
    """POST the offer; returns the answer or raises SignalingError / HttpStatusError."""
    try:
        async with http.post(
            url,
            data=offer_sdp.encode(),
            # Contract 12.3: MediaMTX rejects any other Content-Type with 400.
            headers={"Content-Type": SDP_CONTENT_TYPE},
            timeout=aiohttp.ClientTimeout(total=timeout_s),
        ) as response:
            body = await response.text()
            # RFC 9725 4.2: "the WHIP endpoint ... MUST return a '201 Created' response"; the contract's
            # browser JS accepts any 2xx (5.5), so a 2xx with an answer is accepted too.
            if not 200 <= response.status < 300:
                raise HttpStatusError(f"POST {url} answered {response.status}: {body.strip()[:200]}", response.status)
            if "v=0" not in body:
                raise HttpStatusError(f"POST {url} answered {response.status} without an SDP answer", response.status)
            location = response.headers.get("Location")
            return SessionAnswer(
                sdp=body,
                status=response.status,
                location=urljoin(url, location) if location else None,
                etag=response.headers.get("ETag"),
            )
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
        raise SignalingError(f"POST {url} failed: {type(exc).__name__}: {exc}") from exc


async def delete_session(http: aiohttp.ClientSession, location: str, timeout_s: float) -> int | None:
    """DELETE the session resource (contract 5.5/6.2: fire and forget); returns the status, None on error."""
    try:
        async with http.delete(location, timeout=aiohttp.ClientTimeout(total=timeout_s)) as response:
            await response.read()
            return response.status
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
        return None
