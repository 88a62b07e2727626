"""The reference portal's FastAPI application: wiring only.

Owns the app factory and what lives on ``app.state`` (the contract's single-process state, section 8.1):

- ``settings``: :class:`Settings`            - ``db``: :class:`Database` (pool knobs, section 9)
- ``media``: MediaMTX control-API client      - ``limiters``: in-memory rate limiters (section 10)
- ``booths``: the in-memory booth registry   - ``connections``: WebSocket connection sets and fan-out
- ``workers``: the transcription worker registry (section 7)

Routes live in ``routes_*`` modules, one per surface. Error rendering is wired here (contract 3.2,
9.3): an ``HTTPException`` answers ``{"detail": ...}`` JSON, or an HTML page when ``Accept`` contains
``text/html``; any other exception is logged as ``Unhandled Server Error:`` and answers 500
``{"detail":"Internal Server Error"}`` (HTML 500 page for ``text/html``). Unhandled exceptions roll
back the request's DB transaction because they leave its ``get_session()`` block.
"""

from __future__ import annotations

import contextlib
import logging
import os

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

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
        routes_interpreter,
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
    app.state.booths = booth_state.BoothRegistry(settings.timeline.naming)
    app.state.workers = transcription.WorkerRegistry(app)

    for module in (
        routes_pages, routes_admin, routes_users, routes_listener, routes_interpreter, routes_booth_api, routes_ws, transcription
    ):
        app.include_router(module.router)
    _install_error_handlers(app)
    return app


def _install_error_handlers(app: FastAPI) -> None:
    from .rendering import error_response

    log = logging.getLogger("harness.refstack.portal")

    async def on_http_exception(request: Request, exc: StarletteHTTPException) -> Response:
        if request.scope["type"] != "http":  # WebSocket routes keep FastAPI's own handling
            return await http_exception_handler(request, exc)
        response = error_response(request, exc.status_code, str(exc.detail))
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response

    async def on_unhandled(request: Request, exc: Exception) -> Response:
        # Contract 7.2 / 9.3: VoxBento's generic handler logs this line and answers a bare 500.
        # First line only: SQLAlchemy puts statement parameters (tokens, hashes) on later lines.
        first_line = (str(exc).splitlines() or [""])[0][:300]
        log.error("Unhandled Server Error: %s: %s", exc.__class__.__name__, first_line)
        return error_response(request, 500, "Internal Server Error")

    app.add_exception_handler(StarletteHTTPException, on_http_exception)
    app.add_exception_handler(Exception, on_unhandled)


def app_from_env() -> FastAPI:
    """uvicorn factory entry point: ``uvicorn --factory harness.refstack.portal.app:app_from_env``."""
    return create_app(Settings.from_env(os.environ))
