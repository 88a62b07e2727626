"""WebSocket machinery shared by the booth and caption sockets (websocket-client, works under gevent).

Owns: the connection state machine, the handshake (cookies, ``Origin``, ``?token=``) and its error
translation, a reader thread that timestamps every received frame with the injected monotonic clock,
waiting for a reply that matches a predicate, and reporting of timed round trips. What the messages
mean belongs to the surface modules (:mod:`booth_ws`, :mod:`captions_ws`).

Contract 3.6: rejected sockets are closed *before accept*, so a real client sees the HTTP upgrade fail
(403) and never sees the 4001/4003 close codes.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import websocket

from ..contract.routes import Route
from .errors import HandshakeRejected, ReplyTimeout, SocketClosed, SocketError, TargetUnreachable, redact_url
from .reporting import WS_CONNECT, WS_ROUND_TRIP, ReportFn, report_round_trip

log = logging.getLogger(__name__)

DEFAULT_CONNECT_TIMEOUT_S = 10.0
DEFAULT_REPLY_TIMEOUT_S = 10.0
# Frames that are not JSON objects (contract 6.2 mentions a plain-text `pong`) are recorded under this type.
TEXT_FRAME_TYPE = "<text>"


class SocketState(enum.Enum):
    NEW = "new"
    CONNECTING = "connecting"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"  # closed by either side after being open
    REJECTED = "rejected"  # the HTTP upgrade was refused
    FAILED = "failed"  # transport failure before or after open


# Allowed transitions; anything else is a bug in this module.
_TRANSITIONS = {
    SocketState.NEW: {SocketState.CONNECTING},
    SocketState.CONNECTING: {SocketState.OPEN, SocketState.REJECTED, SocketState.FAILED},
    SocketState.OPEN: {SocketState.CLOSING, SocketState.CLOSED, SocketState.FAILED},
    SocketState.CLOSING: {SocketState.CLOSED, SocketState.FAILED},
    SocketState.CLOSED: set(),
    SocketState.REJECTED: set(),
    SocketState.FAILED: set(),
}


@dataclasses.dataclass(frozen=True)
class ReceivedMessage:
    index: int  # position in this socket's receive order, from 0
    type: str
    payload: Mapping[str, Any]
    received_at_s: float  # the socket's monotonic clock
    size_bytes: int


@dataclasses.dataclass(frozen=True)
class SentMessage:
    type: str
    sent_at_s: float
    size_bytes: int


@dataclasses.dataclass(frozen=True)
class SocketStatistics:
    state: SocketState
    handshake_ms: float | None
    messages_received: int
    bytes_received: int
    messages_sent: int
    bytes_sent: int
    received_by_type: Mapping[str, int]
    close_code: int | None


class JsonSocket:
    """One JSON-over-WebSocket connection with a background reader."""

    def __init__(
        self,
        url: str,
        *,
        name: str,
        cookie: str = "",
        origin: str | None = None,
        headers: Mapping[str, str] | None = None,
        report: ReportFn | None = None,
        clock_s: Callable[[], float] = time.monotonic,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
    ) -> None:
        self.url = url
        self.name = name  # stats name, e.g. "/ws/booth/[booth_id]"
        self._cookie = cookie
        self._origin = origin
        self._headers = dict(headers or {})
        self.report = report
        self._clock_s = clock_s
        self._connect_timeout_s = connect_timeout_s
        self._ws: websocket.WebSocket | None = None
        self._reader: threading.Thread | None = None
        self._cond = threading.Condition()
        self._received: list[ReceivedMessage] = []
        self._sent: list[SentMessage] = []
        self._bytes_received = 0
        self._state = SocketState.NEW
        self.transitions: list[tuple[SocketState, SocketState]] = []
        self.handshake_ms: float | None = None
        self.close_code: int | None = None
        self.close_reason = ""

    def __repr__(self) -> str:
        # The URL may carry ?token=; the cookie is never shown.
        return f"{type(self).__name__}({redact_url(self.url)!r}, state={self._state.value})"

    # --- state machine ---
    @property
    def state(self) -> SocketState:
        return self._state

    def _set_state(self, new: SocketState) -> None:
        with self._cond:
            old = self._state
            if old is new:
                return
            if new not in _TRANSITIONS[old]:
                raise RuntimeError(f"{self!r}: illegal state change {old.value} -> {new.value}")
            self._state = new
            self.transitions.append((old, new))
            self._cond.notify_all()
        log.debug("%s %s: %s -> %s", type(self).__name__, self.name, old.value, new.value)

    # --- connection ---
    def connect(self) -> JsonSocket:
        self._set_state(SocketState.CONNECTING)
        header = [f"{k}: {v}" for k, v in self._headers.items()]
        started_s = time.perf_counter()
        error: SocketError | None = None
        try:
            self._ws = websocket.create_connection(
                self.url,
                timeout=self._connect_timeout_s,
                header=header,
                cookie=self._cookie or None,
                origin=self._origin,
                enable_multithread=True,
                # Frames are parsed as JSON anyway; the pure-Python UTF-8 pre-check only costs CPU under load.
                skip_utf8_validation=True,
            )
        except websocket.WebSocketBadStatusException as exc:
            error = HandshakeRejected(self.url, exc.status_code, str(exc.status_message or ""))
        except (websocket.WebSocketTimeoutException, TimeoutError) as exc:
            error = TargetUnreachable(self.url, f"handshake timeout: {exc}")
        except (OSError, websocket.WebSocketException) as exc:
            error = TargetUnreachable(self.url, str(exc) or type(exc).__name__)
        elapsed_ms = (time.perf_counter() - started_s) * 1000.0
        report_round_trip(
            self.report, request_type=WS_CONNECT, name=self.name, response_time_ms=elapsed_ms, response_length=0, exception=error
        )
        if error is not None:
            self._set_state(SocketState.REJECTED if isinstance(error, HandshakeRejected) else SocketState.FAILED)
            raise error
        self.handshake_ms = elapsed_ms
        assert self._ws is not None
        self._ws.settimeout(None)  # the reader blocks; replies are awaited on the condition instead
        self._set_state(SocketState.OPEN)
        self._reader = threading.Thread(target=self._read_loop, name=f"ws-reader {self.name}", daemon=True)
        self._reader.start()
        return self

    def _read_loop(self) -> None:
        ws = self._ws
        assert ws is not None
        while True:
            try:
                opcode, frame = ws.recv_data_frame(control_frame=False)
            except (websocket.WebSocketException, OSError, ValueError, AttributeError) as exc:
                # AttributeError: websocket-client clears its socket on shutdown() while we are blocked in recv.
                self._finish(SocketState.CLOSED if self._state is SocketState.CLOSING else SocketState.FAILED, None, str(exc))
                return
            now_s = self._clock_s()
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                code, reason = _close_details(frame.data)
                self._finish(SocketState.CLOSED, code, reason)
                return
            data = frame.data if isinstance(frame.data, (bytes, bytearray)) else bytes(frame.data or b"")
            self._record(data, now_s)

    def _record(self, data: bytes, received_at_s: float) -> None:
        try:
            payload = json.loads(data)
        except ValueError:
            payload = None
        if isinstance(payload, dict):
            msg_type = str(payload.get("type", ""))
        else:
            payload, msg_type = {"text": data.decode("utf-8", "replace")}, TEXT_FRAME_TYPE
        with self._cond:
            message = ReceivedMessage(len(self._received), msg_type, payload, received_at_s, len(data))
            self._received.append(message)
            self._bytes_received += len(data)
            self._on_message(message)
            self._cond.notify_all()

    def _on_message(self, message: ReceivedMessage) -> None:
        """Hook for subclasses, called with the condition held (keep it cheap, never block)."""

    def _finish(self, state: SocketState, code: int | None, reason: str) -> None:
        with self._cond:
            self.close_code = code
            self.close_reason = reason
            if self._state in (SocketState.OPEN, SocketState.CLOSING):
                self._set_state(state)
        if self._ws is not None:
            try:
                self._ws.shutdown()
            except Exception:  # noqa: BLE001 - best effort on an already broken socket
                pass

    def close(self, timeout_s: float = 2.0) -> None:
        """Send a close frame and wait for the reader to see the server's close; idempotent."""
        if self._state is not SocketState.OPEN:
            return
        self._set_state(SocketState.CLOSING)
        assert self._ws is not None
        try:
            self._ws.send_close(websocket.STATUS_NORMAL)
        except (websocket.WebSocketException, OSError):
            pass
        if self._reader is not None:
            self._reader.join(timeout_s)
        if self._reader is not None and self._reader.is_alive():
            self._ws.shutdown()
            self._reader.join(timeout_s)
        with self._cond:
            if self._state is SocketState.CLOSING:
                self._set_state(SocketState.CLOSED)

    def __enter__(self) -> JsonSocket:
        return self.connect() if self._state is SocketState.NEW else self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- sending and receiving ---
    def send_json(self, message: Mapping[str, Any]) -> SentMessage:
        """Fire and forget: not reported (there is no round trip to time)."""
        return self.send_text(json.dumps(message, separators=(",", ":")), str(message.get("type", "")))

    def send_text(self, text: str, msg_type: str = TEXT_FRAME_TYPE) -> SentMessage:
        if self._state is not SocketState.OPEN or self._ws is None:
            raise SocketClosed(self.url, self.close_code, f"cannot send in state {self._state.value}")
        sent = SentMessage(msg_type, self._clock_s(), len(text.encode()))
        try:
            self._ws.send(text)
        except (websocket.WebSocketException, OSError) as exc:
            raise SocketClosed(self.url, self.close_code, f"send failed: {exc}") from exc
        with self._cond:
            self._sent.append(sent)
        return sent

    def request(
        self,
        message: Mapping[str, Any],
        *,
        accept: Callable[[ReceivedMessage], bool],
        fail: Callable[[ReceivedMessage], BaseException | None] | None = None,
        waiting_for: str,
        timeout_s: float = DEFAULT_REPLY_TIMEOUT_S,
    ) -> ReceivedMessage:
        """Send `message` and wait for the first later frame that `accept`s it (or that `fail` maps to an error).

        The round trip is reported under the message type, with the reply's size.
        """
        with self._cond:
            start_index = len(self._received)
        started_s = time.perf_counter()
        msg_type = str(message.get("type", ""))
        error: Exception | None = None
        reply: ReceivedMessage | None = None
        try:
            self.send_json(message)
            reply = self._wait(start_index, accept, fail, waiting_for, timeout_s)
        except Exception as exc:  # reported, then re-raised unchanged
            error = exc
        report_round_trip(
            self.report,
            request_type=WS_ROUND_TRIP,
            name=msg_type,
            response_time_ms=(time.perf_counter() - started_s) * 1000.0,
            response_length=reply.size_bytes if reply is not None else 0,
            exception=error,
        )
        if error is not None:
            raise error
        assert reply is not None
        return reply

    def wait_for(
        self,
        accept: Callable[[ReceivedMessage], bool],
        *,
        waiting_for: str,
        timeout_s: float = DEFAULT_REPLY_TIMEOUT_S,
        after_index: int = 0,
    ) -> ReceivedMessage:
        """The first received frame from `after_index` on that `accept`s; waits up to `timeout_s`."""
        return self._wait(after_index, accept, None, waiting_for, timeout_s)

    def _wait(
        self,
        start_index: int,
        accept: Callable[[ReceivedMessage], bool],
        fail: Callable[[ReceivedMessage], BaseException | None] | None,
        waiting_for: str,
        timeout_s: float,
    ) -> ReceivedMessage:
        deadline_s = time.monotonic() + timeout_s
        index = start_index
        with self._cond:
            while True:
                while index < len(self._received):
                    message = self._received[index]
                    index += 1
                    if fail is not None:
                        failure = fail(message)
                        if failure is not None:
                            raise failure
                    if accept(message):
                        return message
                if self._state not in (SocketState.OPEN, SocketState.CLOSING):
                    raise SocketClosed(self.url, self.close_code, f"while waiting for {waiting_for} {self.close_reason}".strip())
                remaining_s = deadline_s - time.monotonic()
                if remaining_s <= 0:
                    raise ReplyTimeout(self.url, waiting_for, timeout_s)
                self._cond.wait(remaining_s)

    # --- records ---
    def received(self, msg_type: str | None = None) -> list[ReceivedMessage]:
        with self._cond:
            return [m for m in self._received if msg_type is None or m.type == msg_type]

    def sent(self) -> list[SentMessage]:
        with self._cond:
            return list(self._sent)

    def received_count(self) -> int:
        with self._cond:
            return len(self._received)

    def statistics(self) -> SocketStatistics:
        with self._cond:
            return SocketStatistics(
                state=self._state,
                handshake_ms=self.handshake_ms,
                messages_received=len(self._received),
                bytes_received=self._bytes_received,
                messages_sent=len(self._sent),
                bytes_sent=sum(s.size_bytes for s in self._sent),
                received_by_type=dict(Counter(m.type for m in self._received)),
                close_code=self.close_code,
            )


