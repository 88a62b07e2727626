"""Browser canaries in a rehearsal: which canaries a scenario gets, and when each one starts.

Owns: the canary plan (``plan_canaries``: canary listener i joins the booth the i-th listener would, as
``EventSpec.listener_booth`` spreads them), the one-line decision when Chromium is missing (the run carries on
without canaries unless a required threshold names a browser metric: then nothing runs, exit 2), and the
starter that waits until a booth is live before its canary listener opens the page. VoxBento's listener page
parks a listener that picks a booth before it is live until the next broadcast unlock (contract 6.2 step 2,
item 18), which a person would not wait for either.

Runs in the Locust process that owns the run (local or master): threads and subprocesses only, through
fleet.py; never imports locust, gevent or playwright.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from ..contract import routes
from ..errors import VoxloadError
from ..results.slo import METRICS
from ..results.browser_files import browser_dir
from .fleet import CanaryFleet
from .micwav import write_mic_wav

logger = logging.getLogger(__name__)

BROWSER_METRIC_PREFIX = "browser_"
# A booth whose publisher never came up still gets its canary after this long: the report then shows a page
# that never played instead of a canary that never started.
LIVE_WAIT_S = 45.0


class BrowserRequirementError(VoxloadError, RuntimeError):
    """The scenario requires browser metrics and no Chromium can run (one line, exit 2 before load)."""


@dataclasses.dataclass(frozen=True)
class CanaryPlan:
    name: str
    role: str  # listener | interpreter
    booth_ref: str  # "ROOM/LANG"


def browser_thresholds(scenario) -> list:
    return [t for t in scenario.slos if t.metric.startswith(BROWSER_METRIC_PREFIX) and t.metric in METRICS]


def plan_canaries(scenario) -> list[CanaryPlan]:
    plans = [CanaryPlan(f"l{i}", "listener", scenario.event.listener_booth(i).ref)
             for i in range(scenario.media.browser_listeners)]
    if scenario.media.browser_interpreter:
        booth = next((b for b in scenario.event.booths if b.interpreters >= 1), None)
        if booth is not None:
            plans.append(CanaryPlan("i0", "interpreter", booth.ref))
    return plans


class RehearsalCanaries:
    """Start the scenario's canaries as their booths go live; stop them at the end."""

    def __init__(self, scenario, run_path, stopping: Callable[[], bool]) -> None:
        self.scenario = scenario
        self.fleet = CanaryFleet(run_path)
        self.plans = plan_canaries(scenario)
        self._stopping = stopping
        self._live: dict[str, threading.Event] = {}
        self._threads: list[threading.Thread] = []
        self.unavailable: str | None = None
        self.stopped = False
        self._started = False

    def check(self) -> str | None:
        """Before load: None if canaries can run (or none are asked for); else the one line the run prints.
        Raises BrowserRequirementError when a required threshold needs them."""
        if not self.plans and not browser_thresholds(self.scenario):
            return None
        reason = self.fleet.unavailable_reason()
        if reason is None:
            return None
        required = [t for t in browser_thresholds(self.scenario) if getattr(t, "required", True)]
        if required:
            where = f"{required[0].file}:{required[0].line}" if required[0].file else str(self.scenario.source_path)
            raise BrowserRequirementError(
                f"{where}: slos.{required[0].metric} needs browser canaries, and they cannot run: {reason}")
        self.unavailable = reason
        line = f"browser canaries skipped: {reason}"
        self.fleet.status("unavailable", line, canaries_asked=len(self.plans))
        self.plans = []
        return line

    def booth_live(self, booth_id: str) -> None:
        self._live.setdefault(booth_id, threading.Event()).set()

    def add_schedule(self, booth_id: str, schedule: dict) -> None:
        self.fleet.add_schedule(booth_id, schedule)
        self.booth_live(booth_id)

    def start(self, host: str, event, booths_unlocked: threading.Event, started_epoch_s: float) -> None:
        """Start one waiter per canary (daemon threads; greenlets inside Locust); once per run."""
        if not self.plans or self._started:
            return
        self._started = True
        for plan in self.plans:
            booth = event.booths[plan.booth_ref]
            config = self._config(plan, host, event, booth)
            if plan.role == "interpreter" and self.scenario.handovers:
                # The canary carries out the booth's first scheduled handover through the page.
                due = self.scenario.handovers.for_booth(plan.booth_ref)
                if due:
                    config["handover_at_epoch_s"] = started_epoch_s + due[0]
            waiter = threading.Thread(target=self._start_when_live, args=(plan, booth.booth_id, config, booths_unlocked),
                                      name=f"canary-{plan.name}", daemon=True)
            waiter.start()
            self._threads.append(waiter)

    def _config(self, plan: CanaryPlan, host: str, event, booth) -> dict:
        config = {"role": plan.role, "booth_id": booth.booth_id, "room_name": booth.room_name, "language": booth.language,
                  "allow_hosts": [urlsplit(host).hostname]}
        if plan.role == "listener":
            config.update(listener_url=f"{host.rstrip('/')}/listener/{event.slug}", join_code=event.join_code)
        else:
            invite = booth.invites[-1] if booth.invites else None  # a spare: the synthetic interpreters take the first ones
            config.update(invite_url=f"{host.rstrip('/')}{routes.JOIN.path(token=invite)}" if invite else None,
                          audio_wav=str(write_mic_wav(browser_dir(self.fleet.run_path) / "mic.wav")))
        return config

    def _start_when_live(self, plan: CanaryPlan, booth_id: str, config: dict, booths_unlocked: threading.Event) -> None:
        deadline = time.monotonic() + LIVE_WAIT_S
        live = self._live.setdefault(booth_id, threading.Event())
        if plan.role == "listener":
            booths_unlocked.wait(max(0.0, deadline - time.monotonic()))
            live.wait(max(0.0, deadline - time.monotonic()))
        if self._stopping() or self.stopped:
            return
        if plan.role == "listener" and not live.is_set():
            self.fleet.status("not_live", f"booth {booth_id} was not live after {LIVE_WAIT_S:.0f} s; canary {plan.name} "
                              "opens the listener page anyway", canary=plan.name)
        try:
            self.fleet.start(plan.name, config)
        except OSError as exc:
            self.fleet.status("start_failed", f"browser canary {plan.name} could not start: {exc}", canary=plan.name)

    def dead(self) -> list[str]:
        return [f"browser canary {c.name} exited with code {c.proc.returncode} during the run: its figures end there"
                for c in self.fleet.dead()]

    def stop(self) -> None:
        self.stopped = True
        self.fleet.stop()
