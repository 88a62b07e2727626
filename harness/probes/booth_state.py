"""Probe ``booth-state``: booth:state fan-out delay against sockets, the slow-reader drill and the portal restart
drill (contract 8, 14.12, 14.16, 14.17).

Fan-out: for each participants-per-booth level, every booth gets that many joined sockets; one chat per
booth is sent and the delay to its arrival at every other socket of the booth is measured (one process,
one monotonic clock). Slow-reader drill (``slow_reader.py``): one socket stops reading while another pushes
large chats; do the others starve, and how long does the frozen participant stay listed and active. Restart drill: interpreters joined and live, broadcast unlocked, a transcription
worker running, a listener IP locked out by the join-code limiter, an unused invite; then the portal is
restarted (built in for the embedded stack, ``--restart-cmd`` for a deployment) and each piece of state is
checked again from outside, along with the sessions dropped and the time until interpreters and
listeners are back. Contract 8.1 says what must be lost (process memory) and what must survive (the DB).
"""

from __future__ import annotations

import argparse
import secrets
import time

import numpy as np

from ..clients.booth_ws import CHAT, BoothSocket, first_receipt_delay_ms
from ..clients.captions_ws import FINAL
from ..clients.errors import AuthRejected, ClientError, NotFound, RateLimited
from ..clients.interpreter import InterpreterClient
from ..clients.listener import ListenerClient
from ..clients.ws_base import SocketState
from ..waiting import WaitTimeout, poll_until
from .actors import Coordinator, Interpreter, caption_listener
from .base import Probe, ProbeContext, ProbeError
from .event import ProbeEvent, provision
from .finding import DataFile, Finding, KneePoint, Limit, Plot, PlotKind, Severity
from .knee import METHOD_NAME, kneedle
from ..scenario.ramp import StepPlan
from .slow_reader import LEGACY_CLOSE_TIMEOUT_S as LEGACY_CLOSE
from .slow_reader import PRESENCE_COLUMNS, TRAFFIC_COLUMNS, SlowReaderDrill, SlowReaderResult

MEMORY = "memory"
DATABASE = "database"
# Contract 10: the join-code limiter answers 429 after 10 failures per IP.
JOIN_CODE_FAILURES_TO_LOCK = 11
PING_INTERVAL_KNOB = "REFSTACK_WS_PING_INTERVAL_S"
PING_TIMEOUT_KNOB = "REFSTACK_WS_PING_TIMEOUT_S"

FANOUT_COLUMNS = {
    "participants_per_booth": "joined sockets per booth (count)",
    "booths": "booths with that many sockets (count)",
    "sockets": "booth sockets open on the portal (count)",
    "delay_p50_ms": "median delay from a chat being sent to its arrival at another socket of the booth (ms)",
    "delay_p95_ms": "95th percentile of that delay (ms)",
    "delay_max_ms": "largest delay (ms)",
    "missing": "sockets that did not receive the chat within the timeout (count)",
}
RESTART_COLUMNS = {
    "item": "piece of state checked before and after the restart",
    "kept_in": "memory (process-local, contract 8.1) or database",
    "before": "what the probe saw before the restart",
    "after": "what the probe saw after the restart",
    "lost": "1 if the restart lost it, else 0",
}
RECOVERY_COLUMNS = {
    "what": "restart milestone",
    "seconds": "seconds after the restart command was given (s)",
    "count": "sockets concerned (count), where it applies",
}


