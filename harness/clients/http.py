"""The HTTP boundary of every client: one target base URL over a `requests.Session`-compatible object.

Owns URL building, the default request options (redirects off, a timeout, optional ``X-Forwarded-For``),
status checking against what the contract lists for each call, translation of `requests` exceptions into
:mod:`harness.clients.errors`, and reporting of each timed request.

Two kinds of session work:

- a plain ``requests.Session``: the base URL given here is prefixed, and each request is timed here and
  passed to the optional ``report`` callable;
- Locust's ``HttpSession`` (a ``requests.Session`` subclass whose ``request`` takes ``name=`` and
  ``catch_response=``): Locust times and reports the request itself, so this module only supplies the
  ``name`` for grouping and marks success/failure by the *contract's* expected statuses (a 403 that the
  contract promises is a success). ``report`` is not called then, to avoid double counting.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Collection, Mapping
from typing import Any

import requests

from .errors import (
    AuthRejected,
    ClientError,
    MalformedResponse,
    NotFound,
    RateLimited,
    RequestTimeout,
    TargetUnreachable,
    UnexpectedStatus,
)
from .html import parse
from .reporting import ReportFn, report_round_trip

DEFAULT_TIMEOUT_S = 10.0
# Contract 1.1: uvicorn trusts X-Forwarded-For from 127.0.0.1, so loopback clients can pick their apparent IP.
FORWARDED_FOR_HEADER = "X-Forwarded-For"
# Form posts and page reads ask for HTML as browsers do; contract 3.2: the admin guards then answer 403 with an HTML
# page instead of JSON.
HTML_ACCEPT = {"Accept": "text/html,application/xhtml+xml"}


def _detail(response: requests.Response) -> str:
    """A one-line reason from an error body: FastAPI's JSON `detail`, else the page text without tags."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, Mapping) and "detail" in body:
        return str(body["detail"])
    text = response.text or ""
    if "<" in text:
        doc = parse(text, response.url)
        title = doc.find("title")
        text = title.text() if title is not None and title.text() else doc.text()
    return " ".join(text.split())[:160]


def status_error(method: str, url: str, response: requests.Response, expected: Collection[int]) -> UnexpectedStatus:
    """The typed error for a status outside `expected` (401/403, 404, 429 get their own classes)."""
    status = response.status_code
    detail = _detail(response)
    if status == 429:
        # Contract 10: every limiter answers 429, none sets Retry-After.
        return RateLimited(url, status, expected, detail, method)
    if status in (401, 403):
        return AuthRejected(url, status, expected, detail, method)
    if status == 404:
        return NotFound(url, status, expected, detail, method)
    return UnexpectedStatus(url, status, expected, detail, method)


