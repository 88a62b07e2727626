"""Probe ``workers``: the transcription worker cap and its leaked slots (contract 7.1, 7.2, 14.2, 14.3).

Brings transcribed booths live one at a time, as an interpreter's browser does (invite, booth page, booth
socket, Go Live from a coordinator, WHIP publish, then ``transcription/start``), past the cap. Records for
each booth how its start ended (200 or 429 from the API), tries the admin settings form on the first refused
booth (500 and rollback at the cap), counts caption messages per booth (silence where the start was refused),
then drops every interpreter without a stop and counts the slots still taken, and finally runs stop/start
cycles and counts again. Every worker the probe started is stopped at the end.
"""

from __future__ import annotations

import argparse
import math
import time

from ..clients.captions_ws import FINAL, Caption
from ..clients.errors import ClientError, RateLimited, UnexpectedStatus
from ..media.bridge import MediaBridge
from ..media.errors import MediaError
from .actors import Coordinator, Interpreter, caption_listener
from .base import Probe, ProbeContext, ProbeError
from .event import LANGUAGES, ProbeBooth, ProbeEvent, provision
from .finding import DataFile, Finding, Limit, Plot, PlotKind, Severity

# Contract 7.2: VoxBento's MAX_TOTAL_WORKERS.
VOXBENTO_CAP = 10
STARTED = "started"
REFUSED_429 = "refused_429"
FORM_500 = "form_500"
FORM_ACCEPTED = "form_accepted"

ATTEMPT_COLUMNS = {
    "t_s": "seconds since the probe started",
    "booth_index": "1-based order in which the booth went live",
    "booth_id": "string booth id (contract 2)",
    "route": "api = POST .../transcription/start, admin_form = POST .../transcription-settings",
    "status": "HTTP status the route answered",
    "outcome": "started | refused_429 | form_500 | form_accepted",
    "workers_started": "workers the probe has successfully started so far (count)",
}
CAPTION_COLUMNS = {
    "booth_index": "1-based order in which the booth went live",
    "booth_id": "string booth id",
    "worker_started": "1 if the start route answered 200, else 0",
    "caption_messages": "worker caption messages (partial/final/clear) on /ws/captions while every booth was live (count)",
    "finals": "final captions among them (count)",
    "observed_s": "length of the observation window (s)",
}
SLOT_COLUMNS = {
    "phase": "after_drop = interpreters closed their sockets without a stop; after_cycles = after stop/start cycles",
    "slots_expected_free": "slots that should be free if nothing leaked (count)",
    "slots_found_free": "new booths that could start a worker (count)",
    "leaked_slots": "slots_expected_free - slots_found_free (count)",
}


class WorkersProbe(Probe):
    name = "workers"
    help = "transcription worker cap: which start fails and how, captions per booth, leaked slots"
    knobs = ("REFSTACK_MAX_TOTAL_WORKERS",)
    knob_defaults = {"REFSTACK_MAX_TOTAL_WORKERS": VOXBENTO_CAP}
    default_budget_s = 240.0

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--booths", type=int, default=14, metavar="N",
                            help=f"transcribed booths brought live one by one (default 14, at most {len(LANGUAGES)})")
        parser.add_argument("--observe-s", type=float, default=8.0, metavar="SECONDS",
                            help="how long caption sockets are watched once every booth is live (default 8)")
        parser.add_argument("--cycles", type=int, default=3, metavar="N", help="stop/start cycles in the leak check (default 3)")
        parser.add_argument("--no-audio", action="store_true",
                            help="do not publish audio (faster; captions then show only what workers do without a publisher)")

    @classmethod
    def check_arguments(cls, args: argparse.Namespace) -> None:
        if not 2 <= args.booths <= len(LANGUAGES):
            raise ValueError(f"--booths {args.booths}: must be 2..{len(LANGUAGES)}")
        if not 0 <= args.observe_s < math.inf or args.cycles < 0:  # the chained comparison also refuses nan
            raise ValueError("--observe-s must be a finite number >= 0 and --cycles >= 0")

    def run(self, ctx: ProbeContext) -> Finding:
        args = ctx.args
        attempts = ctx.csv("attempts.csv", ATTEMPT_COLUMNS)
        captions_csv = ctx.csv("captions.csv", CAPTION_COLUMNS)
        slots_csv = ctx.csv("slots.csv", SLOT_COLUMNS)
        event = provision(ctx.target, self.name, args.booths, invites_per_booth=1, transcription=True)
        bridge = None if args.no_audio else MediaBridge(ctx.probe_dir / "media", engines=1).start()
        run = _Run(ctx, event, bridge, attempts)
        try:
            run.bring_live_one_by_one()
            form = run.admin_form_on_first_refused()
            time.sleep(min(args.observe_s, max(0.0, ctx.remaining_s())))
            run.record_captions(captions_csv, args.observe_s)
            after_drop = run.drop_interpreters_and_count(slots_csv)
            after_cycles = run.cycles_and_count(slots_csv, args.cycles)
        finally:
            run.close()
            event.teardown()
        return run.finding(self, form, after_drop, after_cycles, args.booths)