class BoothStateProbe(Probe):
    name = "booth-state"
    help = "booth:state fan-out delay vs participants and booths; slow-reader drill; portal restart drill (what state is lost)"
    default_budget_s = 240.0
    knobs = (PING_INTERVAL_KNOB, PING_TIMEOUT_KNOB)
    # Contract 1.1: uvicorn's defaults in VoxBento, 20 s pings with a 20 s timeout.
    knob_defaults = {PING_INTERVAL_KNOB: 20.0, PING_TIMEOUT_KNOB: 20.0}
    # On the embedded stack the keepalive is shortened so a frozen participant can be reaped (1 + 1 + 10 s) inside
    # the slow-reader drill's window; at VoxBento's 20 s + 20 s it takes ~50 s (contract 8.4).
    embedded_knobs = {PING_INTERVAL_KNOB: "1", PING_TIMEOUT_KNOB: "1"}

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--booths", type=int, default=2, metavar="N", help="booths on the portal (default 2)")
        parser.add_argument("--participants", default="2,4,8", metavar="N,N,...",
                            help="joined sockets per booth, one fan-out step each (default 2,4,8)")
        parser.add_argument("--worker-wait-s", type=float, default=8.0, metavar="SECONDS",
                            help="how long to wait for a transcription worker's caption (default 8; the stand-in speaks every 3 s)")
        parser.add_argument("--no-restart", action="store_true", help="skip the restart drill")
        parser.add_argument("--no-slow-reader", action="store_true", help="skip the slow-reader drill")
        parser.add_argument("--slow-reader-s", type=float, default=20.0, metavar="SECONDS",
                            help="how long the slow-reader drill watches the frozen socket at most (default 20)")
        parser.add_argument("--slow-reader-chats", type=int, default=40, metavar="N",
                            help="chats of 64 KiB random text the sender pushes during the drill (default 40)")

    @classmethod
    def check_arguments(cls, args: argparse.Namespace) -> None:
        args.plan = StepPlan.parse(args.participants, 1.0)
        if args.plan.levels[0] < 2:
            raise ValueError("--participants: fan-out needs at least 2 sockets per booth")
        if not 1 <= args.booths <= 20:
            raise ValueError(f"--booths {args.booths}: must be 1..20")
        if args.slow_reader_s < 3 or not 1 <= args.slow_reader_chats <= 1000:
            raise ValueError("--slow-reader-s must be >= 3 and --slow-reader-chats 1..1000")

    def run(self, ctx: ProbeContext) -> Finding:
        args = ctx.args
        fanout = ctx.csv("fanout.csv", FANOUT_COLUMNS)
        event = provision(ctx.target, self.name, args.booths, invites_per_booth=2, transcription=True)
        restart: _RestartDrill | None = None
        slow: SlowReaderResult | None = None
        try:
            for level in args.plan.levels:
                if ctx.out_of_time():
                    break
                _fanout_step(ctx, event, level, fanout)
            if not args.no_slow_reader:
                slow = self._slow_reader(ctx, event)
            if not args.no_restart:
                restart = _RestartDrill(ctx, event, ctx.csv("restart.csv", RESTART_COLUMNS), ctx.csv("recovery.csv", RECOVERY_COLUMNS))
                restart.run(args.worker_wait_s)
        finally:
            if restart is not None:
                restart.close()
            event.teardown()
        return self._finding(ctx, fanout.rows(), restart, slow)

    def _slow_reader(self, ctx: ProbeContext, event: ProbeEvent) -> SlowReaderResult:
        known = self.configured(ctx.target)
        drill = SlowReaderDrill(ctx, event, ctx.csv("slow_reader.csv", TRAFFIC_COLUMNS), ctx.csv("frozen_presence.csv", PRESENCE_COLUMNS),
                                observe_s=ctx.args.slow_reader_s, chats=ctx.args.slow_reader_chats,
                                ping_interval_s=known.get(PING_INTERVAL_KNOB), ping_timeout_s=known.get(PING_TIMEOUT_KNOB))
        try:
            return drill.run()
        finally:
            drill.close()

    def _finding(self, ctx: ProbeContext, fan: list[dict], restart: _RestartDrill | None, slow: SlowReaderResult | None) -> Finding:
        knee = kneedle([r["sockets"] for r in fan], [r["delay_p95_ms"] if r["delay_p95_ms"] is not None else float("nan") for r in fan])
        parts, evidence = [], []
        if fan:
            worst = max(fan, key=lambda r: r["sockets"])
            parts.append(f"A booth:state/chat message reached the other sockets of its booth within {worst['delay_p95_ms']:.0f} ms "
                         f"(p95) with {worst['participants_per_booth']} participants in each of {worst['booths']} booths.")
            evidence += [f"{r['sockets']} sockets: p95 {r['delay_p95_ms']:.1f} ms, max {r['delay_max_ms']:.1f} ms, missing {r['missing']}"
                         for r in fan]
        if slow is not None:
            paragraph, lines = _slow_reader_text(slow)
            parts.append(paragraph)
            evidence += lines
        lost_memory: list[str] = []
        lost_db: list[str] = []
        if restart is not None:
            lost_memory = [r["item"] for r in restart.items if r["lost"] and r["kept_in"] == MEMORY]
            lost_db = [r["item"] for r in restart.items if r["lost"] and r["kept_in"] == DATABASE]
            kept = [r["item"] for r in restart.items if not r["lost"]]
            evidence += [f"{r['item']} ({r['kept_in']}): {r['before']} -> {r['after']}" for r in restart.items]
            evidence += [f"{item} ({kept_in}): not checked: {why}" for item, kept_in, why in restart.unobserved]
            parts.append(
                f"Restarting the portal dropped {restart.dropped} of {restart.sockets_before} open sockets and lost "
                f"{', '.join(lost_memory) or 'nothing held in memory'}"
                + (f", and also {', '.join(lost_db)} from the database" if lost_db else "")
                + f"; {', '.join(kept) or 'nothing'} survived. "
                f"Interpreter pages could not load their booth (state 404) until an interpreter re-joined "
                f"{restart.interpreters_back_s:.1f} s after the restart began; nothing re-opens broadcasts or restarts captions "
                f"by itself, so a coordinator must press Go Live again and interpreters must re-publish."
                + "".join(f" Not checked: {item}, because {why}." for item, _, why in restart.unobserved)
            )
        limit_value = len(lost_memory) if restart is not None else None
        return Finding(
            probe=self.name,
            title="Booth state: fan-out and what a portal restart loses",
            limit=Limit("pieces of live state lost by a portal restart", limit_value, "items"),
            configured=self.configured(ctx.target),
            method=(f"restart drill: state checked from outside before and after the restart; fan-out: {METHOD_NAME} "
                    f"on p95 chat delay vs open booth sockets"),
            knee=KneePoint(knee.x, knee.y, "sockets", "delay_p95_ms") if knee is not None else None,
            symptom=("after a restart: interpreter pages fail with 'Failed to fetch booth state.' (404), every socket is "
                     "closed, booths are locked, captions stop"),
            trigger="portal restart; GET /api/events/{slug}/booths/{lang}/state -> 404 afterwards",
            evidence=evidence,
            paragraph=" ".join(parts) or "No step ran within the time budget.",
            severity=Severity.CRITICAL if lost_memory or (slow is not None and slow.starving_sockets) else Severity.INFO,
            recommendation=("Do not restart the portal during an event; if it happens, have the coordinator re-open every "
                            "booth (Go Live) and interpreters reload and re-publish; VoxBento keeps this state in process memory only."),
            data=[
                DataFile("fanout.csv", "chat delivery delay to every other socket of a booth, per participants level", FANOUT_COLUMNS,
                         Plot(x="sockets", y=("delay_p50_ms", "delay_p95_ms", "delay_max_ms"), series=None, kind=PlotKind.LINE)),
                *([DataFile("restart.csv", "each piece of state before and after the restart", RESTART_COLUMNS,
                            Plot(x="item", y=("lost",), series="kept_in", kind=PlotKind.BAR)),
                   DataFile("recovery.csv", "restart milestones in seconds after the restart command", RECOVERY_COLUMNS,
                            Plot(x="what", y=("seconds",), series=None, kind=PlotKind.BAR))] if restart is not None else []),
                *([DataFile("slow_reader.csv", "frames each healthy booth socket received per second while one socket did not read",
                            TRAFFIC_COLUMNS, Plot(x="t_s", y=("messages",), series="socket", kind=PlotKind.LINE)),
                   DataFile("frozen_presence.csv", "whether the frozen participant was still listed and active, polled each second",
                            PRESENCE_COLUMNS, Plot(x="t_s", y=("listed", "active"), series=None, kind=PlotKind.LINE))]
                  if slow is not None else []),
            ],
        )


