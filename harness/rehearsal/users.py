"""Locust user classes: what each participant of a conference does. Thin: the clients say how.

The shared run (``environment.conference_run``, see ``harness/rehearsal/run.py``) hands out interpreter seats, the
event's ids and join code, the media bridge and the handover schedule.
"""

from __future__ import annotations

import itertools
import logging
import random
import time

import gevent
from locust import FastHttpUser, HttpUser, between, constant, task
from locust.runners import STATE_CLEANUP, STATE_STOPPED, STATE_STOPPING
from locust.user.users import LOCUST_STATE_STOPPING

from ..clients.admin import AdminClient
from ..clients.booth_api import BoothApi
from ..clients.booth_ws import BoothSocket
from ..clients.captions_ws import CaptionSocket
from ..clients.errors import BoothMismatch, ClientError, SocketClosed, UnexpectedStatus
from ..clients.http import DEFAULT_TIMEOUT_S, PortalHttp
from ..clients.interpreter import InterpreterClient
from ..clients.listener import ListenerClient
from ..contract.listener import AUDIO_DELAY_POLL_S
from ..errors import VoxloadError
from ..waiting import WaitTimeout, poll_until
from .handover import HandoverDuty, HandoverRecord
from ..media import captions_match
from ..rtc.markers import marker_ids
from ..media.errors import MediaError
from ..media.schedule import PublisherSchedule
from ..media.speech import CorpusError, default_corpus

logger = logging.getLogger(__name__)

_ip_counter = itertools.count(1)


def _distinct_ip() -> str:
    # Contract 1.1: X-Forwarded-For from loopback picks the client IP, so each listener has its own.
    n = next(_ip_counter)
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


RUN_READY_TIMEOUT_S = 300.0


class _Conference:
    """What every conference user shares, whichever Locust HTTP client it runs on."""

    @property
    def conference(self):
        return self.environment.conference_run

    def on_start(self) -> None:
        # A worker is "ready" for Locust's master as soon as it connects, so users may spawn while its init still
        # waits for the master's scenario: they wait for the run to exist (or die with the process if refused).
        try:
            poll_until(lambda: getattr(self.environment, "conference_run", None) is not None, RUN_READY_TIMEOUT_S, 0.1,
                       what="the run", sleep_s=gevent.sleep)
        except WaitTimeout:
            pass
        if getattr(self.environment, "conference_run", None) is None or not self.conference.ready.wait(timeout=RUN_READY_TIMEOUT_S):
            raise RuntimeError("the run never became ready (see the log for the setup error)")

    def portal(self, **kwargs) -> PortalHttp:
        return PortalHttp(self.client, report=self.environment.events.request.fire, **kwargs)

    @property
    def leaving(self) -> bool:
        """This user is being stopped (a ramp-down, the end of the load, or its on_stop runs)."""
        runner = self.environment.runner
        return (self._state == LOCUST_STATE_STOPPING or getattr(self, "_left", False)
                or (runner is not None and runner.state in (STATE_CLEANUP, STATE_STOPPING, STATE_STOPPED)))

    def report_socket(self, **kwargs) -> None:
        """Locust's request event for this user's sockets; a socket the server closes while the user leaves is
        the expected end of a session (ramp-down), not a failure."""
        if isinstance(kwargs.get("exception"), SocketClosed) and self.leaving:
            return
        self.environment.events.request.fire(**kwargs)


class ConferenceUser(_Conference, HttpUser):
    abstract = True


class CoordinatorUser(ConferenceUser):
    """Mission Control: one observer socket per booth (no join), Go Live, and the handover schedule."""

    fixed_count = 1
    wait_time = constant(1)

    def on_start(self) -> None:
        self.sockets = {}  # before any wait: a user stopped during on_start still runs on_stop
        super().on_start()
        self.http = self.portal()
        AdminClient(self.http).login(self.conference.admin_password)
        for ref, booth in self.conference.event.booths.items():
            sock = BoothSocket.for_portal(self.http, booth.booth_id, report=self.report_socket)
            sock.connect()
            self.sockets[ref] = sock
            # Contract 5.5: Go Live; it also creates the in-memory booth, which interpreters need to boot (5.2).
            sock.set_broadcast_unlocked(True)
        self.conference.mark_unlocked()
        # Every coordinator announces the schedule; the run keeps one order per (booth, time).
        self.pending = list(self.conference.scenario.handovers.schedule) if self.conference.scenario.handovers else []

    @task
    def run_handover_schedule(self) -> None:
        elapsed_s = time.time() - self.conference.started_epoch_s
        while self.pending and self.pending[0].at_s <= elapsed_s:
            due = self.pending.pop(0)
            self.conference.order_handover(due.booth, due.at_s)

    def on_stop(self) -> None:
        self._left = True
        for sock in self.sockets.values():
            sock.close()


