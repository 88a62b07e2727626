"""Control API of the reference media relay (MediaMTX ``api: true``, VoxBento ``:9997``) plus fault/stat routes.

MediaMTX v3 routes (contract 12.2 is what VoxBento calls):

- ``GET  /v3/paths/list?page=0&itemsPerPage=100`` -> ``{"itemCount", "pageCount", "items": [...]}``; each item has
  ``name``, ``confName``, ``source``, ``ready``, ``readyTime``, ``available``, ``online``, ``tracks``,
  ``bytesReceived``, ``bytesSent``, ``readers`` (one ``{"type", "id"}`` per reader).
- ``GET  /v3/paths/get/{path}`` -> one item, 404 if the path neither exists nor is configured.
- ``POST /v3/config/paths/add/{path}`` -> 200; 400 ``{"error": "path already exists"}`` on a second add.
- ``PATCH /v3/config/paths/patch/{path}`` -> 200; 404 ``{"error": "path not found"}`` if never added.
- ``GET /v3/config/paths/get/{path}``, ``DELETE /v3/config/paths/delete/{path}``, ``GET /v3/config/paths/list``.
- ``GET /v3/rtspsessions/list``, ``GET /v3/rtspsessions/get/{id}`` (404 unknown), ``POST /v3/rtspsessions/kick/{id}``;
  ``GET /v3/rtspconns/list``, ``GET /v3/rtspconns/get/{id}``: MediaMTX's ``APIRTSPSession``/``APIRTSPConn`` items
  (``rtsp_server.py``). With the RTSP listener off, the lists are empty, as MediaMTX with ``rtsp: no`` has none.

``{path}`` contains slashes (``loadtest/1/es``) and may be percent-encoded.

Reference-stack routes (not MediaMTX):

- ``GET /v3/refstack/faults`` -> the current knobs; ``POST /v3/refstack/faults`` with a JSON object of the knobs to
  change, e.g. ``{"delay_ms": 200, "loss_pct": 5, "stall": false, "seed": 1}`` -> 200 and the new knobs; 400 on an
  unknown knob or a bad value. See ``faults.py`` for what each knob does.
- ``GET /v3/refstack/stats`` -> per-path forwarding counters and per-reader sent/lost packet counts.
"""

from __future__ import annotations

import json
import math
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from .faults import FaultConfigError
from .paths import PathConfError, PathConfExistsError, PathConfNotFoundError, describe_path
from .relay import MediaRelay
from .rtsp_server import RtspServer
from .session_rules import SessionError

DEFAULT_ITEMS_PER_PAGE = 100  # MediaMTX default


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _json_body(request: web.Request) -> Any:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise PathConfError(f"invalid JSON: {exc.msg}") from exc


def _int_query(request: web.Request, name: str, default: int, minimum: int) -> int:
    try:
        value = int(request.query.get(name, default))
    except ValueError:
        raise web.HTTPBadRequest(reason=f"invalid {name}") from None
    if value < minimum:
        raise web.HTTPBadRequest(reason=f"invalid {name}")
    return value


def _list_body(items: list[dict[str, Any]], request: web.Request) -> dict[str, Any]:
    page = _int_query(request, "page", 0, 0)
    per_page = _int_query(request, "itemsPerPage", DEFAULT_ITEMS_PER_PAGE, 1)
    return {
        "itemCount": len(items),
        "pageCount": math.ceil(len(items) / per_page),
        "items": items[page * per_page:(page + 1) * per_page],
    }


