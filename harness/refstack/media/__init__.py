"""MediaMTX-compatible media relay of the embedded reference target (contract section 12).

One process (``python -m harness.refstack.media``) serving WHIP/WHEP on one port, a MediaMTX-like control
API on another and RTSP readers on a third. Modules: ``relay`` (session rules per path), ``sessions`` (aiortc peers and their state
machine), ``forwarding`` (packet fan-out, sequence/timestamp rewriting), ``paths`` (path configuration and
runtime), ``faults`` (delay/loss/stall knobs), ``whip_server`` and ``control_api`` (HTTP), ``rtsp_server``
(RTSP readers, TCP interleaved). Every use of
aiortc/aioice internals is in ``harness.rtc.aiortc_patches`` (role FORWARD), shared with the harness engine;
the relay may import ``harness.media``, never the reverse.
"""
