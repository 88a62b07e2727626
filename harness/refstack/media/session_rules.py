"""What the relay's HTTP layer and path rules need to know about sessions, without importing aiortc.

Owns the session states (the state machine itself lives in ``sessions.py``), the typed refusals with the HTTP
status MediaMTX answers with, and the SDP check for an Opus audio section. Kept apart from ``sessions.py`` so
the relay can serve its control API and refuse bad requests before its first session: aiortc (with PyAV and
OpenSSL) is imported only when the first WHIP/WHEP session is created (``relay.py``), which keeps an idle
relay small.
"""

from __future__ import annotations

import enum


class SessionState(enum.Enum):
    NEW = "new"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    CLOSED = "closed"


class SessionError(Exception):
    """A WHIP/WHEP request the relay refuses; ``status`` is the HTTP status MediaMTX answers with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class UnsupportedOfferError(SessionError):
    """The SDP offer has no Opus audio (MediaMTX: 406 for WHIP tracks, 400 for WHEP codecs)."""


def offer_has_opus_audio(offer_sdp: str) -> bool:
    in_audio = False
    for line in offer_sdp.splitlines():
        if line.startswith("m="):
            in_audio = line.startswith("m=audio")
        elif in_audio and line.lower().startswith("a=rtpmap:") and "opus/48000" in line.lower():
            return True
    return False