def _fanout_step(ctx: ProbeContext, event: ProbeEvent, per_booth: int, stream) -> None:
    sockets: dict[str, list[BoothSocket]] = {}
    try:
        for booth in event.booths:
            # The admin cookie may join as an interpreter (contract 3.6: super_admin outranks it); no invites needed.
            group = [BoothSocket.for_portal(event.admin.http, booth.booth_id, event_slug=event.slug) for _ in range(per_booth)]
            for i, sock in enumerate(group):
                sock.connect()
                sock.join(f"Fan {i}", "interpreter")
            sockets[booth.booth_id] = group
        delays: list[float] = []
        missing = 0
        for group in sockets.values():
            body = f"fan-out {secrets.token_hex(4)}"
            sender, others = group[0], group[1:]
            start = [o.received_count() for o in others]
            sent = sender.send_message(CHAT, body=body)
            for other, index in zip(others, start):
                try:
                    other.wait_for(lambda m: m.type == CHAT and (m.payload.get("message") or {}).get("body") == body,
                                   waiting_for="the fan-out chat", timeout_s=10.0, after_index=index)
                except ClientError:
                    missing += 1
            for delay in first_receipt_delay_ms(sent, others, lambda m: m.type == CHAT and (m.payload.get("message") or {}).get("body") == body):
                if delay is not None:
                    delays.append(delay)
        arr = np.asarray(delays, dtype=float)
        stream.write(participants_per_booth=per_booth, booths=len(event.booths), sockets=per_booth * len(event.booths),
                     delay_p50_ms=float(np.percentile(arr, 50)) if delays else None,
                     delay_p95_ms=float(np.percentile(arr, 95)) if delays else None,
                     delay_max_ms=float(arr.max()) if delays else None, missing=missing)
    finally:
        for group in sockets.values():
            for sock in group:
                sock.close()


