"""The harness's media plane: WHIP publishers and WHEP listeners hosted in engine processes.

Map (one module per concern; the timing markers, synthetic audio and every aiortc internal it uses are in
``harness.rtc``, shared with the reference relay):

- ``speech``: the committed speech corpus (``corpus/``: espeak-ng sentences per language as Opus packets, and
  their transcript), the per-language loops engines publish and the payload index their listeners share.
- ``captions_match``: captions aligned with the corpus transcript: per-utterance delays, word error rate.
- ``signaling``: WHIP/WHEP HTTP (POST offer -> 201/Location/ETag, DELETE).
- ``session``: one WebRTC session's state machine, setup timing and per-phase error translation.
- ``publisher``: ``WhipPublisher`` and its pre-encoded, absolutely paced ``LoopTrack``.
- ``listener``: ``WhepListener`` (RTP tap / probe / stock) and the ``ProbeAnalyzer`` of decoded audio.
- ``rtpstats``: RFC 3550 loss, jitter, gaps, silences from packets; a 12-byte RTP header parser.
- ``schedule``: publisher send schedules; payload -> send time for listeners in any process.
- ``health``, ``aggregate``, ``samples``: engine saturation, per-second aggregates, sample files.
- ``rpc``, ``engine``: the engine process (``python -m harness.media.engine``) and its JSON-lines protocol.
- ``bridge``: spawns engines and drives them from Locust greenlets or plain threads (no gevent import).
- ``errors``: the typed error tree, one class per failure phase.

Importing this package imports nothing heavy; ``bridge`` imports only the standard library, ``rpc`` and
``errors``, so a Locust process does not load aiortc.
"""
