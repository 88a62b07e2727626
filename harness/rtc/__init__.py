"""The WebRTC layer shared by the media engine (``harness.media``) and the reference relay (``harness.refstack``).

- ``aiortc_patches``: every use of aiortc/aioice/pylibsrtp internals (roles TAP/FORWARD/DECODE; source fingerprints
  checked); ``pins``: their pinned versions, checkable without importing them.
- ``audio``: the speech-like synthetic signal with timing markers, pre-encoded once to an Opus loop.
- ``markers``: the timing-marker scheme (tone pairs, 240 ids), the streaming ``MarkerDetector``, and the marker
  stand-in captioner's wording.

Imports nothing else of the harness but the exception root, harness.errors (tests/test_architecture.py).
"""