class PortalHttp:
    """HTTP access to one VoxBento portal, shared by the surface clients of one simulated person.

    One instance = one cookie jar = one identity (admin, interpreter, listener); create one per user.
    """

    def __init__(
        self,
        session: requests.Session,
        base_url: str | None = None,
        *,
        report: ReportFn | None = None,
        forwarded_for: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        base = base_url or getattr(session, "base_url", None)
        if not base:
            raise ValueError("PortalHttp needs base_url (or a session with a base_url, as Locust's HttpSession has)")
        self.session = session
        self.base_url = str(base).rstrip("/")
        self.report = report
        self.forwarded_for = forwarded_for
        self.timeout_s = timeout_s
        # Sent with every request, under per-call headers (e.g. a cross-site `Origin` for CSRF checks, contract 3.9).
        self.default_headers = dict(headers or {})
        params = inspect.signature(session.request).parameters
        # Locust's HttpSession reports by itself; detected by its extra keywords, without importing locust.
        self._session_reports = "name" in params and "catch_response" in params

    @classmethod
    def for_url(cls, base_url: str, **kwargs: Any) -> PortalHttp:
        """A new identity: a fresh `requests.Session` (own cookie jar) bound to `base_url` (tests, probes)."""
        return cls(requests.Session(), base_url, **kwargs)

    def close(self) -> None:
        self.session.close()

    def __repr__(self) -> str:
        return f"PortalHttp({self.base_url!r}, forwarded_for={self.forwarded_for!r})"

    # --- addresses ---
    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else f"{self.base_url}{path}"

    def ws_url(self, path: str) -> str:
        """The ws:// (or wss://) URL of a portal path."""
        base = self.base_url
        if base.startswith("https://"):
            return "wss://" + base[len("https://"):] + path
        return "ws://" + base[len("http://"):] + path if base.startswith("http://") else base + path

    @property
    def cookies(self) -> Any:
        # Locust's FastHttpSession keeps its jar (a http.cookiejar.CookieJar) as ``cookiejar``.
        jar = getattr(self.session, "cookies", None)
        return jar if jar is not None else getattr(self.session, "cookiejar", None)

    # --- requests ---
    def request(
        self,
        method: str,
        path: str,
        *,
        name: str,
        expected: Collection[int],
        params: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        forwarded_for: str | None = None,
        allow_redirects: bool = False,
    ) -> requests.Response:
        """Send one request; return the response if its status is in `expected`, else raise the typed error."""
        url = self.url(path)
        all_headers = {**self.default_headers, **(headers or {})}
        xff = forwarded_for or self.forwarded_for
        if xff:
            all_headers[FORWARDED_FOR_HEADER] = xff
        kwargs: dict[str, Any] = {
            "params": params,
            "data": data,
            "json": json,
            "headers": all_headers,
            "timeout": self.timeout_s,
            "allow_redirects": allow_redirects,
        }
        if self._session_reports:
            return self._request_locust(method, url, name, expected, kwargs)
        started_s = time.perf_counter()
        error: ClientError | None = None
        response: requests.Response | None = None
        try:
            response = self.session.request(method, url, **kwargs)
        except requests.Timeout as exc:
            error = RequestTimeout(url, str(exc) or type(exc).__name__)
        except requests.ConnectionError as exc:
            error = TargetUnreachable(url, str(exc) or type(exc).__name__)
        elapsed_ms = (time.perf_counter() - started_s) * 1000.0
        if response is not None and response.status_code not in expected:
            error = status_error(method, url, response, expected)
        report_round_trip(
            self.report,
            request_type=method,
            name=name,
            response_time_ms=elapsed_ms,
            response_length=len(response.content or b"") if response is not None else 0,
            exception=error,
        )
        if error is not None:
            raise error
        assert response is not None
        return response

    def _request_locust(self, method: str, url: str, name: str, expected: Collection[int], kwargs: dict[str, Any]) -> requests.Response:
        error: ClientError | None = None
        if not hasattr(self.session, "cookies"):
            # FastHttpSession (geventhttpclient): its network_timeout applies; urlopen takes no per-call timeout.
            kwargs = {k: v for k, v in kwargs.items() if k != "timeout"}
        with self.session.request(method, url, name=name, catch_response=True, **kwargs) as response:
            status = getattr(response, "status_code", 0) or 0
            if status == 0:
                # Locust turns connection errors into a response with status 0 and `error` set.
                reason = getattr(response, "error", None)
                if isinstance(reason, (requests.Timeout, TimeoutError)):
                    error = RequestTimeout(url, str(reason))
                else:
                    error = TargetUnreachable(url, str(reason or "no response"))
            elif status not in expected:
                error = status_error(method, url, response, expected)
            if error is None:
                response.success()
            else:
                response.failure(error)
        if error is not None:
            raise error
        return response

    # --- helpers for callers ---
    def json_body(self, response: requests.Response) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise MalformedResponse(response.url or "?", f"body is not JSON: {exc}") from exc

    def location(self, response: requests.Response) -> str:
        """The `Location` header of a redirect (contract 4: every admin form success is a 303)."""
        location = response.headers.get("Location")
        if not location:
            raise MalformedResponse(response.url or "?", f"{response.status_code} without a Location header")
        return location
