"""A browser canary process: one headless Chromium playing one participant through the target's own pages.

``python -m harness.browser.canary --run-dir RUN --name l0`` reads JSON lines on stdin; the first is the
configuration (it carries the join code or invite, so it never goes on a command line), later ones are
``{"op": "schedule", "schedule": {...}}`` (a publisher's send schedule, for mouth-to-ear) and ``{"op": "stop"}``
(end of stdin means stop too). Results stream to ``RUN/browser/`` (files.py), one record per second.

Roles:

* ``listener`` (the canary listener): opens the listener page, types the join code into the join form like a
  person, picks the room and the booth's language, and lets the page play. Where the page offers no such
  language within ``select_timeout_s`` (the reference portal's listener page has no player code), it reads the
  booth's WHEP URL from the page's ``listener-data`` and plays it with player.js, and says so (``player``).
  Without ``listener_url`` it plays ``whep_url`` directly on a blank page of the media server's origin.
* ``interpreter``: see ``InterpreterFlow``.

Playwright's sync API runs here, in a plain process that never imports locust or gevent (its greenlet-based
driver must not meet gevent's monkey-patching).
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import json
import logging
import os
import queue
import re
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import psutil

from ..errors import VoxloadError
from ..media.schedule import BoothSchedules, PublisherSchedule
from . import chromium
from ..results.browser_files import JsonLines, canary_file
from .pageaudio import EarMarkers, InboundDeltas
from .pagelog import PageLog, loggable_url

logger = logging.getLogger("voxload.canary")

HERE = Path(__file__).resolve().parent
PAGE_PROBE_JS = (HERE / "page_probe.js").read_text(encoding="utf-8")
PLAYER_JS = (HERE / "player.js").read_text(encoding="utf-8")
TICK_S = 1.0
BLANK_PATH = "/__voxload_canary__"  # answered by the canary itself (page.route), never sent to the server


class CanaryState(enum.Enum):
    STARTING = "starting"
    LOADING = "loading"  # the listener or booth page
    JOINING = "joining"  # join code / invite
    SELECTING = "selecting"  # room and language
    WAITING_AUDIO = "waiting_audio"
    PLAYING = "playing"
    PUBLISHING = "publishing"
    STOPPED = "stopped"
    FAILED = "failed"


@dataclasses.dataclass(frozen=True)
class CanaryConfig:
    role: str  # listener | interpreter
    booth_id: str = ""
    whep_url: str | None = None
    listener_url: str | None = None  # {host}/listener/{slug}
    join_code: str | None = None
    room_name: str | None = None
    language: str | None = None
    invite_url: str | None = None  # interpreter
    audio_wav: str | None = None  # interpreter: the fake microphone's file
    go_live_label: str = "Go live"  # clicked when the booth page has such a button
    handover_selector: str = "#handover-btn"  # VoxBento's booth page: the mic handover button
    handover_at_epoch_s: float | None = None
    allow_hosts: tuple[str, ...] = ()  # host:port pairs the page may reach; anything else is blocked
    user_data_dir: str | None = None  # a fresh, empty Chromium profile; made here when not given
    select_timeout_s: float = 10.0
    load_timeout_s: float = 30.0

    @classmethod
    def from_wire(cls, data: dict) -> CanaryConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known - {"op"}
        if unknown:
            raise ValueError(f"unknown canary config keys: {', '.join(sorted(unknown))}")
        values = {k: v for k, v in data.items() if k in known}
        if "allow_hosts" in values:
            values["allow_hosts"] = tuple(values["allow_hosts"])
        return cls(**values)


def _netloc(url: str) -> str:
    return urlsplit(url).netloc


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class ProcessTreeMeter:
    """CPU (% of one core) and resident memory of this process and everything it started (the Playwright driver
    and every Chromium process), per interval. RSS counts shared pages once per process: an upper bound."""

    def __init__(self) -> None:
        self._me = psutil.Process()
        self._cpu: dict[int, float] = {}
        self._last_s = time.monotonic()

    def take(self) -> dict:
        now = time.monotonic()
        procs = [self._me] + self._me.children(recursive=True)
        busy_s, rss = 0.0, 0
        seen = {}
        for p in procs:
            try:
                t = p.cpu_times()
                cpu = t.user + t.system
                rss += p.memory_info().rss
            except psutil.Error:
                continue
            seen[p.pid] = cpu
            busy_s += cpu - self._cpu.get(p.pid, 0.0)  # a process new in this interval counts from its start
        elapsed = max(1e-6, now - self._last_s)
        first = not self._cpu
        self._cpu, self._last_s = seen, now
        return {"cpu_pct": None if first else round(100.0 * busy_s / elapsed, 1),
                "rss_mb": round(rss / 2**20, 1), "processes": len(procs)}


class Canary:
    def __init__(self, config: CanaryConfig, run_dir: Path, name: str, commands: queue.Queue) -> None:
        self.config = config
        self.name = name
        self.commands = commands
        self.seconds = JsonLines(canary_file(run_dir, name, "seconds"))
        self.events = JsonLines(canary_file(run_dir, name, "events"))
        self.page_records = JsonLines(canary_file(run_dir, name, "page"))
        self.pagelog = PageLog(self.page_records.write, name)
        self.schedules = BoothSchedules()
        self.markers = EarMarkers(self.schedules)
        self.inbound = InboundDeltas()
        self.meter = ProcessTreeMeter()
        self.state = CanaryState.STARTING
        self.stop_requested = False
        self.page_start_epoch_s: float | None = None
        self.picked_epoch_s: float | None = None  # language picked (or the canary's player started): audio is due from here
        self.first_audio_reported = False
        self.whep_posts: list[dict] = []
        self.whip_posts: list[dict] = []
        self.player = "page"
        self.handover_done = False
        self.handover_requested = False
        self._sent_last: dict[tuple, int] = {}
        self.packets_sent_total = 0

    # --- state ---
    def _set_state(self, new: CanaryState, detail: str | None = None) -> None:
        if new is self.state:
            return
        logger.info("canary %s: %s -> %s%s", self.name, self.state.value, new.value, f" ({detail})" if detail else "")
        self.events.write({"event": "state", "old": self.state.value, "new": new.value, "detail": detail})
        self.state = new

    def event(self, name: str, **fields) -> None:
        self.events.write({"event": name, **fields})

    # --- commands from the fleet ---
    def poll_commands(self) -> None:
        while True:
            try:
                command = self.commands.get_nowait()
            except queue.Empty:
                return
            if command is None or command.get("op") == "stop":
                self.stop_requested = True
            elif command.get("op") == "schedule":
                self.schedules.add(PublisherSchedule.from_wire(command["schedule"]))
            elif command.get("op") == "handover":
                self.handover_requested = True  # the interpreter canary clicks the page's handover control

    def wait(self, seconds: float, page=None) -> None:
        """Sleep in small steps, answering commands; Playwright events are delivered while the page waits."""
        end = time.monotonic() + seconds
        while not self.stop_requested and time.monotonic() < end:
            self.poll_commands()
            step = min(0.2, max(0.0, end - time.monotonic()))
            if page is not None:
                page.wait_for_timeout(step * 1000)
            else:
                time.sleep(step)

    # --- browser ---
    def run(self) -> int:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright

        self.event("start", role=self.config.role, booth=self.config.booth_id, pid=os.getpid())
        user_data_dir = self.config.user_data_dir or tempfile.mkdtemp(prefix=f"voxload-canary-{self.name}-")
        secure = sorted({_origin(u) for u in (self.config.listener_url, self.config.invite_url, self.config.whep_url) if u
                         and urlsplit(u).hostname not in ("127.0.0.1", "localhost", "::1")})
        try:
            with sync_playwright() as pw:
                context = pw.chromium.launch_persistent_context(
                    user_data_dir, executable_path=chromium.chromium_path(), headless=True,
                    args=chromium.launch_flags(fake_audio_wav=self.config.audio_wav, secure_origins=secure),
                    permissions=["microphone"] if self.config.role == "interpreter" else [],
                )
                try:
                    page = context.pages[0] if context.pages else context.new_page()
                    self._prepare(context, page)
                    if self.config.role == "listener":
                        self._listen(page)
                    else:
                        InterpreterFlow(self).run(page)
                finally:
                    try:
                        context.close()
                    except PlaywrightError:
                        pass
        except (PlaywrightError, CanaryError) as exc:
            line = (str(exc).splitlines() or [type(exc).__name__])[0][:300]
            self.event("error", error=line)
            self._set_state(CanaryState.FAILED, line)
            print(f"canary {self.name}: {line}", file=sys.stderr)
            return 3
        finally:
            shutil.rmtree(user_data_dir, ignore_errors=True)
            self.event("end", whep_posts=len(self.whep_posts), whip_posts=len(self.whip_posts),
                       packets=self.inbound.packets_total, lost=self.inbound.lost_total, markers=self.markers.markers,
                       packets_sent=self.packets_sent_total,
                       problems={k.value: v for k, v in self.pagelog.counts.items()})
            if self.state is not CanaryState.FAILED:
                self._set_state(CanaryState.STOPPED)
            for writer in (self.seconds, self.events, self.page_records):
                writer.close()
        return 0 if self.state is not CanaryState.FAILED else 3

    def _prepare(self, context, page) -> None:
        # The target's host name (any port: its media server usually shares it) and any named extra hosts.
        allowed = set(self.config.allow_hosts) | {urlsplit(u).hostname for u in (self.config.listener_url, self.config.invite_url,
                                                                                 self.config.whep_url) if u}

        def gate(route) -> None:
            url = route.request.url
            if urlsplit(url).path == BLANK_PATH:
                route.fulfill(status=200, content_type="text/html", body="<!doctype html><title>voxload canary</title><body></body>")
            elif url.startswith(("data:", "blob:")) or urlsplit(url).hostname in allowed:
                route.continue_()
            else:
                # No traffic leaves the machine (CDNs, fonts): refused, and recorded as the canary's doing.
                self.pagelog.blocked(loggable_url(url))
                route.abort("blockedbyclient")

        context.route("**/*", gate)
        context.add_init_script(PAGE_PROBE_JS)
        self.pagelog.attach(page)
        page.set_default_timeout(self.config.load_timeout_s * 1000)

    def _listen(self, page) -> None:
        config = self.config
        self.page_start_epoch_s = time.time()
        if config.listener_url is None:
            self.player = "canary"
            self._set_state(CanaryState.LOADING, "blank page of the media server's origin")
            page.goto(_origin(config.whep_url) + BLANK_PATH)
            self._play_with_canary_player(page, config.whep_url, "no listener page given")
        else:
            self._set_state(CanaryState.LOADING, loggable_url(config.listener_url))
            page.goto(config.listener_url)
            self._join(page)
            self._select(page)
        self._set_state(CanaryState.WAITING_AUDIO)
        self._measure_loop(page)

    def _join(self, page) -> None:
        code_input = page.locator("input[name=code]")
        if code_input.count() == 0:
            return  # already in (a cookie from an earlier visit, or an open page)
        self._set_state(CanaryState.JOINING)
        code_input.first.fill(self.config.join_code or "")
        with page.expect_navigation():
            code_input.first.press("Enter")
        if page.locator("input[name=code]").count():
            raise CanaryError(f"the listener page refused the join code ({loggable_url(page.url)})")

    def _select(self, page) -> None:
        config = self.config
        self._set_state(CanaryState.SELECTING, f"{config.room_name} / {config.language}")
        room_select = page.locator("#room-select")
        try:
            room_select.wait_for(state="attached", timeout=config.select_timeout_s * 1000)
        except Exception:
            raise CanaryError(f"the listener page at {loggable_url(page.url)} has no room select (#room-select)") from None
        # force: pages restyle their selects (VoxBento's brutal-select hides the native one behind its own widget,
        # which sets the native value and fires "change"); the native select gets the same events either way.
        room_select.select_option(label=config.room_name, force=True)
        room_id = room_select.input_value()
        language_option = page.locator(f"#language-select option[data-language-code='{config.language}']")
        try:
            language_option.first.wait_for(state="attached", timeout=config.select_timeout_s * 1000)
        except Exception:
            # The page lists no such language: its own player cannot be exercised; play the booth's WHEP URL
            # from the page's data instead, and say so.
            whep_url = self._whep_url_from_page(page, room_id) or config.whep_url
            if not whep_url:
                raise CanaryError(f"the listener page offers no {config.language} source in {config.room_name} "
                                  "and names no WHEP URL for it") from None
            self.player = "canary"
            self._play_with_canary_player(page, whep_url, "the listener page offers no language to pick (no player code)")
            return
        value = language_option.first.get_attribute("value")
        self.picked_epoch_s = time.time()
        page.locator("#language-select").select_option(value=value, force=True)
        self.event("player", player="page", detail="the page's own listener code plays the booth")

    def _whep_url_from_page(self, page, room_id: str) -> str | None:
        data = page.evaluate("() => { const el = document.getElementById('listener-data'); return el ? el.textContent : null; }")
        if not data:
            return None
        try:
            booths = json.loads(data).get("booths", [])
        except (ValueError, AttributeError):
            return None
        for booth in booths:
            if str(booth.get("room_id")) == str(room_id) and booth.get("language_code") == self.config.language:
                return booth.get("whep_url")
        return None

    def _play_with_canary_player(self, page, whep_url: str, reason: str) -> None:
        self.player = "canary"
        self.picked_epoch_s = time.time()
        self.event("player", player="canary", detail=reason)
        from playwright.sync_api import Error as PlaywrightError

        try:
            status = page.evaluate(PLAYER_JS, whep_url)
        except PlaywrightError as exc:
            raise CanaryError(f"WHEP POST to {loggable_url(whep_url)} failed in the page: {str(exc).splitlines()[0][:200]}") from None
        if status not in (200, 201):
            self.event("error", error=f"WHEP POST {loggable_url(whep_url)} answered {status}")

    def _measure_loop(self, page) -> None:
        while not self.stop_requested:
            self.wait(TICK_S, page)
            self.tick(page)

    def tick(self, page) -> dict:
        from playwright.sync_api import Error as PlaywrightError

        try:
            drained = page.evaluate("window.__voxload.drain()")
        except PlaywrightError as exc:
            # The page navigated or reloaded between two ticks (its own code did; the probe is injected again
            # into the new document): this second has no figures, and says why.
            if page.is_closed():
                raise
            self.event("page_reloaded", detail=str(exc).splitlines()[0][:200])
            drained = {"stats": [], "chunks": [], "signalling": []}
        interval = self.inbound.take(drained["stats"])
        latencies = self.markers.push(drained["chunks"])
        for post in drained["signalling"]:
            post["url"] = loggable_url(post.get("url") or "")
            (self.whep_posts if post["kind"] == "whep" else self.whip_posts).append(post)
            self.event(f"{post['kind']}_post", status=post.get("status"), error=post.get("error"), url=post["url"],
                       at_epoch_s=round(post["t_epoch_ms"] / 1000.0, 3), offer_candidates=post.get("offer_candidates"))
        if drained.get("tap_error"):
            self.event("error", error=f"audio tap: {drained['tap_error']}")
        first_audio = drained.get("first_audio_epoch_ms")
        if first_audio is not None and not self.first_audio_reported and self.page_start_epoch_s is not None:
            self.first_audio_reported = True
            picked = self.picked_epoch_s or self.page_start_epoch_s
            self.event("first_audio", page_to_first_audio_ms=round(first_audio - self.page_start_epoch_s * 1000.0, 1),
                       pick_to_first_audio_ms=round(first_audio - picked * 1000.0, 1),
                       whep_posts=len(self.whep_posts), player=self.player)
        if self.config.role == "listener" and interval.packets > 0 and self.state is CanaryState.WAITING_AUDIO:
            self._set_state(CanaryState.PLAYING)
        record = {"canary": self.name, "role": self.config.role, "booth": self.config.booth_id, "state": self.state.value,
                  "player": self.player, **interval.as_dict(), "latencies_ms": [round(x, 2) for x in latencies],
                  "markers_total": self.markers.markers, "whep_posts": len(self.whep_posts), "health": self.meter.take()}
        chunks = drained["chunks"]
        if chunks:
            last = chunks[-1]
            record["tap"] = {"output_latency_ms": round(last.get("output_latency_ms") or 0, 2),
                             "base_latency_ms": round(last.get("base_latency_ms") or 0, 2),
                             "device_after_play_ms": round(last["t_ear_ms"] - last["t_play_ms"], 2)}
        outbound = [s for s in drained["stats"] if s.get("type") == "outbound-rtp"]
        if outbound or self.config.role == "interpreter":
            # Per RTP stream, like the inbound deltas: a republish after a handover is a new stream from zero.
            sent = 0
            for row in outbound:
                key = (row.get("pc"), row.get("ssrc"))
                sent += max(0, int(row.get("packetsSent", 0)) - self._sent_last.get(key, 0))
                self._sent_last[key] = int(row.get("packetsSent", 0))
            self.packets_sent_total += sent
            record.update(packets_sent=sent, packets_sent_total=self.packets_sent_total)
        self.seconds.write(record)
        return record


class InterpreterFlow:
    """The canary interpreter: invite -> (lobby) -> booth page -> live, publishing through the page's own WHIP
    code from Chromium's fake microphone playing ``audio_wav`` -> one scheduled handover through the page.

    Going live is the page's business: VoxBento's booth page joins the booth on load and publishes by itself once
    its interpreter is active and a coordinator has unlocked the broadcast (contract 5.5); a page with a
    ``go_live_label`` button gets it clicked. The canary is PUBLISHING once the page's outbound RTP counts up."""

    ENTER_BOOTH = re.compile(r"enter booth", re.IGNORECASE)

    def __init__(self, canary: Canary) -> None:
        self.canary = canary

    def run(self, page) -> None:
        canary, config = self.canary, self.canary.config
        canary.page_start_epoch_s = time.time()
        canary._set_state(CanaryState.LOADING, loggable_url(config.invite_url or ""))
        if not config.invite_url:
            raise CanaryError("the interpreter canary needs an invite URL")
        page.goto(config.invite_url)
        canary._set_state(CanaryState.JOINING, loggable_url(page.url))
        enter = page.get_by_role("link", name=self.ENTER_BOOTH)
        if enter.count():
            with page.expect_navigation():
                enter.first.click()  # the lobby lists the booth the invite is for
        go_live = page.get_by_role("button", name=config.go_live_label)
        if go_live.count():
            go_live.first.click()
        canary._set_state(CanaryState.WAITING_AUDIO, f"booth page {loggable_url(page.url)}: waiting for it to publish")
        while not canary.stop_requested:
            canary.wait(TICK_S, page)
            sent = canary.tick(page).get("packets_sent", 0)
            if sent > 0 and canary.state is CanaryState.WAITING_AUDIO:
                canary._set_state(CanaryState.PUBLISHING)
            elif sent == 0 and canary.state is CanaryState.PUBLISHING:
                # The page stopped sending (a handover away, or it lost its ingest): a finding when it never resumes.
                canary._set_state(CanaryState.WAITING_AUDIO, "the booth page stopped publishing")
            due = (config.handover_at_epoch_s is not None and not canary.handover_done
                   and time.time() >= config.handover_at_epoch_s)
            if due or canary.handover_requested:
                canary.handover_done = canary.handover_done or due
                canary.handover_requested = False
                self._handover(page)

    def _handover(self, page) -> None:
        button = page.locator(self.canary.config.handover_selector)
        started = time.time()
        if not button.count() or not button.first.is_enabled():
            self.canary.event("handover", ok=False, error=f"the booth page's handover control ({self.canary.config.handover_selector}) "
                                                          "is missing or disabled")
            return
        label = (button.first.inner_text() or "").strip()
        button.first.click()
        self.canary.event("handover", ok=True, at_epoch_s=round(started, 3), control=label)


