"""WHIP publisher: a pre-encoded Opus loop sent on an absolute 20 ms schedule (media-design 2).

``LoopTrack.recv()`` returns ``av.Packet``s (``pts`` and ``time_base`` set), so aiortc's RTCRtpSender only
packs them: no encoding per publisher. Packet ``k`` (loop index ``k mod L``) is due at ``epoch + k * 20 ms``;
the epoch is taken at the first ``recv()`` (aiortc calls it once DTLS is connected). A late wake-up does not
shift the schedule: later packets are still due at their own times. The schedule (schedule.py) is what
listeners in any process use to turn a payload hash into a send time; the lateness of each actual send
against it is measured here and reported, as the publisher side of engine health.
"""

from __future__ import annotations

import asyncio
import time
from fractions import Fraction

import aiohttp
import av
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from ..rtc.audio import OpusLoop
from ..rtc.markers import FRAME_SAMPLES, SAMPLE_RATE
from .schedule import PACKET_PERIOD_NS, PublisherSchedule
from .session import MediaSession, SessionTimeouts

TIME_BASE = Fraction(1, SAMPLE_RATE)


class LoopTrack(MediaStreamTrack):
    kind = "audio"

    def __init__(self, loop: OpusLoop, on_first_packet) -> None:
        super().__init__()
        self._payloads = loop.payloads
        self._loop_length = loop.length
        self._language = loop.language
        self._k = 0
        self._epoch_mono_ns: int | None = None
        self.epoch_wall_ns: int | None = None
        self._on_first_packet = on_first_packet
        self.packets_sent = 0
        self._lateness_ms: list[float] = []

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        if self._epoch_mono_ns is None:
            self._epoch_mono_ns = time.monotonic_ns()
            self.epoch_wall_ns = time.time_ns()
        due_ns = self._epoch_mono_ns + self._k * PACKET_PERIOD_NS
        wait_ns = due_ns - time.monotonic_ns()
        if wait_ns > 0:
            await asyncio.sleep(wait_ns / 1e9)
        self._lateness_ms.append(max(0, time.monotonic_ns() - due_ns) / 1e6)
        packet = av.Packet(self._payloads[self._k % self._loop_length])
        packet.pts = self._k * FRAME_SAMPLES
        packet.time_base = TIME_BASE
        self._k += 1
        self.packets_sent += 1
        if self.packets_sent == 1:
            self._on_first_packet()
        return packet

    def take_lateness_ms(self) -> list[float]:
        samples, self._lateness_ms = self._lateness_ms, []
        return samples


class WhipPublisher(MediaSession):
    kind = "publisher"

    def __init__(self, handle: str, whip_url: str, booth: str, loop: OpusLoop, http: aiohttp.ClientSession, timeouts: SessionTimeouts) -> None:
        super().__init__(handle, whip_url, http, timeouts)
        self.booth = booth
        self.track = LoopTrack(loop, self._first_packet_seen)
        self._loop_length = loop.length
        self._language = loop.language

    def _prepare(self) -> None:
        self.pc.addTransceiver(self.track, direction="sendonly")

    @property
    def schedule(self) -> PublisherSchedule | None:
        if self.track.epoch_wall_ns is None:
            return None
        return PublisherSchedule(publisher_id=self.handle, epoch_ns=self.track.epoch_wall_ns, loop_length=self._loop_length,
                                 language=self._language)

    def _on_close(self) -> None:
        self.track.stop()
