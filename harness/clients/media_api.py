"""The MediaMTX Control API as the harness reads it (contract 12.2; VoxBento's `MEDIAMTX_API_BASE`, default `:9997`).

Read-only: the harness looks at what the portal configured (``POST /v3/config/paths/add/...``, which only the
portal sends) and at what the server is doing, to show the path configuration a media server restart loses
(contract 14.20: "paths lose `alwaysAvailable`").

- ``GET /v3/paths/list?page=N&itemsPerPage=M`` -> ``{"itemCount", "pageCount", "items": [...]}``; each item's
  ``name``, ``confName`` (the path's own configuration, or ``all_others`` for the catch-all of contract 12.1),
  ``ready`` (a publisher is live), ``readers``.
- ``GET /v3/config/paths/get/{path}`` -> the path's own configuration (``alwaysAvailable`` ...); 404 when the
  path has none (it then runs with the ``all_others`` defaults, which VoxBento leaves without alwaysAvailable).

The API is usually reachable only inside the deployment; the probes treat it as optional evidence.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from ..contract import routes
from .errors import MalformedResponse, NotFound
from .http import PortalHttp

# Contract 12.1: VoxBento's mediamtx.yml configures only the catch-all `paths: all_others:`.
ALL_OTHERS = "all_others"
ITEMS_PER_PAGE = 100  # MediaMTX's default page size
MAX_PAGES = 100


@dataclasses.dataclass(frozen=True)
class MediaPath:
    """One item of ``GET /v3/paths/list``."""

    name: str
    conf_name: str
    ready: bool
    readers: int

    @property
    def own_configuration(self) -> bool:
        return self.conf_name != ALL_OTHERS


@dataclasses.dataclass(frozen=True)
class PathConf:
    """``GET /v3/config/paths/get/{path}``; ``configured`` False when the server answered 404 (no own configuration)."""

    name: str
    configured: bool
    always_available: bool
    raw: Mapping[str, Any]


class MediaControlApi:
    def __init__(self, http: PortalHttp) -> None:
        self.http = http

    @classmethod
    def for_url(cls, api_url: str, timeout_s: float = 3.0) -> MediaControlApi:
        return cls(PortalHttp.for_url(api_url.rstrip("/"), timeout_s=timeout_s))

    def close(self) -> None:
        self.http.close()

    def paths(self) -> list[MediaPath]:
        """Every path the server lists, all pages."""
        found: list[MediaPath] = []
        for page in range(MAX_PAGES):
            response = self.http.request("GET", routes.MEDIAMTX_PATHS_LIST.path(), name=routes.MEDIAMTX_PATHS_LIST.name, expected=(200,),
                                         params={"page": page, "itemsPerPage": ITEMS_PER_PAGE})
            body = self.http.json_body(response)
            try:
                items, page_count = body["items"], int(body.get("pageCount", 1))
                found += [MediaPath(str(i["name"]), str(i.get("confName") or ALL_OTHERS), bool(i.get("ready")), len(i.get("readers") or ()))
                          for i in items]
            except (KeyError, TypeError, ValueError) as exc:
                raise MalformedResponse(response.url, f"not a MediaMTX v3 paths list: {exc!r}") from exc
            if page + 1 >= page_count:
                break
        return found

    def path(self, name: str) -> MediaPath | None:
        return next((p for p in self.paths() if p.name == name), None)

    def path_conf(self, name: str) -> PathConf:
        """The path's own configuration; ``configured=False`` on 404 (contract 12.2: the portal adds it, nobody else)."""
        try:
            response = self.http.request("GET", routes.MEDIAMTX_PATH_CONF.path(path=name), name=routes.MEDIAMTX_PATH_CONF.name, expected=(200,))
        except NotFound:
            return PathConf(name, False, False, {})
        body = self.http.json_body(response)
        if not isinstance(body, Mapping):
            raise MalformedResponse(response.url, "path configuration is not a JSON object")
        return PathConf(name, True, bool(body.get("alwaysAvailable")), body)