class _RestartDrill:
    def __init__(self, ctx: ProbeContext, event: ProbeEvent, items_csv, recovery_csv) -> None:
        self.ctx = ctx
        self.event = event
        self.items_csv = items_csv
        self.recovery_csv = recovery_csv
        self.items: list[dict] = []
        self.interpreters: list[Interpreter] = []
        self.coordinator: Coordinator | None = None
        self.captions = []
        self.locked_ip = f"198.18.200.{secrets.randbelow(200) + 1}"
        self.dropped = 0
        self.sockets_before = 0
        self.interpreters_back_s = float("nan")
        # Pieces of state the drill could not see before the restart, with why: (item, kept_in, reason).
        self.unobserved: list[tuple[str, str, str]] = []

    def _item(self, item: str, kept_in: str, before: str, after: str, lost: bool) -> None:
        row = {"item": item, "kept_in": kept_in, "before": before, "after": after, "lost": int(lost)}
        self.items.append(row)
        self.items_csv.write(**row)

    def _state_found(self, booth) -> bool:
        try:
            self.event.booth_api().state(self.event.slug, booth.language, room_id=self.event.room_id)
            return True
        except NotFound:
            return False  # contract 5.2: the state route never creates a booth

    def _wrong_code_status(self) -> int:
        listener = ListenerClient(self.ctx.target.http(forwarded_for=self.locked_ip))
        wrong = "ZZZZZZ" if self.event.join_code != "ZZZZZZ" else "YYYYYY"
        try:
            listener.open_page(self.event.slug, wrong)
        except RateLimited:
            return 429
        except AuthRejected:
            return 200  # the join form (contract 6.1)
        finally:
            listener.http.close()
        return 200

    def _worker_caption(self, booth, wait_s: float, sock=None) -> bool:
        sock = sock or caption_listener(self.ctx.target, booth.booth_id, self.event.admin.http)
        self.captions.append(sock)
        try:
            return poll_until(lambda: any(not (c.status == FINAL and c.segment_id is None and not c.text) for c in sock.captions()),
                              wait_s, 0.2, what=f"a worker caption on {booth.booth_id}")
        except WaitTimeout:
            return False

    def run(self, worker_wait_s: float) -> None:
        ev = self.event
        transcribed = ev.booths[0]
        # --- before ---
        self.coordinator = Coordinator(ev.admin.http, ev.booths)
        for booth in ev.booths:
            interpreter = Interpreter(self.ctx.target, booth, booth.invites[0], f"Drill {booth.language}")
            interpreter.connect_and_join()
            self.interpreters.append(interpreter)
            self.coordinator.unlock(booth.booth_id)
        caption_sock = caption_listener(self.ctx.target, transcribed.booth_id, ev.admin.http)
        started = self.interpreters[0].api.transcription_start(ev.slug, ev.room_id, transcribed.language)
        if started.get("status") != "started":
            raise ProbeError(f"restart drill: transcription start on {transcribed.booth_id} answered {dict(started)} "
                             f"(contract 7.1: 'started' expected)")
        worker_before = self._worker_caption(transcribed, worker_wait_s, caption_sock)
        if not worker_before:
            # A worker that never captions cannot show a loss: the real VoxBento offline loads its local model from the
            # Hugging Face hub at the first chunk and reads audio over MediaMTX RTSP (contract 7.1, 7.3); either missing
            # means no caption ever, restart or not. Stated in the finding instead of failing or passing the item.
            self.unobserved.append(("transcription worker", MEMORY,
                                    f"the worker started ({started.get('provider')}) but sent no caption within {worker_wait_s:g} s "
                                    f"before the restart, so its loss cannot be seen from outside (offline model download or "
                                    f"no RTSP audio on the media server)"))
        for _ in range(JOIN_CODE_FAILURES_TO_LOCK):
            limiter_before = self._wrong_code_status()
        registry_before = all(self._state_found(b) for b in ev.booths)
        unlocked_before = all(s.latest_state is not None and s.latest_state.broadcast_unlocked for s in self.coordinator.sockets.values())
        open_sockets = [i.socket for i in self.interpreters] + list(self.coordinator.sockets.values()) + [caption_sock]
        self.sockets_before = len(open_sockets)
        if not (registry_before and limiter_before == 429 and unlocked_before):
            raise ProbeError(f"restart drill could not set up its state (registry {registry_before}, worker {worker_before}, "
                             f"limiter {limiter_before}, unlocked {unlocked_before})")
        # --- restart ---
        t0 = time.monotonic()
        down_s = self.ctx.target.restart_portal()
        self.recovery_csv.write(what="portal healthy again", seconds=down_s, count=None)
        try:
            poll_until(lambda: not any(s.state is SocketState.OPEN for s in open_sockets), 10.0, 0.1,
                       what="every socket dropped by the portal restart")
        except WaitTimeout:
            pass  # counted below: the sockets still open were not dropped
        self.dropped = sum(s.state is not SocketState.OPEN for s in open_sockets)
        self.recovery_csv.write(what="sockets dropped", seconds=time.monotonic() - t0, count=self.dropped)
        # --- after: memory ---
        registry_after = any(self._state_found(b) for b in ev.booths)
        self._item("booth registry (state route)", MEMORY, "200 for every booth", "200" if registry_after else "404 for every booth",
                   not registry_after)
        limiter_after = self._wrong_code_status()
        self._item("join-code limiter counter", MEMORY, f"IP locked out ({limiter_before})", f"next wrong code answered {limiter_after}",
                   limiter_after != 429)
        # Interpreters come back the only way a browser can: reload (new socket, new participant) and join again.
        for interpreter in self.interpreters:
            interpreter.connect_and_join()
        self.interpreters_back_s = time.monotonic() - t0
        self.recovery_csv.write(what="interpreters re-joined", seconds=self.interpreters_back_s, count=len(self.interpreters))
        state = self.interpreters[0].socket.latest_state
        unlocked_after = bool(state and state.broadcast_unlocked)
        self._item("broadcast_unlocked", MEMORY, "true", str(unlocked_after).lower(), not unlocked_after)
        # --- after: database ---
        listener = ListenerClient(self.ctx.target.http())
        try:
            page = listener.open_page(ev.slug, ev.join_code)
            booths_listed = len(page.booths)
        except ClientError:
            booths_listed = 0
        finally:
            listener.http.close()
        self.recovery_csv.write(what="listener page back", seconds=time.monotonic() - t0, count=1)
        self._item("event, rooms and booths", DATABASE, f"{len(ev.booths)} booths", f"{booths_listed} booths listed",
                   booths_listed != len(ev.booths))
        invite_ok = True
        http = self.ctx.target.http()
        try:
            InterpreterClient(http).join_invite(ev.booths[-1].invites[1])
        except ClientError:
            invite_ok = False
        finally:
            http.close()
        self._item("unused invite token", DATABASE, "unused", "accepted" if invite_ok else "refused", not invite_ok)
        if not worker_before:
            return
        worker_after = self._worker_caption(transcribed, worker_wait_s)
        self._item("transcription worker", MEMORY, "captions flowing", "captions flowing" if worker_after else "no captions",
                   not worker_after)

    def close(self) -> None:
        for closer in (*self.interpreters, *self.captions, *([self.coordinator] if self.coordinator else [])):
            try:
                closer.close()
            except ClientError:
                pass


