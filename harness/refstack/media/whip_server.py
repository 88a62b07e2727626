"""WHIP/WHEP HTTP surface of the reference media relay (MediaMTX ``webrtcAddress``, VoxBento ``:8889``).

Contract 12.3 is the spec; MediaMTX's ``internal/servers/webrtc/http_server.go`` is what is imitated:

- Every response carries ``Access-Control-Allow-Origin`` (VoxBento: ``webrtcAllowOrigins: ['*']``) and
  ``Access-Control-Allow-Credentials: true``.
- A CORS preflight (``OPTIONS`` with ``Access-Control-Request-Method``) gets 204 with the methods and headers below.
- Routing is on the percent-*decoded* path: ``^/(.+?)/(whip|whep)$`` and ``^/(.+?)/(whip|whep)/(.+?)$``, so
  ``/loadtest%2F1%2Fes/whip`` is path ``loadtest/1/es`` (the interpreter JS encodes the path as one segment).
- ``POST``: ``Content-Type: application/sdp`` or 400; 201 with the SDP answer, ``Location: /{path}/whip|whep/{secret}``
  (relative), ``ETag: *``, ``ID``, ``Accept-Patch``. ``GET``/``HEAD``/``PUT`` on the endpoint: 405 (WHIP draft).
- ``PATCH`` on a session URL: trickle ICE only. ``Content-Type: application/trickle-ice-sdpfrag`` or 400; unknown
  session 404; otherwise the candidates are added and the answer is 204, as MediaMTX does. Non-trickle clients
  (the portal's JS, aiortc) never send PATCH.
- ``DELETE`` on a session URL: 200, or 404 for an unknown session, 400 for a malformed secret.
- Errors are JSON ``{"error": "..."}`` like MediaMTX's ``writeError``.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote

from aiohttp import web

from .relay import WHEP, WHIP, MediaRelay
from .session_rules import SessionError

logger = logging.getLogger(__name__)

RE_ENDPOINT = re.compile(r"^/(.+?)/(whip|whep)$")
RE_SESSION = re.compile(r"^/(.+?)/(whip|whep)/(.+?)$")

ALLOW_METHODS = "OPTIONS, GET, POST, PATCH, DELETE"
ALLOW_HEADERS = "Authorization, Content-Type, If-Match"
EXPOSE_HEADERS = "ETag, ID, Accept-Patch, Link, Location"
SDP_CONTENT_TYPE = "application/sdp"
TRICKLE_CONTENT_TYPE = "application/trickle-ice-sdpfrag"
# Upper bound on an SDP offer; browsers send a few kB.
MAX_SDP_BYTES = 64 * 1024


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _content_type(request: web.Request) -> str:
    return request.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()


def decoded_path(request: web.Request) -> str:
    """The request path with percent-escapes (including ``%2F``) decoded, as MediaMTX matches it."""
    return unquote(request.raw_path.split("?", 1)[0])


class WhipServer:
    def __init__(self, relay: MediaRelay, allow_origin: str = "*") -> None:
        self._relay = relay
        self._allow_origin = allow_origin

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_SDP_BYTES, middlewares=[self._cors])
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        return app

    @web.middleware
    async def _cors(self, request: web.Request, handler) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            response = _error(exc.status, exc.reason)
        response.headers["Access-Control-Allow-Origin"] = self._allow_origin
        response.headers["Access-Control-Allow-Credentials"] = "true"
        return response

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        method = request.method
        if method == "OPTIONS" and request.headers.get("Access-Control-Request-Method"):
            return web.Response(status=204, headers={"Access-Control-Allow-Methods": ALLOW_METHODS, "Access-Control-Allow-Headers": ALLOW_HEADERS})
        path = decoded_path(request)
        if m := RE_ENDPOINT.match(path):
            path_name, kind = m.group(1), m.group(2)
            if method == "POST":
                return await self._post(request, path_name, kind)
            if method == "OPTIONS":
                return web.Response(status=204, headers={"Access-Control-Allow-Methods": ALLOW_METHODS, "Access-Control-Allow-Headers": ALLOW_HEADERS, "Access-Control-Expose-Headers": "Link"})
            if method in ("GET", "HEAD", "PUT"):
                # draft-ietf-wish-whip: the endpoint MUST answer 405 to GET, HEAD and PUT.
                return _error(405, "method not allowed")
            return _error(404, "not found")
        if m := RE_SESSION.match(path):
            path_name, kind, secret = m.group(1), m.group(2), m.group(3)
            if method == "DELETE":
                return await self._delete(path_name, kind, secret)
            if method == "PATCH":
                return await self._patch(request, path_name, kind, secret)
        return _error(404, "not found")

    async def _post(self, request: web.Request, path_name: str, kind: str) -> web.Response:
        # Contract 12.3: MediaMTX rejects any Content-Type other than application/sdp with 400.
        if _content_type(request) != SDP_CONTENT_TYPE:
            return _error(400, "invalid Content-Type")
        offer = await request.text()
        try:
            if kind == WHIP:
                session, answer = await self._relay.publish(path_name, offer)
            else:
                session, answer = await self._relay.read(path_name, offer)
        except SessionError as exc:
            return _error(exc.status, str(exc))
        headers = {
            "Content-Type": SDP_CONTENT_TYPE,
            "Access-Control-Expose-Headers": EXPOSE_HEADERS,
            "ETag": "*",
            "ID": str(session.id),
            "Accept-Patch": TRICKLE_CONTENT_TYPE,
            # Contract 12.3: relative Location, /{path}/whip|whep/{secret}.
            "Location": f"/{path_name}/{kind}/{session.secret}",
        }
        return web.Response(status=201, body=answer.encode(), headers=headers)

    async def _delete(self, path_name: str, kind: str, secret: str) -> web.Response:
        try:
            await self._relay.delete(kind, path_name, secret)
        except SessionError as exc:
            return _error(exc.status, str(exc))
        return web.Response(status=200)

    async def _patch(self, request: web.Request, path_name: str, kind: str, secret: str) -> web.Response:
        try:
            session = self._relay.find_session(kind, path_name, secret)
        except SessionError as exc:
            if exc.status == 400:
                return _error(400, str(exc))
            session = None
        # MediaMTX checks the secret, then the Content-Type, then looks the session up.
        if _content_type(request) != TRICKLE_CONTENT_TYPE:
            return _error(400, "invalid Content-Type")
        if session is None:
            return _error(404, "session not found")
        try:
            await session.add_candidates(await request.text())
        except SessionError as exc:
            return _error(exc.status, str(exc))
        return web.Response(status=204)


__all__ = ["WhipServer", "decoded_path", "WHIP", "WHEP"]