class HandoverFailed(VoxloadError):
    pass


def count_failure(environment, request_type: str, name: str, exception: BaseException) -> None:
    """A failure with no round trip to time: counted in Locust's failures (row and table) with no response-time
    sample, since a made-up 0 ms sample would pull the aggregated row's percentiles down."""
    environment.stats.log_error(request_type, name, exception)


def report_handover(environment, record: HandoverRecord) -> None:
    if record.ok and record.duration_ms is not None:
        environment.events.request.fire(request_type="HANDOVER", name=record.booth, response_time=record.duration_ms,
                                        response_length=0, exception=None, context={})
    else:  # never completed: there is no handover duration to report
        count_failure(environment, "HANDOVER", record.booth, HandoverFailed(record.error))


class InterpreterUser(ConferenceUser):
    """An interpreter's browser (contract 5.2): invite join, booth page, booth socket, publish while active."""

    wait_time = constant(0.1)

    def on_start(self) -> None:
        self.socket = None  # before any wait: a user stopped during on_start still runs on_stop
        self.participant_id = None
        self.publisher = None
        super().on_start()
        self.seat = self.conference.take_seat()
        if self.seat is None:
            return
        ref, index = self.seat
        self.booth = self.conference.event.booths[ref]
        self.http = self.portal()
        try:
            self._join_booth(ref, index)
        except BoothMismatch as exc:
            # A phantom booth measures nothing (issue 11 item 7): the whole run stops, in one line naming both booths.
            self.conference.abort_booth_mismatch(
                f"booth mismatch: interpreter {ref} #{index} was provisioned booth {exc.expected}, the server gave {exc.got}")
            if self.socket is not None:
                self.socket.close()
            self.socket = None  # nothing left to do until the run stops

    def _join_booth(self, ref: str, index: int) -> None:
        interpreter = InterpreterClient(self.http)
        interpreter.join_invite(self.booth.invites[index])
        self.page = interpreter.booth_page(self.booth.booth)
        # Contract 5.2 step 1: the page cannot boot before the booth exists in memory (Mission Control's Go Live).
        self.conference.booths_unlocked.wait(timeout=60)
        self.api = BoothApi(self.http, room_scoped=self.booth.booth.room_scoped)
        self.api.state(self.booth.booth.event_slug, self.booth.language, room_id=self.booth.room_id)
        self.api.interpreter_status(self.page.default_channel)
        self.api.try_fetch_bearer(self.page.booth_token)
        # The booth id is the one the page names (contract 15: never rebuilt); the join names the event, and a joined
        # booth that is not the provisioned one raises BoothMismatch.
        self.socket = BoothSocket.for_portal(self.http, self.page.booth_id, report=self.report_socket,
                                             event_slug=self.booth.booth.event_slug)
        self.socket.connect()
        # Contract 5.5: whoever joins first is active; the others are backups.
        # As the page's JS sends it (contract 5.2 step 6): the page's channel, and its room when it has one.
        self.socket.join(f"Interpreter {ref} #{index}", "interpreter", language=self.booth.language,
                         channel_id=self.page.default_channel, room_id=self.page.room_id)
        self.participant_id = self.socket.participant_id
        self.duty = HandoverDuty(self.socket)

    @task
    def reconcile_publishing(self) -> None:
        """Contract 5.5 attemptRelayStart: publish iff joined, active and broadcast unlocked."""
        if self.socket is None:
            return
        try:
            self._reconcile()
        except SocketClosed:
            if not self.leaving:
                raise
            # Ramp-down: the server closed the booth socket of a user that is stopping; nothing failed.

    def _reconcile(self) -> None:
        state = self.socket.latest_state
        if state is None:
            return
        record = self.duty.step(self.conference.handover_orders.get(self.booth.booth_id), state)
        if record is not None:
            self.conference.record_handover(record)
            report_handover(self.environment, record)
            state = self.socket.latest_state
        should = state is not None and state.active_interpreter_id == self.participant_id and state.broadcast_unlocked
        if should and self.publisher is None:
            self._publish()
        elif not should and self.publisher is not None:
            self._unpublish()

    def _publish(self) -> None:
        started_s = time.perf_counter()
        try:
            self.publisher = self.conference.bridge.publish(self.page.whip_url, self.booth.booth_id, language=self.booth.language)
        except MediaError as exc:
            # The failed attempt took this long (the engine's WHIP exchange): a real time, not 0 ms.
            self.environment.events.request.fire(request_type="WHIP", name="publish", response_time=_ms_since(started_s),
                                                 response_length=0, exception=exc, context={})
            return
        self.conference.add_publisher_schedule(self.booth.booth_id, self.publisher.schedule)
        try:
            self.api.transcription_start(self.booth.booth.event_slug, self.booth.room_id, self.booth.language)
        except UnexpectedStatus as exc:
            if exc.status == 429:  # contract 7.2: the worker cap
                self.conference.samples.write("transcription_start_rejected", 1, booth=self.booth.booth_id)
        self.socket.update_state(mic_active=True, ingest_connected=True)

    def _unpublish(self) -> None:
        handle, self.publisher = self.publisher, None
        try:
            self.conference.bridge.close(handle)
        except MediaError as exc:
            logger.warning("closing publisher %s: %s", handle.handle, exc)
        if self.socket is not None:
            self.socket.update_state(mic_active=False, ingest_connected=False)

    def on_stop(self) -> None:
        self._left = True
        if self.publisher is not None:
            try:
                self._unpublish()
            except SocketClosed:
                pass  # the server closed the booth socket first: the session ends either way (ramp-down)
            except ClientError as exc:
                # The portal may be gone (a fault test, an outage): leaving is best effort, and said in one line.
                logger.warning("interpreter leaving %s: %s: %s", self.booth.booth_id, type(exc).__name__, exc)
        if self.socket is not None:
            self.socket.close()


