"""Every use of aiortc/aioice internals by the media relay and the stand-in captioner, in one place.

aiortc is pinned ``==1.16.0`` and aioice ``==0.13.0`` (pyproject) because this module reaches past their
public API. Each function says why; ``tests/test_media_relay_patches.py`` fails if a pinned internal moves.

- :func:`restrict_ice_to_loopback` - aioice never offers 127.0.0.1 as a host candidate (media-design 6.2) and
  the harness must never send traffic off the machine, so host candidates are limited to loopback.
- :func:`install_rtp_tap` - the relay forwards Opus RTP payloads without decoding (media-design 6.6): a
  publisher's ``RTCRtpReceiver`` hands each SRTP-decrypted, parsed ``RtpPacket`` to the relay instead of its
  jitter buffer and decoder thread.
- :func:`capture_send_parameters`, :func:`send_rtp_packet`, :func:`record_sent_rtp` - a reader's
  ``RTCRtpSender`` does not pull frames from a track; the relay writes rewritten RTP packets straight to the
  sender's DTLS transport (so relay-injected loss shows up as sequence gaps, as a real SFU's would), and keeps
  the sender's RTCP sender-report counters true.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
from collections.abc import Awaitable, Callable

import aioice
import aioice.ice
import aiortc
from aiortc import RTCConfiguration, RTCRtpReceiver, RTCRtpSender
from aiortc import clock as aiortc_clock
from aiortc.rtcrtpparameters import RTCRtpSendParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket

logger = logging.getLogger(__name__)

PINNED_AIORTC_VERSION = "1.16.0"
PINNED_AIOICE_VERSION = "0.13.0"
LOOPBACK_ADDRESSES = ["127.0.0.1"]

# Private names this module touches; checked by check_pinned_internals() and the patch tests.
_SENDER_SR_COUNTERS = (
    "_RTCRtpSender__ntp_timestamp",
    "_RTCRtpSender__rtp_timestamp",
    "_RTCRtpSender__octet_count",
    "_RTCRtpSender__packet_count",
)

# sha256 (first 16 hex) of the source of every internal whose *behaviour* this module relies on:
# _handle_rtp_data calls receiver._handle_rtp_packet(packet, arrival_time_ms=...) (the tap);
# _send_rtp protects and sends without suspending (the fan-out); RTCRtpSender.__init__/_run_rtcp own the
# sender-report counters; _run_rtp/_next_encoded_frame await track.recv() before anything else (so a track
# that never yields keeps the stock sender idle); HeaderExtensionsMap.configure maps negotiated ids;
# gather_candidates looks get_host_addresses up in aioice.ice at call time (the loopback restriction).
PINNED_SOURCE_SHA256 = {
    "aiortc.rtcdtlstransport.RTCDtlsTransport._handle_rtp_data": "5def9061cc3da1f6",
    "aiortc.rtcdtlstransport.RTCDtlsTransport._send_rtp": "763b02bceb0b0ab9",
    "aiortc.rtcrtpsender.RTCRtpSender.__init__": "beb1bc0ae04db20d",
    "aiortc.rtcrtpsender.RTCRtpSender._run_rtp": "ff597a1d554cb373",
    "aiortc.rtcrtpsender.RTCRtpSender._run_rtcp": "51e0a924eac4e39b",
    "aiortc.rtcrtpsender.RTCRtpSender._next_encoded_frame": "89dd9fa4fb33741c",
    "aiortc.rtp.HeaderExtensionsMap.configure": "e7bc27f7de53a334",
    "aioice.ice.Connection.gather_candidates": "d33db28d4d1e49ff",
}

RtpTap = Callable[..., Awaitable[None]]


class PinnedInternalsError(RuntimeError):
    """aiortc/aioice are not the pinned versions, or an internal this module relies on has moved."""


def check_pinned_internals() -> None:
    """Fail loudly at startup instead of misbehaving silently with another aiortc/aioice."""
    if aiortc.__version__ != PINNED_AIORTC_VERSION:
        raise PinnedInternalsError(f"aiortc {aiortc.__version__} installed, relay patches are for {PINNED_AIORTC_VERSION}")
    if aioice.__version__ != PINNED_AIOICE_VERSION:
        raise PinnedInternalsError(f"aioice {aioice.__version__} installed, relay patches are for {PINNED_AIOICE_VERSION}")
    import aiortc.rtcdtlstransport as dtls

    pinned = {
        "aiortc.rtcdtlstransport.RTCDtlsTransport._handle_rtp_data": dtls.RTCDtlsTransport._handle_rtp_data,
        "aiortc.rtcdtlstransport.RTCDtlsTransport._send_rtp": dtls.RTCDtlsTransport._send_rtp,
        "aiortc.rtcrtpsender.RTCRtpSender.__init__": RTCRtpSender.__init__,
        "aiortc.rtcrtpsender.RTCRtpSender._run_rtp": RTCRtpSender._run_rtp,
        "aiortc.rtcrtpsender.RTCRtpSender._run_rtcp": RTCRtpSender._run_rtcp,
        "aiortc.rtcrtpsender.RTCRtpSender._next_encoded_frame": RTCRtpSender._next_encoded_frame,
        "aiortc.rtp.HeaderExtensionsMap.configure": HeaderExtensionsMap.configure,
        "aioice.ice.Connection.gather_candidates": aioice.ice.Connection.gather_candidates,
    }
    for name, func in pinned.items():
        found = source_fingerprint(func)
        if found != PINNED_SOURCE_SHA256[name]:
            raise PinnedInternalsError(f"{name} changed (source sha256 {found}, relay patches written for {PINNED_SOURCE_SHA256[name]})")


def source_fingerprint(func: Callable) -> str:
    return hashlib.sha256(inspect.getsource(func).encode()).hexdigest()[:16]


def ice_configuration() -> RTCConfiguration:
    """media-design 6.1: aiortc's default RTCConfiguration() uses Google STUN; never let a peer use it."""
    return RTCConfiguration(iceServers=[])


