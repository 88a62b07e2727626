"""Typed errors of the media plane, one class per failure phase.

Map:
- ``MediaError``: root.
  - ``SessionError`` (a publisher or listener failed; ``phase`` names where):
    - ``OfferError``: createOffer / ICE gathering / setLocalDescription (phase ``offer``).
    - ``SignalingError``: the WHIP/WHEP POST could not be made (connection refused, timeout) (phase ``post``);
      ``HttpStatusError`` when it was answered with a non-201 status (``status`` kept).
    - ``AnswerError``: the SDP answer could not be applied (phase ``answer``).
    - ``IceError``: ICE/DTLS did not reach connected, or failed (phase ``ice``).
    - ``FirstPacketTimeout``: connected but no RTP within the deadline (phase ``first-packet``).
  - ``EngineError`` (the harness's own engine process, never the target):
    - ``EngineStartError``, ``EngineCrashed`` (name and exit code), ``EngineTimeout``, ``EngineProtocolError``.
  - ``UnknownHandle``: close/stat of a handle the engine does not hold.

Library exceptions are translated into these at one boundary per side: ``session.py`` wraps aiortc/aiohttp
exceptions per phase, and ``error_from_wire`` turns the engine's JSON error back into the same class
in the bridge.
"""

from __future__ import annotations

from ..errors import VoxloadError


class MediaError(VoxloadError):
    """Root of the media plane's errors."""


class SessionError(MediaError):
    phase = "session"


class OfferError(SessionError):
    phase = "offer"


class SignalingError(SessionError):
    phase = "post"


class HttpStatusError(SignalingError):
    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AnswerError(SessionError):
    phase = "answer"


class IceError(SessionError):
    phase = "ice"


class FirstPacketTimeout(SessionError):
    phase = "first-packet"


class UnknownHandle(MediaError):
    pass


class EngineError(MediaError):
    phase = "engine"


class EngineStartError(EngineError):
    pass


class EngineCrashed(EngineError):
    def __init__(self, engine: str, exit_code: int | None, detail: str = "") -> None:
        code = "unknown" if exit_code is None else str(exit_code)
        super().__init__(f"media engine {engine} died (exit code {code}){': ' + detail if detail else ''}")
        self.engine = engine
        self.exit_code = exit_code


class EngineTimeout(EngineError):
    pass


class EngineProtocolError(EngineError):
    pass


_WIRE_TYPES: dict[str, type[MediaError]] = {
    cls.__name__: cls
    for cls in (
        MediaError, SessionError, OfferError, SignalingError, HttpStatusError, AnswerError, IceError,
        FirstPacketTimeout, UnknownHandle, EngineError, EngineTimeout, EngineProtocolError,
    )
}


def error_to_wire(exc: BaseException) -> dict:
    """JSON form of an error raised inside an engine."""
    wire = {"type": type(exc).__name__ if type(exc).__name__ in _WIRE_TYPES else "MediaError", "message": str(exc)}
    if isinstance(exc, HttpStatusError):
        wire["status"] = exc.status
    return wire


def error_from_wire(wire: dict) -> MediaError:
    """The bridge-side exception for an engine's JSON error (same class as was raised in the engine)."""
    cls = _WIRE_TYPES.get(wire.get("type", ""), MediaError)
    if cls is HttpStatusError:
        return HttpStatusError(wire.get("message", ""), wire.get("status"))
    return cls(wire.get("message", ""))