class ListenerUser(_Conference, FastHttpUser):
    """A listener's browser (contract 6.2): page with code, captions socket, WHEP, audio-delay poll.

    On Locust's FastHttpUser (geventhttpclient): the audience's polls are most of the Locust process's CPU,
    and requests' per-call session/adapter work cost about twice as much per poll (docs/scaling.md).
    """

    wait_time = constant(AUDIO_DELAY_POLL_S)
    network_timeout = DEFAULT_TIMEOUT_S
    connection_timeout = DEFAULT_TIMEOUT_S
    insecure = False  # verify TLS as the requests-based users do (FastHttpUser skips it by default)

    def on_start(self) -> None:
        self.handle = None  # before any wait: a user stopped during on_start still runs on_stop
        self.captions = None
        super().on_start()
        run = self.conference
        index = next(run.listener_index)
        run.listener_users += 1
        spec = run.scenario.event.listener_booth(index)
        self.booth = run.event.booths[spec.ref]
        self.http = self.portal(forwarded_for=_distinct_ip())
        self.listener = ListenerClient(self.http)
        page = self.listener.open_page(run.event.slug, run.event.join_code)
        entry = page.booth(self.booth.room_id, self.booth.language)
        # A listener takes a moment to pick the language (scenario think time) before captions and audio start.
        gevent.sleep(random.uniform(*run.listener_think_s))
        report = self.report_socket
        if run.auth_mode_token:
            if run.minter is None:
                # Contract 6.2/6.3 in auth mode: an anonymous browser gets 403 on the state fetch and the captions
                # socket, so it never starts WHEP. Reproduced, and reported as a blocked listener.
                count_failure(self.environment, "LISTENER", "blocked in auth mode",
                              ListenerBlocked("state and captions need a token in auth mode (contract 6.2)"))
                return
            # Contract 6.5: the embed player path: captions with ?token=<embed JWT>, WHEP at once.
            token = run.minter.listener(run.event.slug, embed=True)
            self.captions = CaptionSocket.for_portal(self.http, self.booth.booth_id, token=token, report=report)
            self.captions.connect()
            self.captions_since_s = time.time()
        else:
            self.captions = CaptionSocket.for_portal(self.http, self.booth.booth_id, report=report)
            self.captions.connect()
            self.captions_since_s = time.time()
            self._wait_for_ingest(BoothApi(self.http))
        started_s = time.perf_counter()
        try:
            # The bridge makes each booth's first listener a probe, then the scenario's probe share.
            self.handle = run.bridge.listen(entry.whep_url, self.booth.booth_id)
        except MediaError as exc:
            self.environment.events.request.fire(request_type="WHEP", name="listen", response_time=_ms_since(started_s),
                                                 response_length=0, exception=exc, context={})

    def _wait_for_ingest(self, api: BoothApi, timeout_s: float = 60.0) -> None:
        """Contract 6.2 step 2: WHEP starts once the booth reports ingest connected (polled, bounded)."""
        def ingest_connected() -> bool:
            try:
                return api.state(self.conference.event.slug, self.booth.language, room_id=self.booth.room_id).ingest_status.value == "connected"
            except ClientError:
                return False  # reported by the client; the browser would keep waiting too

        try:
            poll_until(ingest_connected, timeout_s, 1.0, what=f"ingest connected on {self.booth.booth_id}", sleep_s=gevent.sleep)
        except WaitTimeout:
            pass  # bounded: WHEP is tried anyway after the wait

    @task
    def poll_audio_delay(self) -> None:
        try:
            self.listener.audio_delay_ms(self.conference.event.slug, self.booth.room_id)
        except ClientError:
            pass  # already reported by the client

    def on_stop(self) -> None:
        self._left = True
        if self.handle is not None:
            try:
                self.conference.bridge.close(self.handle)
            except MediaError:
                pass
        if self.captions is not None:
            self._record_captions()
            self.captions.close()

    def _record_captions(self) -> None:
        """Caption delays and error rate of this listener's caption stream (captions_match.py, or timing markers)."""
        captions = self.captions.captions()
        if any(c.status == "final" for c in captions):
            self.conference.captioned_booths.add(self.booth.booth_id)
        schedules = [PublisherSchedule.from_wire(s) for s in self.conference.publisher_schedules.get(self.booth.booth_id, [])]
        if not schedules:
            return
        offset_s = time.time() - time.monotonic()  # caption receipts are monotonic; schedules are wall clock
        received = [captions_match.ReceivedCaption(c.status, c.text, c.received_at_s + offset_s)
                    for c in captions if c.status in (captions_match.PARTIAL, captions_match.FINAL) and c.text]
        recogniser = captions_match.recogniser_of(received)
        booth = self.booth.booth_id
        write = self.conference.samples.write
        if recogniser == captions_match.Recogniser.STAND_IN:
            self._record_marker_delays(received, schedules)
            return
        language = next((s.language for s in schedules if s.language), None)
        if recogniser != captions_match.Recogniser.SPEECH or language is None:
            return  # no caption text, or publishers played the synthetic loop: nothing to compare with
        try:
            transcript = default_corpus().transcript(language)
        except CorpusError as exc:
            logger.warning("captions of %s not matched: %s", booth, exc)
            return
        result = captions_match.match_booth(transcript, schedules, received, language=language,
                                            listen_start_s=self.captions_since_s, listen_end_s=time.time())
        for utterance in result.utterances:
            # Stamped with the caption's arrival, not with this (end-of-session) write.
            if utterance.first_partial_delay_ms is not None:
                write("caption_first_partial_delay_ms", utterance.first_partial_delay_ms,
                      t=utterance.audio_end_s + utterance.first_partial_delay_ms / 1000, booth=booth, recogniser=recogniser)
            if utterance.final_delay_ms is not None:
                write("caption_delay_ms", utterance.final_delay_ms,
                      t=utterance.audio_end_s + utterance.final_delay_ms / 1000, booth=booth, recogniser=recogniser)
        if result.word_error_rate is not None:
            write("caption_word_error_rate", result.word_error_rate, booth=booth, recogniser=recogniser,
                  utterances=len(result.utterances), carried=result.carried)

    def _record_marker_delays(self, received: list, schedules: list[PublisherSchedule]) -> None:
        """The marker stand-in: each 'marker N' is matched to the send time of marker N (first caption and final)."""
        first_any: dict[int, float] = {}
        first_final: dict[int, float] = {}
        for caption in received:
            for marker in marker_ids(caption.text):
                first_any.setdefault(marker, caption.received_s)
                if caption.status == captions_match.FINAL:
                    first_final.setdefault(marker, caption.received_s)
        for metric, receipts in (("caption_first_partial_delay_ms", first_any), ("caption_delay_ms", first_final)):
            for marker, arrival_s in receipts.items():
                arrival_ns = int(arrival_s * 1e9)
                sends = [t for t in (s.marker_send_time_ns(marker, arrival_ns) for s in schedules) if t is not None]
                if sends:
                    self.conference.samples.write(metric, (arrival_ns - max(sends)) / 1e6, t=arrival_s,
                                                  booth=self.booth.booth_id, recogniser=captions_match.Recogniser.STAND_IN)


class ListenerBlocked(VoxloadError):
    pass


class AdminUser(ConferenceUser):
    """An organiser browsing dashboards and lists during the event (contract 4.5 read load)."""

    fixed_count = 1
    wait_time = between(2, 5)  # replaced by the scenario's think_time_s.admin at init

    def on_start(self) -> None:
        super().on_start()
        self.admin = AdminClient(self.portal())
        self.admin.login(self.conference.admin_password)

    @task(3)
    def dashboard(self) -> None:
        self.admin.dashboard()

    @task(2)
    def event_pages(self) -> None:
        event = self.conference.event
        self.admin.event_page(event.event_id)
        self.admin.rooms_page(event.event_id)

    @task(1)
    def booth_pages(self) -> None:
        booth = random.choice(list(self.conference.event.booths.values()))
        self.admin.booths_page(self.conference.event.event_id, booth.room_id)
        if booth.booth_db_id is not None:
            self.admin.booth_page(self.conference.event.event_id, booth.room_id, booth.booth_db_id)


def _ms_since(started_s: float) -> float:
    return (time.perf_counter() - started_s) * 1000.0