def _loopback_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    return list(LOOPBACK_ADDRESSES) if use_ipv4 else []


def restrict_ice_to_loopback() -> None:
    """Make every aioice Connection in this process offer only 127.0.0.1 host candidates (idempotent).

    aioice.ice.Connection.gather_candidates looks ``get_host_addresses`` up in the module namespace at call
    time, so replacing the module attribute is enough.
    """
    if aioice.ice.get_host_addresses is not _loopback_host_addresses:
        aioice.ice.get_host_addresses = _loopback_host_addresses


def install_rtp_tap(receiver: RTCRtpReceiver, tap: RtpTap) -> None:
    """Route every RTP packet of ``receiver`` to ``tap(packet, arrival_time_ms=...)`` instead of its jitter buffer.

    RTCDtlsTransport._handle_rtp_data calls ``receiver._handle_rtp_packet(packet, arrival_time_ms=...)``
    after SRTP decryption and parsing; an instance attribute shadows the method for this receiver only. The
    receiver's decoder thread stays idle (media-design 1: the per-frame thread hop is what costs CPU).
    """
    receiver._handle_rtp_packet = tap  # type: ignore[method-assign]


def capture_send_parameters(sender: RTCRtpSender, on_parameters: Callable[[RTCRtpSendParameters], None]) -> None:
    """Call ``on_parameters`` with the negotiated send parameters when the peer connection starts ``sender``.

    The payload type, MID and header-extension ids a relayed packet needs are only known here.
    """
    original_send = sender.send

    async def send(parameters: RTCRtpSendParameters) -> None:
        on_parameters(parameters)
        await original_send(parameters)

    sender.send = send  # type: ignore[method-assign]


def header_extensions_map(parameters: RTCRtpSendParameters) -> HeaderExtensionsMap:
    ext_map = HeaderExtensionsMap()
    ext_map.configure(parameters)
    return ext_map


def sender_ssrc(sender: RTCRtpSender) -> int:
    """The SSRC aiortc chose for ``sender`` (also used in its RTCP sender reports)."""
    return sender._ssrc


def sender_transport_connected(sender: RTCRtpSender) -> bool:
    return sender.transport.state == "connected"


async def send_rtp_packet(sender: RTCRtpSender, data: bytes) -> None:
    """SRTP-protect and send one serialized RTP packet on the sender's DTLS transport.

    The call chain (SRTP protect, ICE pair, datagram sendto) never suspends, so fanning one packet out to N
    readers costs no event-loop round trip per reader. Raises ConnectionError if the transport is not connected.
    """
    await sender.transport._send_rtp(data)


def record_sent_rtp(sender: RTCRtpSender, rtp_timestamp: int, payload_len: int) -> None:
    """Keep the counters aiortc's RTCP sender reports (and getStats) read in step with relayed packets."""
    sender._RTCRtpSender__ntp_timestamp = aiortc_clock.current_ntp_time()  # type: ignore[attr-defined]
    sender._RTCRtpSender__rtp_timestamp = rtp_timestamp  # type: ignore[attr-defined]
    sender._RTCRtpSender__octet_count += payload_len  # type: ignore[attr-defined]
    sender._RTCRtpSender__packet_count += 1  # type: ignore[attr-defined]


def build_rtp_packet(
    *, payload_type: int, sequence_number: int, timestamp: int, ssrc: int, payload: bytes, marker: int, mid: str | None,
    ext_map: HeaderExtensionsMap,
) -> bytes:
    packet = RtpPacket(
        payload_type=payload_type, marker=marker, sequence_number=sequence_number, timestamp=timestamp, ssrc=ssrc, payload=payload
    )
    packet.extensions.mid = mid
    return packet.serialize(ext_map)