class ControlApi:
    def __init__(self, relay: MediaRelay, rtsp: RtspServer | None = None) -> None:
        self._relay = relay
        self._rtsp = rtsp

    def app(self) -> web.Application:
        app = web.Application()
        r = app.router
        r.add_get("/v3/paths/list", self.paths_list)
        r.add_get(r"/v3/paths/get/{name:.+}", self.paths_get)
        r.add_get("/v3/config/paths/list", self.conf_list)
        r.add_post(r"/v3/config/paths/add/{name:.+}", self.conf_add)
        r.add_patch(r"/v3/config/paths/patch/{name:.+}", self.conf_patch)
        r.add_get(r"/v3/config/paths/get/{name:.+}", self.conf_get)
        r.add_delete(r"/v3/config/paths/delete/{name:.+}", self.conf_delete)
        r.add_get("/v3/rtspsessions/list", self.rtsp_sessions_list)
        r.add_get("/v3/rtspsessions/get/{id}", self.rtsp_sessions_get)
        r.add_post("/v3/rtspsessions/kick/{id}", self.rtsp_sessions_kick)
        r.add_get("/v3/rtspconns/list", self.rtsp_conns_list)
        r.add_get("/v3/rtspconns/get/{id}", self.rtsp_conns_get)
        r.add_get("/v3/refstack/faults", self.faults_get)
        r.add_post("/v3/refstack/faults", self.faults_post)
        r.add_get("/v3/refstack/stats", self.stats)
        return app

    @staticmethod
    def _name(request: web.Request) -> str:
        # The route's tail is taken from the raw path and decoded once, so "%2F" and "/" name the same path.
        prefix = request.match_info.route.resource.canonical.split("{", 1)[0]
        raw = request.raw_path.split("?", 1)[0]
        return unquote(raw[len(prefix):]) if raw.startswith(prefix) else request.match_info["name"]

    async def paths_list(self, request: web.Request) -> web.Response:
        return web.json_response(_list_body(self._relay.registry.list_items(), request))

    async def paths_get(self, request: web.Request) -> web.Response:
        name = self._name(request)
        registry = self._relay.registry
        path, conf = registry.runtime(name), registry.conf_for(name)
        if path is None and conf is None:
            return _error(404, "path not found")
        return web.json_response(describe_path(name, path, conf))

    async def conf_list(self, request: web.Request) -> web.Response:
        registry = self._relay.registry
        items = [registry.get_conf(n).as_json() for n in registry.conf_names()]
        return web.json_response({"itemCount": len(items), "pageCount": 1 if items else 0, "items": items})

    async def conf_add(self, request: web.Request) -> web.Response:
        try:
            self._relay.registry.add_conf(self._name(request), await _json_body(request))
        except PathConfError as exc:  # includes "path already exists" (contract 12.2 matches on that text)
            return _error(400, str(exc))
        return web.Response(status=200)

    async def conf_patch(self, request: web.Request) -> web.Response:
        try:
            self._relay.registry.patch_conf(self._name(request), await _json_body(request))
        except PathConfNotFoundError:
            return _error(404, "path not found")
        except PathConfError as exc:
            return _error(400, str(exc))
        return web.Response(status=200)

    async def conf_get(self, request: web.Request) -> web.Response:
        try:
            return web.json_response(self._relay.registry.get_conf(self._name(request)).as_json())
        except PathConfNotFoundError:
            return _error(404, "path not found")

    async def conf_delete(self, request: web.Request) -> web.Response:
        try:
            self._relay.registry.delete_conf(self._name(request))
        except PathConfNotFoundError:
            return _error(404, "path not found")
        return web.Response(status=200)

    # --- RTSP (MediaMTX api_rtsp.go routes) ---
    async def rtsp_sessions_list(self, request: web.Request) -> web.Response:
        sessions = list(self._rtsp.sessions.values()) if self._rtsp is not None else []
        items = sorted((s.api_item() for s in sessions), key=lambda item: item["created"])
        return web.json_response(_list_body(items, request))

    async def rtsp_sessions_get(self, request: web.Request) -> web.Response:
        if self._rtsp is None:
            return _error(404, "session not found")
        try:
            return web.json_response(self._rtsp.find_session(request.match_info["id"]).api_item())
        except SessionError as exc:
            return _error(exc.status, str(exc))

    async def rtsp_sessions_kick(self, request: web.Request) -> web.Response:
        if self._rtsp is None:
            return _error(404, "session not found")
        try:
            session = self._rtsp.find_session(request.match_info["id"])
        except SessionError as exc:
            return _error(exc.status, str(exc))
        await session.close("kicked through the API")
        return web.Response(status=200)

    async def rtsp_conns_list(self, request: web.Request) -> web.Response:
        conns = list(self._rtsp.conns.values()) if self._rtsp is not None else []
        items = sorted((c.api_item() for c in conns), key=lambda item: item["created"])
        return web.json_response(_list_body(items, request))

    async def rtsp_conns_get(self, request: web.Request) -> web.Response:
        if self._rtsp is None:
            return _error(404, "connection not found")
        try:
            return web.json_response(self._rtsp.find_conn(request.match_info["id"]).api_item())
        except SessionError as exc:
            return _error(exc.status, str(exc))

    async def faults_get(self, request: web.Request) -> web.Response:
        return web.json_response(self._relay.faults.as_dict())

    async def faults_post(self, request: web.Request) -> web.Response:
        try:
            changes = await _json_body(request)
            if not isinstance(changes, dict):
                raise FaultConfigError("the body must be a JSON object")
            new = self._relay.update_faults(changes)
        except (FaultConfigError, PathConfError) as exc:
            return _error(400, str(exc))
        return web.json_response(new.as_dict())

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response(self._relay.statistics())


# PathConfExistsError is a PathConfError; re-exported so callers can name the 400 case.
__all__ = ["ControlApi", "PathConfExistsError"]