def _slow_reader_text(r: SlowReaderResult) -> tuple[str, list[str]]:
    """One paragraph sentence group and the evidence lines of the slow-reader drill."""
    others = [n for n in r.chats_received if n != "sender"]
    starving = [n for n in r.starving_sockets if n != "sender"]
    got = ", ".join(f"{n} {r.chats_received[n]}" for n in others)
    if starving:
        flow = (f"the other sockets starved: they received {got} of the {r.chats_sent} chats pushed, then nothing for up to "
                f"{max(r.starved[n] for n in starving):.0f} s")
    else:
        flow = f"the other sockets kept receiving ({got} of {r.chats_sent} chats)"
    keepalive = (f" (ping interval + timeout + {LEGACY_CLOSE:g} s close timeout = {r.expected_reap_s:.0f} s)" if r.expected_reap_s else "")
    if r.reaped:
        presence = (f"The frozen participant stayed listed for {r.listed_until_s:.0f} s and active for {r.active_until_s or 0:.0f} s, "
                    f"then the keepalive reaped it{keepalive}.")
    else:
        presence = (f"The frozen participant was still listed{' and active' if r.active_until_s and r.active_until_s >= r.observed_s - 1.5 else ''} "
                    f"after {r.observed_s:.0f} s: the keepalive did not reap it{keepalive}.")
    late = max((r.chats_after_close[n] for n in others), default=0)
    resumed = (f" Once the frozen connection was dropped the observers received again after {r.resumed_after_close_s:.1f} s"
               f" (up to {late} held-back chats each)." if r.resumed_after_close_s is not None else "")
    paragraph = f"With one booth socket not reading while another pushed large random chats, {flow}. {presence}{resumed}"
    lines = [f"slow reader: {r.chats_sent}/{r.chats_planned} chats pushed; received while frozen {r.chats_received}, "
             f"after the drop {r.chats_after_close}",
             f"slow reader: longest silence per socket while pushing {{{', '.join(f'{n}: {s:.1f} s' for n, s in r.starved.items())}}}",
             f"slow reader: frozen participant listed until {r.listed_until_s} s, active until {r.active_until_s} s, reaped {r.reaped}, "
             f"expected reap {r.expected_reap_s} s"]
    return paragraph, lines
