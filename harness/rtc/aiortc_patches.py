"""Every use of aiortc/aioice internals in voxload - engine, reference relay and stand-in captioner - in one module.

aiortc is pinned ``==1.16.0`` and aioice ``==0.13.0`` (pyproject) because this module reaches past their
public API. ``PINNED_SOURCE_SHA256`` holds the source hash of every internal a patch replaces or relies on;
``check_pinned_internals`` compares it with the ORIGINAL functions, captured when this module is imported and
before anything is patched, so the check gives the same answer in a process that has already installed the
patches (the pytest process runs engine and relay code side by side). This is the only module that patches.

``install(role, ice_hosts)`` applies the class-level patches a role needs (idempotent, cumulative: a process
may install several roles). Every patch is inert for an object that did not opt in, so one role's patches
never change another role's peers:

- ICE (every role; media-design 6.1-6.2): aioice never offers 127.0.0.1 and would otherwise offer every
  interface; host candidates are restricted to ``ice_hosts``. ``ice_configuration()`` is
  ``RTCConfiguration(iceServers=[])``, which keeps the public Google STUN server away.
- STUN demultiplexing (every role): aioice tries to parse every datagram as STUN; a first byte in 128..191
  is RTP/RTCP and never STUN (RFC 7983 section 7), so it skips the parse attempt.
- Receiver tap (roles TAP and FORWARD): ``attach_tap`` hands each parsed ``RtpPacket`` of a receiver to a
  callback. ``passthrough=True`` (probe and stock listeners) then runs the stock jitter buffer and decoder;
  ``passthrough=False`` (the relay's publishers) stops there, and the receiver starts no decoder thread
  (media-design 1: 800 listeners -> 805 threads otherwise) and no RTCP task (it would have nothing to report).
- Raw RTP fast path (role TAP; plain listeners): ``attach_raw_tap`` hands each SRTP-decrypted datagram to a
  callback before aiortc parses it (the callback reads the 12-byte header itself). Once the first packet has
  been delivered the stock way and aioice's receive queue is empty, RTP datagrams bypass the per-packet
  queue, task wake-up and coroutine chain (``StunProtocol.datagram_received`` -> ``Connection`` queue ->
  ``RTCDtlsTransport.__run`` -> ``_recv_next`` -> ``_handle_rtp_data``): ``datagram_received`` calls the
  transport's SRTP unprotect (libsrtp through pylibsrtp's binding, fingerprinted too) and the callback
  directly. DTLS and STUN still take the stock path; RTCP is dropped (a tap-only receiver has no use for it).
- Forwarding (role FORWARD; the relay's readers, media-design 6.6): a reader's ``RTCRtpSender`` pulls no
  frames; the relay writes rewritten RTP (``rtp_packet_builder``) straight to the sender's transport
  (``send_rtp_now``: SRTP protect and one ``sendto``, no coroutines) and keeps the sender-report counters
  true (``record_sent_rtp``).
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import inspect
import logging
import struct
import time
from collections.abc import Callable, Sequence

import aioice
import aioice.ice
import aiortc
import pylibsrtp
from pylibsrtp._binding import ffi as srtp_ffi
from pylibsrtp._binding import lib as srtp_lib
from aiortc import RTCConfiguration, RTCRtpReceiver, RTCRtpSender
from aiortc import clock as aiortc_clock
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcdtlstransport import State as DtlsState
from aiortc.rtcicetransport import RTCIceTransport
from aiortc.rtcrtpparameters import RTCRtpSendParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket

from ..errors import VoxloadError
from .pins import PINNED_AIOICE_VERSION, PINNED_AIORTC_VERSION

logger = logging.getLogger(__name__)

DEFAULT_ICE_HOSTS = ("127.0.0.1",)


class Role(enum.Enum):
    """What a process does with aiortc; selects the patches ``install`` applies."""

    TAP = "tap"  # peers that tap received RTP: the engine's listeners, the relay's loopback test subscribers
    FORWARD = "forward"  # reference relay: publishers tapped as parsed packets, readers fed by send_rtp_now
    DECODE = "decode"  # stock receivers that decode (the stand-in captioner): ICE restriction only


class PinnedInternalsError(VoxloadError, RuntimeError):
    """aiortc/aioice is not the version, or an internal not the code, these patches were written for."""


# The originals, captured before any patch (this module is the only one that patches, and patches only in
# install()). Keyed by the name used in PINNED_SOURCE_SHA256.
_ORIGINALS: dict[str, Callable] = {
    # replaced
    "aioice.ice.get_host_addresses": aioice.ice.get_host_addresses,
    "aioice.ice.StunProtocol.datagram_received": aioice.ice.StunProtocol.datagram_received,
    "aiortc.rtcrtpreceiver.RTCRtpReceiver._handle_rtp_packet": RTCRtpReceiver._handle_rtp_packet,
    "aiortc.rtcrtpreceiver.RTCRtpReceiver.receive": RTCRtpReceiver.receive,
    "aiortc.rtcdtlstransport.RTCDtlsTransport._handle_rtp_data": RTCDtlsTransport._handle_rtp_data,
    # relied on
    "aiortc.rtcrtpreceiver.RTCRtpReceiver.stop": RTCRtpReceiver.stop,
    "aiortc.rtcrtpreceiver.RTCRtpReceiver._run_rtcp": RTCRtpReceiver._run_rtcp,
    "aiortc.rtcdtlstransport.RTCDtlsTransport._recv_next": RTCDtlsTransport._recv_next,
    "aiortc.rtcdtlstransport.RTCDtlsTransport._send_rtp": RTCDtlsTransport._send_rtp,
    "aiortc.rtcicetransport.RTCIceTransport.__init__": RTCIceTransport.__init__,
    "aiortc.rtcrtpsender.RTCRtpSender.__init__": RTCRtpSender.__init__,
    "aiortc.rtcrtpsender.RTCRtpSender._run_rtp": RTCRtpSender._run_rtp,
    "aiortc.rtcrtpsender.RTCRtpSender._run_rtcp": RTCRtpSender._run_rtcp,
    "aiortc.rtcrtpsender.RTCRtpSender._next_encoded_frame": RTCRtpSender._next_encoded_frame,
    "aiortc.rtp.HeaderExtensionsMap.configure": HeaderExtensionsMap.configure,
    "aioice.ice.Connection.gather_candidates": aioice.ice.Connection.gather_candidates,
    "aioice.ice.Connection.data_received": aioice.ice.Connection.data_received,
    "aioice.ice.Connection.sendto": aioice.ice.Connection.sendto,
    "aioice.ice.StunProtocol.send_data": aioice.ice.StunProtocol.send_data,
    "aiortc.rtp.RtpPacket.serialize": RtpPacket.serialize,
    "aiortc.clock.current_ntp_time": aiortc_clock.current_ntp_time,
    "pylibsrtp.Session.__init__": pylibsrtp.Session.__init__,
    "pylibsrtp.Session.__process": pylibsrtp.Session._Session__process,
}

# sha256 (first 16 hex digits) of inspect.getsource() of each original. What each one is relied on for:
# _handle_rtp_packet/_handle_rtp_data/receive/datagram_received/get_host_addresses are replaced (receive is
# replicated minus the decoder thread and RTCP task; stop must cope with neither; _run_rtcp reports only on
# remote streams, which only the stock _handle_rtp_packet creates); _recv_next is what the raw fast path
# replicates for RTP (first byte 128..191, RTCP by PT 192..208, unprotect, drop on pylibsrtp.Error);
# Connection.data_received only queues (so bypassing it skips nothing else); RTCIceTransport.__init__ keeps
# the aioice Connection in ``_connection``; _send_rtp protects and sends without suspending (the relay's
# fan-out); RTCRtpSender.__init__/_run_rtcp own the sender-report counters; _run_rtp/_next_encoded_frame
# await track.recv() first (a track that never yields keeps the stock sender idle);
# HeaderExtensionsMap.configure maps negotiated ids; gather_candidates looks get_host_addresses up in
# aioice.ice at call time (the host restriction) and puts every StunProtocol it creates in
# ``Connection._protocols`` (the fast path sets their ``datagram_received``); pylibsrtp's Session keeps its context in ``_srtp``, its
# 1500-byte work buffer in ``_cdata``/``_buffer`` and calls srtp_unprotect(ctx, buffer, int*) in __process
# (the fast path's unprotect makes the same call without the per-call allocation); _send_rtp ->
# Connection.send -> sendto -> StunProtocol.send_data is SRTP protect then one transport.sendto to the
# nominated pair of component 1 (send_rtp_now does just that, synchronously); RtpPacket.serialize lays out
# fixed header, extension block, payload (rtp_packet_builder reuses its extension block);
# current_ntp_time is wall-clock NTP (ntp_time_now computes the same without datetime objects).
PINNED_SOURCE_SHA256 = {
    "aioice.ice.get_host_addresses": "d4a54f9a68c39ff1",
    "aioice.ice.StunProtocol.datagram_received": "ff4c8b910d45fb3a",
    "aiortc.rtcrtpreceiver.RTCRtpReceiver._handle_rtp_packet": "4e54983d021a6336",
    "aiortc.rtcrtpreceiver.RTCRtpReceiver.receive": "d6d8d8d7a0bf4e95",
    "aiortc.rtcdtlstransport.RTCDtlsTransport._handle_rtp_data": "5def9061cc3da1f6",
    "aiortc.rtcrtpreceiver.RTCRtpReceiver.stop": "63734b6894ce67a5",
    "aiortc.rtcrtpreceiver.RTCRtpReceiver._run_rtcp": "0f57daa3218616c0",
    "aiortc.rtcdtlstransport.RTCDtlsTransport._recv_next": "998076720c05aa13",
    "aiortc.rtcdtlstransport.RTCDtlsTransport._send_rtp": "763b02bceb0b0ab9",
    "aiortc.rtcicetransport.RTCIceTransport.__init__": "b11403aba1c3a32b",
    "aiortc.rtcrtpsender.RTCRtpSender.__init__": "beb1bc0ae04db20d",
    "aiortc.rtcrtpsender.RTCRtpSender._run_rtp": "ff597a1d554cb373",
    "aiortc.rtcrtpsender.RTCRtpSender._run_rtcp": "51e0a924eac4e39b",
    "aiortc.rtcrtpsender.RTCRtpSender._next_encoded_frame": "89dd9fa4fb33741c",
    "aiortc.rtp.HeaderExtensionsMap.configure": "e7bc27f7de53a334",
    "aioice.ice.Connection.gather_candidates": "d33db28d4d1e49ff",
    "aioice.ice.Connection.data_received": "5631b17fab717d6b",
    "aioice.ice.Connection.sendto": "bf162ec03bdce2cc",
    "aioice.ice.StunProtocol.send_data": "8bfbce074a897482",
    "aiortc.rtp.RtpPacket.serialize": "3231bbe4ef6ca07f",
    "aiortc.clock.current_ntp_time": "b7dedc576383cdca",
    "pylibsrtp.Session.__init__": "2d5acb2032893aeb",
    "pylibsrtp.Session.__process": "924e126dae5c15b8",
}

# Private attributes of RTCRtpReceiver the decoder-less start-up writes (name-mangled).
_RECEIVER_PRIVATE_ATTRS = (
    "_RTCRtpReceiver__started",
    "_RTCRtpReceiver__codecs",
    "_RTCRtpReceiver__rtx_ssrc",
    "_RTCRtpReceiver__transport",
    "_RTCRtpReceiver__rtcp_task",
    "_RTCRtpReceiver__rtcp_started",
    "_RTCRtpReceiver__rtcp_exited",
    "_RTCRtpReceiver__decoder_thread",
)
# Private RTCRtpSender counters its RTCP sender reports (and getStats) read.
_SENDER_SR_COUNTERS = (
    "_RTCRtpSender__ntp_timestamp",
    "_RTCRtpSender__rtp_timestamp",
    "_RTCRtpSender__octet_count",
    "_RTCRtpSender__packet_count",
)

RtpTap = Callable[[RtpPacket], None]
RawRtpTap = Callable[[bytes], None]

_TAP_ATTR = "_voxload_tap"
_PASSTHROUGH_ATTR = "_voxload_passthrough"
_RAW_TAP_ATTR = "_voxload_raw_tap"
_FAST_PATH_ATTR = "_voxload_fast_path"  # on an RTCDtlsTransport: may its RTP bypass aioice's queue?
_RTP_SINK_ATTR = "_voxload_rtp_sink"  # on an aioice Connection: the raw fast path's entry point


class _Patch(enum.Enum):
    ICE_HOSTS = "ice_hosts"
    STUN_DEMUX = "stun_demux"
    RECEIVER_TAP = "receiver_tap"
    RAW_TAP = "raw_tap"


_ROLE_PATCHES = {
    Role.TAP: (_Patch.ICE_HOSTS, _Patch.STUN_DEMUX, _Patch.RECEIVER_TAP, _Patch.RAW_TAP),
    Role.FORWARD: (_Patch.ICE_HOSTS, _Patch.STUN_DEMUX, _Patch.RECEIVER_TAP),
    Role.DECODE: (_Patch.ICE_HOSTS,),
}
_installed: set[_Patch] = set()
_ice_hosts: tuple[str, ...] = DEFAULT_ICE_HOSTS


def source_fingerprint(func: Callable) -> str:
    return hashlib.sha256(inspect.getsource(func).encode()).hexdigest()[:16]


def check_pinned_internals() -> None:
    """Raise PinnedInternalsError unless the installed aiortc/aioice are the code these patches were written for."""
    if aiortc.__version__ != PINNED_AIORTC_VERSION or aioice.__version__ != PINNED_AIOICE_VERSION:
        raise PinnedInternalsError(
            f"harness.rtc.aiortc_patches needs aiortc=={PINNED_AIORTC_VERSION} and aioice=={PINNED_AIOICE_VERSION}, "
            f"found aiortc {aiortc.__version__}, aioice {aioice.__version__}"
        )
    for name, func in _ORIGINALS.items():
        found = source_fingerprint(func)
        if found != PINNED_SOURCE_SHA256[name]:
            raise PinnedInternalsError(f"{name} changed (source sha256 {found}, patch written for {PINNED_SOURCE_SHA256[name]})")


def ice_configuration() -> RTCConfiguration:
    # media-design 6.1: the default RTCConfiguration() contacts a public STUN server.
    return RTCConfiguration(iceServers=[])


# --- the replacement functions ---

def _restricted_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    return [h for h in _ice_hosts if (":" in h and use_ipv6) or (":" not in h and use_ipv4)]


_original_datagram_received = _ORIGINALS["aioice.ice.StunProtocol.datagram_received"]


def _datagram_received(self, data: bytes, addr) -> None:
    # RFC 7983 section 7: a first byte in 128..191 is RTP/RTCP; STUN starts with 0..3.
    if len(data) > 1 and 127 < data[0] < 192:
        connection = self.receiver
        sink = connection.__dict__.get(_RTP_SINK_ATTR)
        if sink is None:
            connection.data_received(data, self.local_candidate.component)
        # RFC 5761 section 4: payload types 192..208 (second byte) are RTCP. A tap-only receiver has no use
        # for it (sender reports and BYE feed only the jitter buffer, decoder and receiver reports it does
        # not run), so the fast path drops it instead of queueing it for the DTLS task.
        elif not 191 < data[1] < 209:
            sink(data)
        return
    _original_datagram_received(self, data, addr)


_original_handle_rtp_packet = _ORIGINALS["aiortc.rtcrtpreceiver.RTCRtpReceiver._handle_rtp_packet"]


async def _handle_rtp_packet(self: RTCRtpReceiver, packet: RtpPacket, arrival_time_ms: int) -> None:
    tap = self.__dict__.get(_TAP_ATTR)
    if tap is not None:
        tap(packet)
        if not self.__dict__.get(_PASSTHROUGH_ATTR, False):
            return
    await _original_handle_rtp_packet(self, packet, arrival_time_ms)


_original_handle_rtp_data = _ORIGINALS["aiortc.rtcdtlstransport.RTCDtlsTransport._handle_rtp_data"]


async def _handle_rtp_data(self: RTCDtlsTransport, data: bytes, arrival_time_ms: int) -> None:
    raw_tap = self.__dict__.get(_RAW_TAP_ATTR)
    if raw_tap is None:
        await _original_handle_rtp_data(self, data, arrival_time_ms)
        return
    raw_tap(data)
    connection = self.transport._connection
    if self.__dict__[_FAST_PATH_ATTR] and _RTP_SINK_ATTR not in connection.__dict__ and connection._queue.empty():
        # Every datagram received so far has been handled in order: from now on RTP skips the queue.
        setattr(connection, _RTP_SINK_ATTR, _rtp_sink(self._rx_srtp, raw_tap))
        # The event loop looks datagram_received up on the protocol object for every datagram: an instance
        # attribute that demultiplexes, unprotects and taps in one call saves a Python layer per packet.
        for protocol in connection._protocols:
            protocol.datagram_received = _fast_datagram_received(protocol, self._rx_srtp, raw_tap)


def _rtp_sink(rx_srtp: pylibsrtp.Session, raw_tap: RawRtpTap) -> Callable[[bytes], None]:
    """The raw fast path: what ``_recv_next`` does for an SRTP datagram, minus queue, task and coroutines.

    ``Session.unprotect`` allocates an ``int *`` and re-checks its argument on every call (half of its cost
    in the engine's profile); this makes the same C call on the session's own buffer with one ``int *``.
    """
    context = rx_srtp._srtp[0]
    work = rx_srtp._cdata
    buffer = rx_srtp._buffer
    capacity = len(buffer)
    length_p = srtp_ffi.new("int *")
    srtp_unprotect = srtp_lib.srtp_unprotect

    def sink(data: bytes) -> None:
        length = len(data)
        if length > capacity:
            return
        buffer[0:length] = data
        length_p[0] = length
        if srtp_unprotect(context, work, length_p):
            return  # as _recv_next: an unauthenticated or replayed packet is dropped (srtp_err_status_ok is 0)
        raw_tap(buffer[0 : length_p[0]])

    return sink


def _fast_datagram_received(protocol, rx_srtp: pylibsrtp.Session, raw_tap: RawRtpTap) -> Callable[[bytes, object], None]:
    """``_datagram_received`` with ``_rtp_sink`` inlined, for one protocol of a fast-path connection."""
    context = rx_srtp._srtp[0]
    work = rx_srtp._cdata
    buffer = rx_srtp._buffer
    capacity = len(buffer)
    length_p = srtp_ffi.new("int *")
    srtp_unprotect = srtp_lib.srtp_unprotect

    def datagram_received(data: bytes, addr) -> None:
        length = len(data)
        if length > 1 and 127 < data[0] < 192:
            # As _datagram_received: RTCP (RFC 5761 section 4) is dropped, RTP unprotected and tapped.
            if 191 < data[1] < 209 or length > capacity:
                return
            buffer[0:length] = data
            length_p[0] = length
            if srtp_unprotect(context, work, length_p):
                return
            raw_tap(buffer[0 : length_p[0]])
            return
        _original_datagram_received(protocol, data, addr)

    return datagram_received


_original_receive = _ORIGINALS["aiortc.rtcrtpreceiver.RTCRtpReceiver.receive"]


async def _receive(self: RTCRtpReceiver, parameters) -> None:
    if self.__dict__.get(_TAP_ATTR) is None or self.__dict__.get(_PASSTHROUGH_ATTR, False):
        await _original_receive(self, parameters)
        return
    # Stock receive() minus the decoder thread (a tap-only receiver never decodes) and minus the RTCP task:
    # its packets never reach the stock _handle_rtp_packet, so it has no remote streams to report on and
    # _run_rtcp would wake about once a second to send nothing. stop() waits for that task's start and exit
    # events and cancels it: it gets both events set and a finished future.
    if not self._RTCRtpReceiver__started:
        for codec in parameters.codecs:
            self._RTCRtpReceiver__codecs[codec.payloadType] = codec
        for encoding in parameters.encodings:
            if encoding.rtx:
                self._RTCRtpReceiver__rtx_ssrc[encoding.rtx.ssrc] = encoding.ssrc
        self._RTCRtpReceiver__transport._register_rtp_receiver(self, parameters)
        no_rtcp_task = asyncio.get_running_loop().create_future()
        no_rtcp_task.set_result(None)
        self._RTCRtpReceiver__rtcp_task = no_rtcp_task
        self._RTCRtpReceiver__rtcp_started.set()
        self._RTCRtpReceiver__rtcp_exited.set()
        self._RTCRtpReceiver__started = True


def _apply(patch: _Patch) -> None:
    if patch is _Patch.ICE_HOSTS:
        # aioice.ice.Connection.gather_candidates looks the function up in the module at call time.
        aioice.ice.get_host_addresses = _restricted_host_addresses
    elif patch is _Patch.STUN_DEMUX:
        aioice.ice.StunProtocol.datagram_received = _datagram_received
    elif patch is _Patch.RECEIVER_TAP:
        RTCRtpReceiver._handle_rtp_packet = _handle_rtp_packet
        RTCRtpReceiver.receive = _receive
    elif patch is _Patch.RAW_TAP:
        RTCDtlsTransport._handle_rtp_data = _handle_rtp_data


def install(role: Role, ice_hosts: Sequence[str] = DEFAULT_ICE_HOSTS) -> None:
    """Apply the patches ``role`` needs (idempotent); ``ice_hosts`` become the only ICE host candidates offered.

    Raises PinnedInternalsError before patching anything if aiortc/aioice are not the pinned code.
    """
    global _ice_hosts
    if not ice_hosts:
        raise ValueError("at least one ICE host address is needed")
    missing = [p for p in _ROLE_PATCHES[role] if p not in _installed]
    if missing:
        check_pinned_internals()
    _ice_hosts = tuple(ice_hosts)
    for patch in missing:
        _apply(patch)
        _installed.add(patch)
    if missing:
        logger.debug("aiortc patches for role %s installed (%s); ICE host candidates: %s",
                     role.value, ", ".join(p.value for p in missing), ", ".join(_ice_hosts))


def installed_roles() -> set[Role]:
    return {role for role, patches in _ROLE_PATCHES.items() if all(p in _installed for p in patches)}


def _require(patch: _Patch) -> None:
    if patch not in _installed:
        raise PinnedInternalsError(f"harness.rtc.aiortc_patches.install() was not called for a role with {patch.value}")


# --- receive side: taps ---

def attach_tap(receiver: RTCRtpReceiver, tap: RtpTap, *, passthrough: bool) -> None:
    """``tap`` sees each parsed packet of ``receiver``; with ``passthrough`` the stock jitter buffer and decoder
    run after it, without it nothing else does (and ``receive()`` starts no decoder thread, so call this before
    the remote description is applied)."""
    _require(_Patch.RECEIVER_TAP)
    setattr(receiver, _TAP_ATTR, tap)
    setattr(receiver, _PASSTHROUGH_ATTR, passthrough)


def attach_raw_tap(receiver: RTCRtpReceiver, tap: RawRtpTap, *, fast_path: bool = True) -> None:
    """Tap-only: every decrypted RTP datagram of the receiver's transport goes to ``tap`` and nowhere else.

    Must be called before the remote description is applied (that is when ``receive()`` starts the receiver,
    which then starts no decoder thread). Only for a transport that carries this one receiver (a WHEP
    listener's bundled peer connection). ``fast_path=False`` keeps every packet on aioice's queue and the
    DTLS task (benchmarks measure what the fast path saves).
    """
    _require(_Patch.RAW_TAP)
    attach_tap(receiver, lambda packet: None, passthrough=False)
    setattr(receiver.transport, _RAW_TAP_ATTR, tap)
    setattr(receiver.transport, _FAST_PATH_ATTR, fast_path)


def raw_fast_path_active(receiver: RTCRtpReceiver) -> bool:
    """True once RTP datagrams of the receiver's transport bypass aioice's queue (see the module docstring)."""
    return _RTP_SINK_ATTR in receiver.transport.transport._connection.__dict__


def receiver_has_decoder_thread(receiver: RTCRtpReceiver) -> bool:
    return receiver._RTCRtpReceiver__decoder_thread is not None


# --- send side: forwarding (the relay's readers) ---

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
    return sender.transport._state is DtlsState.CONNECTED


def send_rtp_now(sender: RTCRtpSender, data: bytes) -> None:
    """SRTP-protect one serialized RTP packet and send it on the sender's transport, synchronously.

    What ``RTCDtlsTransport._send_rtp`` and aioice's ``Connection.send`` do (protect, then one ``sendto`` to the
    nominated pair), without their four coroutine layers: the relay calls this once per reader and packet.
    Raises ConnectionError if DTLS is not connected or ICE has no nominated pair. Skips the DTLS transport's
    own tx counters (transport-level getStats only; the sender's RTP counters are kept by record_sent_rtp).
    """
    dtls = sender.transport
    if dtls._state is not DtlsState.CONNECTED:
        raise ConnectionError("Cannot send encrypted RTP, not connected")
    pair = dtls.transport._connection._nominated.get(1)
    if pair is None:
        raise ConnectionError("Cannot send data, not connected")
    pair.protocol.transport.sendto(dtls._tx_srtp.protect(data), pair.remote_addr)


_NTP_EPOCH_OFFSET_S = 2_208_988_800  # RFC 5905: seconds from 1900-01-01 (NTP era 0) to 1970-01-01


def ntp_time_now() -> int:
    """64-bit NTP timestamp of the wall clock (as ``aiortc.clock.current_ntp_time``, without datetime objects)."""
    now_ns = time.time_ns() + _NTP_EPOCH_OFFSET_S * 1_000_000_000
    seconds, fraction_ns = divmod(now_ns, 1_000_000_000)
    return (seconds << 32) | ((fraction_ns << 32) // 1_000_000_000)


def record_sent_rtp(sender: RTCRtpSender, rtp_timestamp: int, payload_len: int) -> None:
    """Keep the counters aiortc's RTCP sender reports (and getStats) read in step with relayed packets."""
    sender._RTCRtpSender__ntp_timestamp = ntp_time_now()  # type: ignore[attr-defined]
    sender._RTCRtpSender__rtp_timestamp = rtp_timestamp  # type: ignore[attr-defined]
    sender._RTCRtpSender__octet_count += payload_len  # type: ignore[attr-defined]
    sender._RTCRtpSender__packet_count += 1  # type: ignore[attr-defined]


_RTP_FIXED_HEADER = struct.Struct("!BBHII")  # RFC 3550 5.1


def rtp_packet_builder(
    *, payload_type: int, ssrc: int, mid: str | None, ext_map: HeaderExtensionsMap
) -> Callable[[int, int, int, bytes], bytes]:
    """``build(sequence_number, timestamp, marker, payload)`` -> the bytes ``RtpPacket.serialize`` would give.

    A reader's packets differ only in sequence number, timestamp, marker and payload; the header extension
    block (the MID, RFC 8843) is the same for all of them, so aiortc serializes it once here.
    """
    probe = RtpPacket(payload_type=payload_type, ssrc=ssrc)
    probe.extensions.mid = mid
    template = probe.serialize(ext_map)
    first_byte, extension_block = template[0], template[12:]
    pack = _RTP_FIXED_HEADER.pack

    def build(sequence_number: int, timestamp: int, marker: int, payload: bytes) -> bytes:
        return pack(first_byte, (marker << 7) | payload_type, sequence_number, timestamp, ssrc) + extension_block + payload

    return build
