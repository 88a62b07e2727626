"""Every patch of aiortc/aioice internals used by the media engine, in one module.

aiortc is pinned ``==1.16.0`` and aioice ``==0.13.0`` (pyproject) because this module reaches past their
public API. ``check_pinned_internals`` compares the source of each patched function with the hash it had
when the patch was written, and ``tests/test_media_patches.py`` fails when one of them moves.

- ICE host addresses (media-design 6.1-6.2): aioice never offers 127.0.0.1 and would otherwise offer every
  interface; the harness restricts host candidates to loopback or configured interfaces so no traffic leaves
  the chosen interfaces. ``RTCConfiguration(iceServers=[])`` (``ice_configuration``) keeps the public Google
  STUN server away.
- RTP tap (media-design 1), two depths:
  - tap-only (plain listeners): ``RTCDtlsTransport._handle_rtp_data`` hands each SRTP-decrypted datagram to a
    per-transport callback before aiortc parses it (``RtpPacket.parse`` with header extensions and SSRC
    routing were ~25 % of the per-packet cost; the callback reads the 12-byte header itself). A WHEP listener's
    peer connection has one audio receiver on one transport, so every RTP datagram there is the tap's. Nothing
    else runs: no jitter buffer, no decode, no RTCP receiver statistics (RTCP itself still flows).
  - pass-through (probe and stock listeners): ``RTCRtpReceiver._handle_rtp_packet`` hands the parsed
    ``RtpPacket`` to the callback, then the stock jitter buffer and decoder run.
- STUN demultiplexing shortcut: aioice tries to parse every datagram as STUN before handing it on; a
  first byte in 128..191 is RTP/RTCP and never STUN (RFC 7983 section 7), so such datagrams skip the parse
  attempt and go where the failed parse would have sent them.
- No idle decoder thread (media-design 1: 800 tap listeners -> 805 threads): in tap-only mode
  ``RTCRtpReceiver.receive`` performs the stock start-up minus the decoder thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import logging
from collections.abc import Callable, Sequence

import aioice
import aioice.ice
import aiortc
from aiortc import RTCConfiguration, RTCRtpReceiver
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtp import RtpPacket

logger = logging.getLogger(__name__)

PINNED_AIORTC_VERSION = "1.16.0"
PINNED_AIOICE_VERSION = "0.13.0"
DEFAULT_ICE_HOSTS = ("127.0.0.1",)

# sha256 (first 16 hex digits) of inspect.getsource() of each function the patches replace or replicate.
PINNED_SOURCE_SHA256 = {
    "aiortc.rtcrtpreceiver.RTCRtpReceiver.receive": "d6d8d8d7a0bf4e95",
    "aiortc.rtcrtpreceiver.RTCRtpReceiver._handle_rtp_packet": "4e54983d021a6336",
    "aiortc.rtcrtpreceiver.RTCRtpReceiver.stop": "63734b6894ce67a5",
    "aiortc.rtcdtlstransport.RTCDtlsTransport._handle_rtp_data": "5def9061cc3da1f6",
    "aioice.ice.get_host_addresses": "d4a54f9a68c39ff1",
    "aioice.ice.StunProtocol.datagram_received": "ff4c8b910d45fb3a",
}

# Private attributes of RTCRtpReceiver the decoder-less start-up writes (name-mangled).
_RECEIVER_PRIVATE_ATTRS = (
    "_RTCRtpReceiver__started",
    "_RTCRtpReceiver__codecs",
    "_RTCRtpReceiver__rtx_ssrc",
    "_RTCRtpReceiver__transport",
    "_RTCRtpReceiver__rtcp_task",
    "_RTCRtpReceiver__decoder_thread",
)

RtpTap = Callable[[RtpPacket], None]
RawRtpTap = Callable[[bytes], None]

_TAP_ATTR = "_voxload_tap"
_PASSTHROUGH_ATTR = "_voxload_passthrough"
_RAW_TAP_ATTR = "_voxload_raw_tap"
_state: dict[str, object] = {"installed": False, "ice_hosts": DEFAULT_ICE_HOSTS}
_original_handle_rtp_packet = RTCRtpReceiver._handle_rtp_packet
_original_receive = RTCRtpReceiver.receive
_original_handle_rtp_data = RTCDtlsTransport._handle_rtp_data
_original_get_host_addresses = aioice.ice.get_host_addresses
_original_datagram_received = aioice.ice.StunProtocol.datagram_received


class PinnedInternalsError(RuntimeError):
    """aiortc/aioice is not the version, or its internals not the code, these patches were written for."""


def _source_fingerprint(func: Callable) -> str:
    return hashlib.sha256(inspect.getsource(func).encode()).hexdigest()[:16]


def check_pinned_internals() -> None:
    if aiortc.__version__ != PINNED_AIORTC_VERSION or aioice.__version__ != PINNED_AIOICE_VERSION:
        raise PinnedInternalsError(
            f"harness.media patches need aiortc=={PINNED_AIORTC_VERSION} and aioice=={PINNED_AIOICE_VERSION}, "
            f"found aiortc {aiortc.__version__}, aioice {aioice.__version__}"
        )
    originals = {
        "aiortc.rtcrtpreceiver.RTCRtpReceiver.receive": _original_receive,
        "aiortc.rtcrtpreceiver.RTCRtpReceiver._handle_rtp_packet": _original_handle_rtp_packet,
        "aiortc.rtcrtpreceiver.RTCRtpReceiver.stop": RTCRtpReceiver.stop,
        "aiortc.rtcdtlstransport.RTCDtlsTransport._handle_rtp_data": _original_handle_rtp_data,
        "aioice.ice.get_host_addresses": _original_get_host_addresses,
        "aioice.ice.StunProtocol.datagram_received": _original_datagram_received,
    }
    for name, func in originals.items():
        found = _source_fingerprint(func)
        if found != PINNED_SOURCE_SHA256[name]:
            raise PinnedInternalsError(f"{name} changed (source sha256 {found}, patch written for {PINNED_SOURCE_SHA256[name]})")


def ice_configuration() -> RTCConfiguration:
    # media-design 6.1: the default RTCConfiguration() contacts a public STUN server.
    return RTCConfiguration(iceServers=[])


def _restricted_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    hosts = list(_state["ice_hosts"])  # type: ignore[arg-type]
    return [h for h in hosts if (":" in h and use_ipv6) or (":" not in h and use_ipv4)]


async def _handle_rtp_packet(self: RTCRtpReceiver, packet: RtpPacket, arrival_time_ms: int) -> None:
    tap = getattr(self, _TAP_ATTR, None)
    if tap is not None:
        tap(packet)
        if not getattr(self, _PASSTHROUGH_ATTR, False):
            return
    await _original_handle_rtp_packet(self, packet, arrival_time_ms)


def _datagram_received(self, data: bytes, addr) -> None:
    # RFC 7983 section 7: first byte 128..191 is RTP/RTCP; STUN starts with 0..3.
    if data and 127 < data[0] < 192:
        self.receiver.data_received(data, self.local_candidate.component)
        return
    _original_datagram_received(self, data, addr)


async def _handle_rtp_data(self: RTCDtlsTransport, data: bytes, arrival_time_ms: int) -> None:
    raw_tap = getattr(self, _RAW_TAP_ATTR, None)
    if raw_tap is not None:
        raw_tap(data)
        return
    await _original_handle_rtp_data(self, data, arrival_time_ms)


async def _receive(self: RTCRtpReceiver, parameters) -> None:
    if getattr(self, _TAP_ATTR, None) is None or getattr(self, _PASSTHROUGH_ATTR, False):
        await _original_receive(self, parameters)
        return
    # Stock receive() minus the decoder thread: the tap-only receiver never decodes.
    if not self._RTCRtpReceiver__started:
        for codec in parameters.codecs:
            self._RTCRtpReceiver__codecs[codec.payloadType] = codec
        for encoding in parameters.encodings:
            if encoding.rtx:
                self._RTCRtpReceiver__rtx_ssrc[encoding.rtx.ssrc] = encoding.ssrc
        self._RTCRtpReceiver__transport._register_rtp_receiver(self, parameters)
        self._RTCRtpReceiver__rtcp_task = asyncio.ensure_future(self._run_rtcp())
        self._RTCRtpReceiver__started = True


def install(ice_hosts: Sequence[str] = DEFAULT_ICE_HOSTS) -> None:
    """Apply every patch (idempotent); ``ice_hosts`` are the only ICE host candidates offered."""
    if not ice_hosts:
        raise ValueError("at least one ICE host address is needed")
    _state["ice_hosts"] = tuple(ice_hosts)
    if _state["installed"]:
        return
    check_pinned_internals()
    aioice.ice.get_host_addresses = _restricted_host_addresses
    aioice.ice.StunProtocol.datagram_received = _datagram_received
    RTCRtpReceiver._handle_rtp_packet = _handle_rtp_packet
    RTCRtpReceiver.receive = _receive
    RTCDtlsTransport._handle_rtp_data = _handle_rtp_data
    _state["installed"] = True
    logger.debug("aiortc patches installed; ICE host candidates: %s", ", ".join(ice_hosts))


def _require_installed() -> None:
    if not _state["installed"]:
        raise PinnedInternalsError("harness.media.aiortc_patches.install() was not called")


def attach_tap(receiver: RTCRtpReceiver, tap: RtpTap) -> None:
    """Pass-through tap: ``tap`` sees each parsed packet, then the stock jitter buffer and decoder run."""
    _require_installed()
    setattr(receiver, _TAP_ATTR, tap)
    setattr(receiver, _PASSTHROUGH_ATTR, True)


def attach_raw_tap(receiver: RTCRtpReceiver, tap: RawRtpTap) -> None:
    """Tap-only: every decrypted RTP datagram of the receiver's transport goes to ``tap`` and nowhere else.

    Must be called before the remote description is applied (that is when ``receive()`` starts the receiver,
    which then starts no decoder thread). Only for a transport that carries this one receiver.
    """
    _require_installed()
    setattr(receiver, _TAP_ATTR, tap)
    setattr(receiver, _PASSTHROUGH_ATTR, False)
    setattr(receiver.transport, _RAW_TAP_ATTR, tap)


def receiver_has_decoder_thread(receiver: RTCRtpReceiver) -> bool:
    return receiver._RTCRtpReceiver__decoder_thread is not None
