"""The portal's calls to the MediaMTX Control API and the WHIP/WHEP URLs it hands out (contract 12.2).

Owns the one shared ``httpx.AsyncClient`` of the portal (VoxBento's ``portal/globals.py`` client), the
health probe with its 5 s cache, the path-ensure routine with its process-lifetime cache, and the
WHIP/WHEP URL builders. No other module talks to the Control API. Booth ids and MediaMTX paths change with
the VoxBento version and are built by ``timeline.BoothNaming``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import httpx

from ...contract import routes
from .config import Settings

log = logging.getLogger(__name__)

# Contract 1.1: one shared client with a 10 s default timeout (per-call timeouts below override it).
SHARED_CLIENT_TIMEOUT_S = 10.0
# Contract 12.2: health probe timeout and how long either answer is cached.
HEALTH_TIMEOUT_S = 2.0
HEALTH_CACHE_S = 5.0
# Contract 12.2: path add/patch timeout.
ENSURE_PATH_TIMEOUT_S = 3.0
# Contract 12.2: the body of both the add and the patch call.
PATH_CONFIG = {"alwaysAvailable": True, "alwaysAvailableTracks": [{"codec": "Opus"}], "overridePublisher": True}


class MediaMTXClient:
    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self._api_base = settings.mediamtx_api_base.rstrip("/")
        self._whip_base = settings.mediamtx_whip_base.rstrip("/")
        self._clock = clock
        self._client: httpx.AsyncClient | None = None
        self._health: tuple[float, bool] | None = None  # (checked_at, healthy)
        # Contract 12.2 / 14.20: paths added or patched with a 200 are remembered for the life of the
        # process and never invalidated, so a restarted MediaMTX keeps missing them.
        self._created_paths: set[str] = set()

    # --- lifecycle ---
    async def start(self) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=SHARED_CLIENT_TIMEOUT_S)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    @property
    def http(self) -> httpx.AsyncClient:
        """The portal's shared client (webhook delivery uses it too, as VoxBento's globals client)."""
        if self._client is None:
            raise RuntimeError("MediaMTXClient.start() was not awaited (app lifespan not running)")
        return self._client

    # --- URL builders ---
    def whip_url(self, path: str) -> str:
        return f"{self._whip_base}/{path}/whip"

    def whep_url(self, path: str) -> str:
        return f"{self._whip_base}/{path}/whep"

    @property
    def created_paths(self) -> frozenset[str]:
        return frozenset(self._created_paths)

    # --- Control API ---
    async def healthy(self) -> bool:
        """Contract 12.2: GET /v3/paths/list; any status < 500 is healthy; both answers cached 5 s."""
        now = self._clock()
        if self._health is not None and now - self._health[0] < HEALTH_CACHE_S:
            return self._health[1]
        ok = False
        if self._api_base:  # contract 12.2: empty base = unhealthy
            try:
                resp = await self.http.get(f"{self._api_base}{routes.MEDIAMTX_PATHS_LIST.path()}", timeout=HEALTH_TIMEOUT_S)
                ok = resp.status_code < 500
            except httpx.HTTPError:
                ok = False
        self._health = (self._clock(), ok)
        return ok

    async def ensure_path(self, path: str) -> bool:
        """Contract 12.2: add the path (always available, Opus, publisher override); on 400 "already exists"
        patch it. Success is cached forever; failures are not cached and are retried on the next call."""
        if path in self._created_paths:
            return True
        try:
            resp = await self.http.post(f"{self._api_base}/v3/config/paths/add/{path}", json=PATH_CONFIG, timeout=ENSURE_PATH_TIMEOUT_S)
            if resp.status_code == 400 and "already exists" in resp.text:
                resp = await self.http.patch(
                    f"{self._api_base}/v3/config/paths/patch/{path}", json=PATH_CONFIG, timeout=ENSURE_PATH_TIMEOUT_S
                )
        except httpx.HTTPError as exc:
            log.warning("MediaMTX path ensure failed for %s: %s", path, exc.__class__.__name__)
            return False
        if resp.status_code == 200:
            self._created_paths.add(path)
            return True
        log.warning("MediaMTX path ensure for %s answered %d", path, resp.status_code)
        return False

    async def ensure_paths(self, paths: list[str]) -> list[bool]:
        """Contract 6.1: the listener page ensures all its paths concurrently."""
        return list(await asyncio.gather(*(self.ensure_path(p) for p in paths)))
