"""The reference portal's FastAPI application: wiring only.

Owns the app factory and what lives on ``app.state`` (the contract's single-process state, section 8.1):

- ``settings``: :class:`Settings`            - ``db``: :class:`Database` (pool knobs, section 9)
- ``media``: MediaMTX control-API client      - ``limiters``: in-memory rate limiters (section 10)
- ``booths``: the in-memory booth registry   - ``connections``: WebSocket connection sets and fan-out
- ``workers``: the transcription worker registry (section 7)

Routes live in ``routes_*`` modules, one per surface.
"""

from __future__ import annotations

import contextlib
import os

from fastapi import FastAPI

from .config import Settings
from .database import Database


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    settings.validate_production_secrets()

    # Imported here so `config` stays importable without the whole web stack.
    from . import (
        booth_state,
        mediamtx,
        ratelimit,
        routes_admin,
        routes_booth_api,
        routes_listener,
        routes_pages,
        routes_users,
        routes_ws,
        transcription,
        webhooks,
        ws_manager,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        await app.state.db.init_db()
        await app.state.media.start()
        loop_task = webhooks.start_loop(app) if settings.webhook_loop else None
        try:
            yield
        finally:
            if loop_task is not None:
                loop_task.cancel()
                with contextlib.suppress(BaseException):
                    await loop_task
            await app.state.workers.shutdown()
            await app.state.media.close()
            await app.state.db.dispose()

    app = FastAPI(title="voxload reference portal (VoxBento-compatible)", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.settings = settings
    app.state.db = Database(settings)
    app.state.media = mediamtx.MediaMTXClient(settings)
    app.state.limiters = ratelimit.Limiters(settings)
    app.state.connections = ws_manager.ConnectionManager()
    app.state.booths = booth_state.BoothRegistry()
    app.state.workers = transcription.WorkerRegistry(app)

    for module in (routes_pages, routes_admin, routes_users, routes_listener, routes_booth_api, routes_ws, transcription):
        app.include_router(module.router)
    return app


def app_from_env() -> FastAPI:
    """uvicorn factory entry point: ``uvicorn --factory harness.refstack.portal.app:app_from_env``."""
    return create_app(Settings.from_env(os.environ))