class _Run:
    def __init__(self, ctx: ProbeContext, event: ProbeEvent, bridge: MediaBridge | None, attempts) -> None:
        self.ctx = ctx
        self.event = event
        self.bridge = bridge
        self.attempts = attempts
        self.interpreters: list[Interpreter] = []
        self.captions = {}
        self.coordinator = Coordinator(event.admin.http, event.booths)
        self.started: list[ProbeBooth] = []
        self.refused: list[ProbeBooth] = []
        self.first_refusal_detail = ""
        self.publish_errors: list[str] = []

    def _t(self) -> float:
        return self.ctx.elapsed_s()

    def _start(self, booth: ProbeBooth, index: int, api) -> bool:
        try:
            api.transcription_start(self.event.slug, self.event.room_id, booth.language)
        except RateLimited as exc:
            # Contract 7.2: the API maps the cap to 429.
            self.attempts.write(t_s=self._t(), booth_index=index, booth_id=booth.booth_id, route="api", status=429,
                                outcome=REFUSED_429, workers_started=len(self.started))
            if not self.first_refusal_detail:
                self.first_refusal_detail = exc.detail
            return False
        self.attempts.write(t_s=self._t(), booth_index=index, booth_id=booth.booth_id, route="api", status=200,
                            outcome=STARTED, workers_started=len(self.started) + 1)
        return True

    def bring_live_one_by_one(self) -> None:
        for index, booth in enumerate(self.event.booths, start=1):
            if self.ctx.out_of_time():
                raise ProbeError(f"time budget of {self.ctx.budget_s:.0f} s spent after {index - 1} booths")
            self.captions[booth.booth_id] = caption_listener(self.ctx.target, booth.booth_id, self.event.admin.http)
            interpreter = Interpreter(self.ctx.target, booth, booth.invites[0], f"Probe {booth.language}")
            self.interpreters.append(interpreter)
            socket = interpreter.connect_and_join()
            # Contract 5.5: Go Live is the coordinator's unlock; the active interpreter then publishes.
            self.coordinator.unlock(booth.booth_id)
            if self.bridge is not None:
                try:
                    self.bridge.publish(interpreter.page.whip_url, booth.booth_id)
                except MediaError as exc:
                    self.publish_errors.append(f"{booth.booth_id}: {exc}")
            if self._start(booth, index, interpreter.api):
                self.started.append(booth)
            else:
                self.refused.append(booth)
            # Contract 5.5: the JS marks ingest connected right after the WHIP answer, whatever the start said.
            socket.update_state(mic_active=True, ingest_connected=True)

    def admin_form_on_first_refused(self) -> int | None:
        """Contract 4.3 / 7.2: the settings form on a booth with an active interpreter, at the cap -> 500."""
        if not self.refused:
            return None
        booth = self.refused[0]
        index = self.event.booths.index(booth) + 1
        try:
            self.event.admin.set_transcription(self.event.event_id, self.event.room_id, booth.db_id, enabled=True, model="base")
        except UnexpectedStatus as exc:
            self.attempts.write(t_s=self._t(), booth_index=index, booth_id=booth.booth_id, route="admin_form", status=exc.status,
                                outcome=FORM_500 if exc.status == 500 else f"status_{exc.status}", workers_started=len(self.started))
            return exc.status
        self.attempts.write(t_s=self._t(), booth_index=index, booth_id=booth.booth_id, route="admin_form", status=303,
                            outcome=FORM_ACCEPTED, workers_started=len(self.started))
        return 303

    def worker_captions(self, booth: ProbeBooth) -> list[Caption]:
        # Contract 6.3: the admin form pushes an empty final without id/seq; that one is not a worker's caption.
        return [c for c in self.captions[booth.booth_id].captions() if not (c.status == FINAL and c.segment_id is None and not c.text)]

    def record_captions(self, stream, observed_s: float) -> None:
        for index, booth in enumerate(self.event.booths, start=1):
            captions = self.worker_captions(booth)
            stream.write(booth_index=index, booth_id=booth.booth_id, worker_started=int(booth in self.started),
                         caption_messages=len(captions), finals=sum(c.status == FINAL for c in captions), observed_s=observed_s)

    def caption_counts(self) -> tuple[int, int]:
        """(booths with a worker that got captions, refused booths that got captions)."""
        flowing = sum(1 for b in self.started if self.worker_captions(b))
        leaking = sum(1 for b in self.refused if self.worker_captions(b))
        return flowing, leaking

    def _free_slots(self, candidates: list[ProbeBooth], limit: int) -> tuple[int, list[ProbeBooth]]:
        """Start workers on `candidates` until one is refused; the successes are free slots (then started)."""
        found: list[ProbeBooth] = []
        booth_api = self.event.booth_api()
        for booth in candidates[:limit]:
            try:
                booth_api.transcription_start(self.event.slug, self.event.room_id, booth.language)
            except RateLimited:
                break
            found.append(booth)
        return len(found), found

    def drop_interpreters_and_count(self, stream) -> int | None:
        """Contract 7.1 / 14.3: nothing stops a worker when its interpreter disconnects."""
        for interpreter in self.interpreters:
            interpreter.drop()
        if not self.refused:
            return None
        # The refused booths never had a worker; any of them that can start now found a freed slot.
        expected = len(self.started)
        free, newly = self._free_slots(self.refused, expected)
        stream.write(phase="after_drop", slots_expected_free=expected, slots_found_free=free, leaked_slots=expected - free)
        self._stop(newly)
        return expected - free

    def _stop(self, booths: list[ProbeBooth]) -> None:
        api = self.event.booth_api()
        for booth in booths:
            api.transcription_stop(self.event.slug, self.event.room_id, booth.language)

    def cycles_and_count(self, stream, cycles: int) -> int | None:
        """Stop every worker, run stop/start cycles on one booth, stop it, then count the free slots."""
        if not self.started or cycles == 0:
            return None
        self._stop(self.started)
        api = self.event.booth_api()
        cycled = self.event.booths[0]
        for _ in range(cycles):
            api.transcription_start(self.event.slug, self.event.room_id, cycled.language)
            api.transcription_stop(self.event.slug, self.event.room_id, cycled.language)
        expected = len(self.started)
        free, newly = self._free_slots(self.event.booths, expected)
        stream.write(phase="after_cycles", slots_expected_free=expected, slots_found_free=free, leaked_slots=expected - free)
        self._stop(newly)
        return expected - free

    def close(self) -> None:
        for closer in (*self.captions.values(), *self.interpreters, self.coordinator):
            try:
                closer.close()
            except ClientError:
                pass
        if self.bridge is not None:
            self.bridge.stop()

    def finding(self, probe: WorkersProbe, form_status: int | None, after_drop: int | None, after_cycles: int | None,
                booths: int) -> Finding:
        ctx = self.ctx
        configured = probe.configured(ctx.target)
        cap = len(self.started) if self.refused else None
        flowing, leaking = self.caption_counts()
        first = self.refused[0] if self.refused else None
        evidence = [f"{len(self.started)} of {booths} booths got a worker; "
                    f"{len(self.refused)} were refused with 429" + (f" ({self.first_refusal_detail!r})" if self.first_refusal_detail else "")]
        if form_status is not None:
            evidence.append(f"admin transcription-settings form on {first.booth_id} at the cap answered {form_status}")
        evidence.append(f"caption messages arrived on {flowing} of {len(self.started)} booths with a worker "
                        f"and on {leaking} of {len(self.refused)} refused booths")
        if after_drop is not None:
            evidence.append(f"after every interpreter closed its socket without a stop, {after_drop} of {len(self.started)} slots stayed taken")
        if after_cycles is not None:
            evidence.append(f"after stop plus {ctx.args.cycles} stop/start cycles, {after_cycles} slots were missing")
        evidence.extend(f"WHIP publish failed: {e}" for e in self.publish_errors[:3])
        if cap is None:
            paragraph = (f"All {booths} transcribed booths got a transcription worker, so the cap was not reached; "
                         f"rerun with more booths than the expected cap.")
            severity = Severity.INFO
        else:
            knob_note = ""
            if "REFSTACK_MAX_TOTAL_WORKERS" in configured:
                knob_note = f" (configured: {configured['REFSTACK_MAX_TOTAL_WORKERS']})"
            paragraph = (
                f"This portal runs at most {cap} transcription workers at once{knob_note}. Booth {cap + 1} ({first.booth_id}) "
                f"was refused: its interpreter's browser got 429 from the start call, which the interpreter page ignores, "
                f"so the interpreter sees nothing wrong while listeners of that booth get no captions"
                + (f"; the admin's transcription settings form on that booth failed with a bare {form_status} and changed nothing"
                   if form_status == 500 else "")
                + ". "
                + (f"When the interpreters closed their tabs without stopping, {after_drop} of {cap} slots stayed taken, "
                   f"so booths going live later stay without captions until someone stops the old workers or locks those booths."
                   if after_drop else "Slots were released when interpreters left.")
            )
            severity = Severity.CRITICAL if cap < booths and (after_drop or 0) > 0 else Severity.WARNING
        return Finding(
            probe=probe.name,
            title="Transcription worker cap",
            limit=Limit("concurrent transcription workers per portal process", cap, "booths"),
            configured=configured,
            method="first start refused: booths brought live one at a time until transcription/start answered 429",
            knee=None,
            symptom="interpreter page: nothing (the 429 is ignored); listeners: no captions for that booth; admin form: 500",
            trigger=(f"POST {self.event.booth_api().transcription_start_path(self.event.slug, self.event.room_id, first.language)} -> 429"
                     if first else "none: every start answered 200"),
            evidence=evidence,
            paragraph=paragraph,
            severity=severity,
            recommendation=("Plan at most the cap of transcribed booths per portal process, stop transcription (or lock the booth) "
                            "whenever an interpreter leaves, and watch for 429 on transcription/start; VoxBento's cap is the "
                            "hard-coded MAX_TOTAL_WORKERS."),
            data=[
                DataFile("attempts.csv", "every start attempt in order, with the route and its answer", ATTEMPT_COLUMNS,
                         Plot(x="booth_index", y=("workers_started",), series="outcome", kind=PlotKind.SCATTER)),
                DataFile("captions.csv", "caption messages per booth while every booth was live", CAPTION_COLUMNS,
                         Plot(x="booth_index", y=("caption_messages",), series=None, kind=PlotKind.BAR)),
                DataFile("slots.csv", "free slots found after interpreters dropped and after stop/start cycles", SLOT_COLUMNS,
                         Plot(x="phase", y=("slots_found_free", "leaked_slots"), series=None, kind=PlotKind.BAR)),
            ],
        )