def _close_details(data: bytes | None) -> tuple[int | None, str]:
    if not data or len(data) < 2:
        return None, ""
    return int.from_bytes(data[:2], "big"), bytes(data[2:]).decode("utf-8", "replace")


class BoothScopedSocket(JsonSocket):
    """A socket on one booth's route (`/ws/booth/…`, `/ws/captions/…`); subclasses name the route."""

    ROUTE: Route  # e.g. contract.routes.WS_BOOTH

    def __init__(self, url: str, booth_id: str, **kwargs: Any) -> None:
        super().__init__(url, name=self.ROUTE.name, **kwargs)
        self.booth_id = booth_id

    @classmethod
    def for_portal(
        cls,
        http,  # PortalHttp
        booth_id: str,
        *,
        token: str | None = None,
        use_cookies: bool = True,
        origin: str | None = "",
        report: ReportFn | None = None,
        clock_s: Callable[[], float] = time.monotonic,
        connect_timeout_s: float = 10.0,
        **extra: Any,
    ):
        """A socket for `booth_id` on the portal of `http`, carrying its JWT cookies and/or `?token=`.

        `origin=""` (default) sends the portal's own origin, which contract 3.6 accepts in auth mode (host of
        PUBLIC_BASE_URL or the request host); `None` sends no Origin header.
        """
        from .cookies import JWT_COOKIE_ORDER, cookie_header
        from .media_urls import encode_uri_component

        path = cls.ROUTE.path(booth_id=encode_uri_component(booth_id))
        url = http.ws_url(path) + (f"?token={encode_uri_component(token)}" if token else "")
        # Contract 3.6: the WS routes read the JWT cookies (admin, user, session), not the listener code cookie.
        cookie = cookie_header(http.cookies, JWT_COOKIE_ORDER) if use_cookies else ""
        return cls(
            url,
            booth_id,
            cookie=cookie,
            origin=http.base_url if origin == "" else origin,
            report=report if report is not None else http.report,
            clock_s=clock_s,
            connect_timeout_s=connect_timeout_s,
            **extra,
        )
