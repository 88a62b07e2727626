"""HTML rendering and the request helpers shared by every page/form module (contract 3.2, 4, 10).

Owns the one Jinja2 environment over ``templates/``, ``render``, content negotiation for errors
(``error_response``: JSON ``{"detail": ...}`` unless ``Accept`` contains ``text/html``), the 303 redirect
every successful form post answers, the client-IP rule of the rate limiters, and the accessors of
``app.state`` the route modules use. No routes live here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from .config import Settings
from .database import Database

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")


def settings_of(request: Request) -> Settings:
    return request.app.state.settings


def db_of(request: Request) -> Database:
    return request.app.state.db


def wants_html(request: Request) -> bool:
    """Contract 3.2: errors are JSON unless the Accept header contains text/html."""
    return "text/html" in request.headers.get("accept", "")


def render(request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200) -> Response:
    return TEMPLATES.TemplateResponse(request, name, context or {}, status_code=status_code)


def error_response(request: Request, status_code: int, detail: str) -> Response:
    if wants_html(request):
        return render(request, "error.html", {"status_code": status_code, "detail": detail}, status_code=status_code)
    return JSONResponse({"detail": detail}, status_code=status_code)


def redirect(url: str) -> RedirectResponse:
    """Contract 4: every successful form post answers 303."""
    return RedirectResponse(url, status_code=303)


def client_ip(request: Request) -> str:
    """Contract 10: "IP" is the client host, which uvicorn rewrites from X-Forwarded-For sent by 127.0.0.1."""
    return request.client.host if request.client else "unknown"