class CanaryError(VoxloadError, RuntimeError):
    """The page did not let the canary do what a person would (one line, names the page)."""


def _read_commands(stream, commands: queue.Queue) -> None:
    for line in stream:
        line = line.strip()
        if not line:
            continue
        try:
            commands.put(json.loads(line))
        except json.JSONDecodeError:
            logger.warning("canary: ignored a command line that is not JSON")
    commands.put(None)  # end of input: stop


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.browser.canary",
                                     description="One headless Chromium canary; configuration as the first JSON line on stdin.")
    parser.add_argument("--run-dir", required=True, type=Path, metavar="DIR", help="the run folder (files go to DIR/browser/)")
    parser.add_argument("--name", required=True, metavar="NAME", help="canary name, e.g. l0 or i0")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    first = sys.stdin.readline()
    try:
        config = CanaryConfig.from_wire(json.loads(first))
    except (ValueError, TypeError) as exc:
        print(f"canary {args.name}: bad configuration on stdin: {exc}", file=sys.stderr)
        return 2
    reason = chromium.unavailable_reason()
    if reason:
        print(f"canary {args.name}: {reason}", file=sys.stderr)
        return 2
    commands: queue.Queue = queue.Queue()
    threading.Thread(target=_read_commands, args=(sys.stdin, commands), daemon=True, name="canary-stdin").start()
    return Canary(config, args.run_dir, args.name, commands).run()


if __name__ == "__main__":
    sys.exit(main())
