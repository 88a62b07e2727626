"""The typed error tree of the VoxBento clients: one class per failure phase.

Every library exception (requests, websocket-client, json, PyJWT) is translated into one of these
at the boundary that caught it (``raise ... from exc``). Each message is one line that names the URL,
with credentials redacted (``?token=``, ``?code=``, ``/join/<token>``), so errors can be logged as is.

    ClientError
    ├── TransportError            the target did not answer at the transport level
    │   ├── TargetUnreachable     connection refused / reset / DNS
    │   └── RequestTimeout        no answer within the client's timeout
    ├── UnexpectedStatus          an HTTP status the contract does not list for this call
    │   ├── AuthRejected          401 / 403 (also a login that did not set its cookie)
    │   ├── NotFound              404
    │   └── RateLimited           429 (contract section 10)
    ├── MalformedResponse         a 2xx/3xx whose body or headers are not what the contract describes
    ├── ReadBackError             an HTML page did not contain the shape of contract Appendix B
    ├── BoothMismatch             the server put us in (or served) a booth other than the one provisioned
    ├── SocketError               WebSocket failures
    │   ├── HandshakeRejected     the HTTP upgrade was refused (contract 3.6: 403 before accept)
    │   ├── SocketClosed          the socket is (or became) closed while we needed it
    │   ├── ReplyTimeout          no reply to a request message within the timeout
    │   └── BoothErrorReply       the server answered a request with ``booth:error`` (contract 5.3)
    └── CredentialsUnavailable    a JWT cannot be minted because no target secret was provided
"""

from __future__ import annotations

import re
from collections.abc import Collection
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..contract import routes
from ..errors import VoxloadError

# Query parameters that carry credentials (contract 1.1: the portal itself redacts `token=` and `code=`).
_SECRET_QUERY_KEYS = frozenset({"token", "code", "access_token"})
# Contract 2: invite tokens are 64 hex characters and travel in the path of `/join/{token}`; anything
# token-like there is redacted, even a truncated or upper-cased one.
_INVITE_IN_PATH = re.compile(routes.JOIN.regex({"token": "[0-9a-fA-F]{8,}"}))


def redact_url(url: str) -> str:
    """The URL with credential query values and invite tokens replaced by `***`."""
    parts = urlsplit(url)
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, "***" if k in _SECRET_QUERY_KEYS and v else v) for k, v in pairs], safe="*")
    path = _INVITE_IN_PATH.sub(routes.JOIN.path(token="***"), parts.path)
    return urlunsplit((parts.scheme, parts.netloc, path, query, parts.fragment))


def _one_line(text: str, limit: int = 200) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


class ClientError(VoxloadError):
    """Base of every error raised by harness.clients."""


class TransportError(ClientError):
    def __init__(self, url: str, reason: str) -> None:
        self.url = redact_url(url)
        self.reason = _one_line(reason)
        super().__init__(f"{self.describe()}: {self.url}: {self.reason}")

    def describe(self) -> str:
        return "transport error"


class TargetUnreachable(TransportError):
    def describe(self) -> str:
        return "target unreachable"


class RequestTimeout(TransportError):
    def describe(self) -> str:
        return "request timed out"


class UnexpectedStatus(ClientError):
    def __init__(self, url: str, status: int, expected: Collection[int], detail: str = "", method: str = "GET") -> None:
        self.url = redact_url(url)
        self.status = status
        self.expected = tuple(sorted(expected))
        self.detail = _one_line(detail)
        self.method = method
        wanted = "/".join(str(s) for s in self.expected) or "?"
        tail = f": {self.detail}" if self.detail else ""
        super().__init__(f"{self.describe()}: {method} {self.url} returned {status}, expected {wanted}{tail}")

    def describe(self) -> str:
        return "unexpected status"


class AuthRejected(UnexpectedStatus):
    def describe(self) -> str:
        return "authentication rejected"


class NotFound(UnexpectedStatus):
    def describe(self) -> str:
        return "not found"


class RateLimited(UnexpectedStatus):
    def describe(self) -> str:
        return "rate limited"


class MalformedResponse(ClientError):
    def __init__(self, url: str, reason: str) -> None:
        self.url = redact_url(url)
        self.reason = _one_line(reason)
        super().__init__(f"malformed response from {self.url}: {self.reason}")


class ReadBackError(ClientError):
    """An HTML read-back (contract Appendix B) found nothing, or something ambiguous, on a page.

    `missing` says what was looked for in the page's own terms (an element, an attribute, a link shape).
    """

    def __init__(self, page: str, missing: str, reason: str = "not found") -> None:
        self.page = redact_url(page)
        self.missing = _one_line(missing)
        self.reason = _one_line(reason)
        super().__init__(f"read-back failed on {self.page}: {self.reason}: {self.missing}")


class BoothMismatch(ClientError):
    """The server's booth is not the one we provisioned (contract 15: an old target parses a new-layout booth id
    as another event's booth and joins it without error, so every join and booth page is checked)."""

    def __init__(self, url: str, expected: str, got: str) -> None:
        self.url = redact_url(url)
        self.expected = expected
        self.got = _one_line(got)
        super().__init__(f"booth mismatch on {self.url}: expected booth {expected}, the server gave {self.got}")


class SocketError(ClientError):
    def __init__(self, url: str, reason: str) -> None:
        self.url = redact_url(url)
        self.reason = _one_line(reason)
        super().__init__(f"{self.describe()}: {self.url}: {self.reason}")

    def describe(self) -> str:
        return "websocket error"


class HandshakeRejected(SocketError):
    def __init__(self, url: str, status: int, reason: str = "") -> None:
        self.status = status
        super().__init__(url, f"HTTP {status}" + (f" {reason}" if reason else ""))

    def describe(self) -> str:
        return "websocket handshake rejected"


class SocketClosed(SocketError):
    def __init__(self, url: str, code: int | None, reason: str = "") -> None:
        self.code = code
        super().__init__(url, f"close code {code}" + (f" {reason}" if reason else ""))

    def describe(self) -> str:
        return "websocket closed"


class ReplyTimeout(SocketError):
    def __init__(self, url: str, waiting_for: str, timeout_s: float) -> None:
        self.waiting_for = waiting_for
        self.timeout_s = timeout_s
        super().__init__(url, f"no {waiting_for} within {timeout_s:.1f} s")

    def describe(self) -> str:
        return "websocket reply timeout"


class BoothErrorReply(SocketError):
    """`booth:error` in answer to a request (contract 5.3); `message` is the server's text."""

    def __init__(self, url: str, request_type: str, message: str) -> None:
        self.request_type = request_type
        self.message = message
        super().__init__(url, f"{request_type} answered with booth:error {message!r}")

    def describe(self) -> str:
        return "booth error"


class CredentialsUnavailable(ClientError):
    """No target secret configured, so JWTs cannot be minted (contract 3.1)."""
