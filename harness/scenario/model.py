"""The canonical, fully expanded scenario model: frozen dataclasses with every default applied.

A scenario file may describe its event either room by room or with the compact ``generate`` form; both
become the same ``EventSpec`` here. Stages get absolute start times, listener percentages become counts,
and a periodic handover schedule becomes an explicit list, so consumers (Locust users, the load shape,
reports) never re-interpret the YAML. Builders in this module assume the document already passed
``harness.scenario.schema`` and ``harness.scenario.semantics``.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .ramp import DEFAULT_SPAWN_RATE_PER_S, StepPlan
from ..results.slo import Threshold


class AuthMode(enum.Enum):
    OPEN = "open"  # Contract 3.5: BOOTH_ACCESS_TOKEN empty, booth JSON API and sockets unauthenticated
    TOKEN = "token"  # BOOTH_ACCESS_TOKEN set


class Provisioning(enum.Enum):
    FORMS = "forms"  # Contract 4.1: admin form posts with HTML read-back (works in both auth modes)
    JSON = "json"  # Contract 4.2: POST /api/events/{slug}/booths, one invite per call


class HandoverMethod(enum.Enum):
    # Contract 5.3: booth:initiate-handoff by the active interpreter ("offered"), accepted by a backup.
    OFFER = "offer"
    # Contract 5.3: booth:initiate-handoff by a backup ("requested"), accepted by the active interpreter.
    REQUEST = "request"
    # booth:set-active is deliberately absent: contract 5.5/14.15 says it leaves handoff_state "completed",
    # a dead end after which no further handoff works.


# Defaults applied when the file omits a key (documented in scenarios/README.md).
DEFAULT_ADMINS = 1
DEFAULT_COORDINATORS = 1
DEFAULT_THINK_TIME_S: Mapping[str, tuple[float, float]] = {
    "admin": (2.0, 5.0),
    "coordinator": (1.0, 3.0),
    "interpreter": (1.0, 3.0),
    "listener": (1.0, 3.0),
}
DEFAULT_HANDOVER_FIRST_AT_S = 10.0
DEFAULT_PROBE_LISTENER_SHARE = 0.1
DEFAULT_SILENCE_THRESHOLD_MS = 200.0
DEFAULT_INTERPRETERS_PER_BOOTH = 2


@dataclasses.dataclass(frozen=True)
class Target:
    host: str | None  # None: start the embedded reference stack
    auth_mode: AuthMode = AuthMode.OPEN
    provisioning: Provisioning = Provisioning.FORMS
    keep: bool = False


@dataclasses.dataclass(frozen=True)
class BoothSpec:
    room: str
    language: str  # ISO 639-1 (contract 2)
    interpreters: int  # primary + backups, >= 1
    listeners: int
    transcribed: bool = False

    @property
    def ref(self) -> str:
        """The booth's name in scenario files and reports: "ROOM/LANG"."""
        return booth_ref(self.room, self.language)


@dataclasses.dataclass(frozen=True)
class RoomSpec:
    name: str
    booths: tuple[BoothSpec, ...]


@dataclasses.dataclass(frozen=True)
class EventSpec:
    rooms: tuple[RoomSpec, ...]

    @property
    def booths(self) -> tuple[BoothSpec, ...]:
        return tuple(b for room in self.rooms for b in room.booths)

    @property
    def listener_capacity(self) -> int:
        return sum(b.listeners for b in self.booths)

    @property
    def interpreter_count(self) -> int:
        return sum(b.interpreters for b in self.booths)

    @property
    def transcribed_count(self) -> int:
        return sum(1 for b in self.booths if b.transcribed)

    def booth(self, ref: str) -> BoothSpec:
        for b in self.booths:
            if b.ref == ref:
                return b
        raise KeyError(ref)

    def listener_booth(self, index: int) -> BoothSpec:
        """The booth the `index`-th listener (0-based, in spawn order) joins.

        Booths are interleaved in proportion to their ``listeners`` (smooth weighted round robin), so any
        prefix of the spawn order (a ramp) is spread like the full audience; the first `listeners_capacity`
        indices give every booth exactly its ``listeners``. Indices beyond capacity wrap around.
        """
        booths = [b for b in self.booths if b.listeners > 0]
        if not booths:
            raise ValueError("the event has no listener seats")
        return booths[_listener_order(tuple(b.listeners for b in booths))[index % self.listener_capacity]]


def _listener_order(weights: tuple[int, ...]) -> tuple[int, ...]:
    # Smooth weighted round robin (as nginx upstreams): deterministic and evenly interleaved.
    total = sum(weights)
    current = [0] * len(weights)
    order = []
    for _ in range(total):
        for i, w in enumerate(weights):
            current[i] += w
        pick = max(range(len(weights)), key=lambda i: current[i])
        current[pick] -= total
        order.append(pick)
    return tuple(order)


@dataclasses.dataclass(frozen=True)
class Stage:
    index: int
    start_s: float
    duration_s: float
    listeners: int  # target listener count during this stage (percentages resolved against capacity)
    spawn_rate_per_s: float

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s


@dataclasses.dataclass(frozen=True)
class ThinkTime:
    min_s: float
    max_s: float


@dataclasses.dataclass(frozen=True)
class RampSpec:
    """A probe's stepped ramp as the scenario's load (``load.ramp``): the listeners follow ``plan.levels``."""

    probe: str  # one of harness.scenario.ramp.RAMP_PROBES
    plan: StepPlan
    spawn_rate_per_s: float


@dataclasses.dataclass(frozen=True)
class LoadSpec:
    # With a ramp, one stage per ramp step (so run length, peak and reports read stages either way).
    stages: tuple[Stage, ...]
    admins: int
    coordinators: int
    think_time_s: Mapping[str, ThinkTime]  # keys: admin, coordinator, interpreter, listener
    ramp: RampSpec | None = None

    @property
    def total_duration_s(self) -> float:
        return self.stages[-1].end_s

    @property
    def peak_listeners(self) -> int:
        return max(s.listeners for s in self.stages)

    def stage_at(self, run_time_s: float) -> Stage | None:
        """The stage running at `run_time_s` (stage i covers [start, end)); None once the last one ended."""
        for stage in self.stages:
            if run_time_s < stage.end_s:
                return stage
        return None


@dataclasses.dataclass(frozen=True, order=True)
class HandoverAt:
    at_s: float
    booth: str  # BoothSpec.ref


@dataclasses.dataclass(frozen=True)
class HandoverSpec:
    method: HandoverMethod
    schedule: tuple[HandoverAt, ...]  # sorted by time, periodic schedules already expanded
    every_s: float | None  # as written, for reports; None for an explicit schedule

    def for_booth(self, ref: str) -> tuple[float, ...]:
        return tuple(h.at_s for h in self.schedule if h.booth == ref)


@dataclasses.dataclass(frozen=True)
class MediaSpec:
    probe_listener_share: float
    silence_threshold_ms: float
    engines: int | None  # None = auto (one per spare core, decided by the media engine)
    browser_listeners: int = 0  # Chromium canary listeners playing the target's listener page (harness/browser)
    browser_interpreter: bool = False  # one Chromium canary interpreter on the target's booth page


@dataclasses.dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    source_path: Path
    target: Target
    event: EventSpec
    load: LoadSpec
    handovers: HandoverSpec | None
    media: MediaSpec
    slos: tuple[Threshold, ...]

    @property
    def fixed_users(self) -> int:
        """Users that stay for the whole run: every interpreter, admin and coordinator."""
        return self.event.interpreter_count + self.load.admins + self.load.coordinators

    @property
    def probe_listeners(self) -> int:
        return math.ceil(self.load.peak_listeners * self.media.probe_listener_share)

    def to_dict(self) -> dict[str, Any]:
        """The resolved scenario as plain JSON data (what run.json records)."""
        return _jsonable(self)


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    return value


def booth_ref(room: str, language: str) -> str:
    return f"{room}/{language}"


# --- builders (input: a document that passed schema and semantics) ---


def generated_room_name(index: int) -> str:
    return f"Room {index + 1}"


def expand_event(event: Mapping[str, Any]) -> EventSpec:
    if "rooms" in event:
        rooms = tuple(
            RoomSpec(
                name=room["name"],
                booths=tuple(
                    BoothSpec(room["name"], b["language"], b["interpreters"], b["listeners"], b.get("transcribed", False))
                    for b in room["booths"]
                ),
            )
            for room in event["rooms"]
        )
        return EventSpec(rooms)
    gen = event["generate"]
    per_room = gen["booths_per_room"]
    transcribed_left = gen.get("transcribed_booths", 0)
    rooms = []
    for r in range(gen["rooms"]):
        name = generated_room_name(r)
        booths = []
        # Every room gets the first `booths_per_room` languages; the first N booths overall are transcribed.
        for language in gen["languages"][:per_room]:
            booths.append(BoothSpec(name, language, gen.get("interpreters_per_booth", DEFAULT_INTERPRETERS_PER_BOOTH),
                                    gen["listeners_per_booth"], transcribed_left > 0))
            transcribed_left -= 1
        rooms.append(RoomSpec(name, tuple(booths)))
    return EventSpec(tuple(rooms))


def parse_percent(text: str) -> float | None:
    """"50%" -> 50.0; anything else -> None."""
    body = text.strip()
    if not body.endswith("%"):
        return None
    try:
        return float(body[:-1])
    except ValueError:
        return None


def resolve_listeners(raw: int | str, capacity: int) -> int:
    if isinstance(raw, int):
        return raw
    percent = parse_percent(raw)
    assert percent is not None, "semantics rejects anything else"
    return round(capacity * percent / 100.0)


def build_ramp(ramp: Mapping[str, Any]) -> RampSpec:
    plan = StepPlan(tuple(int(level) for level in ramp["levels"]), float(ramp["step_s"]))
    return RampSpec(ramp["probe"], plan, float(ramp.get("spawn_rate_per_s", DEFAULT_SPAWN_RATE_PER_S)))


def build_load(load: Mapping[str, Any], capacity: int) -> LoadSpec:
    stages = []
    ramp = build_ramp(load["ramp"]) if "ramp" in load else None
    if ramp is not None:
        stages = [Stage(i, start_s, end_s - start_s, level, ramp.spawn_rate_per_s)
                  for i, (level, start_s, end_s) in enumerate(ramp.plan.steps())]
    else:
        start_s = 0.0
        for i, s in enumerate(load["stages"]):
            stages.append(Stage(i, start_s, float(s["duration_s"]), resolve_listeners(s["listeners"], capacity), float(s["spawn_rate_per_s"])))
            start_s += float(s["duration_s"])
    think = {role: ThinkTime(*map(float, load.get("think_time_s", {}).get(role, default)))
             for role, default in DEFAULT_THINK_TIME_S.items()}
    return LoadSpec(tuple(stages), load.get("admins", DEFAULT_ADMINS), load.get("coordinators", DEFAULT_COORDINATORS), think, ramp)


def handover_booths(spec: Mapping[str, Any], event: EventSpec) -> tuple[str, ...]:
    """The booth refs a periodic schedule applies to: named ones, or every booth that has a backup."""
    booths = spec.get("booths", "all")
    if booths == "all":
        return tuple(b.ref for b in event.booths if b.interpreters >= 2)
    return tuple(booths)


def build_handovers(spec: Mapping[str, Any] | None, event: EventSpec, total_duration_s: float) -> HandoverSpec | None:
    if spec is None:
        return None
    method = HandoverMethod(spec.get("method", HandoverMethod.OFFER.value))
    if "at" in spec:
        schedule = tuple(sorted(HandoverAt(float(h["at_s"]), h["booth"]) for h in spec["at"]))
        return HandoverSpec(method, schedule, None)
    every_s = float(spec["every_s"])
    first_s = float(spec.get("first_at_s", DEFAULT_HANDOVER_FIRST_AT_S))
    times: list[HandoverAt] = []
    for ref in handover_booths(spec, event):
        t = first_s
        while t < total_duration_s:
            times.append(HandoverAt(t, ref))
            t += every_s
    return HandoverSpec(method, tuple(sorted(times)), every_s)


def build_media(media: Mapping[str, Any]) -> MediaSpec:
    engines = media.get("engines", "auto")
    return MediaSpec(
        probe_listener_share=float(media.get("probe_listener_share", DEFAULT_PROBE_LISTENER_SHARE)),
        silence_threshold_ms=float(media.get("silence_threshold_ms", DEFAULT_SILENCE_THRESHOLD_MS)),
        engines=None if engines == "auto" else int(engines),
        browser_listeners=int(media.get("browser_listeners", 0)),
        browser_interpreter=bool(media.get("browser_interpreter", False)),
    )


def build_target(target: Mapping[str, Any]) -> Target:
    return Target(
        host=target.get("host"),
        auth_mode=AuthMode(target.get("auth_mode", AuthMode.OPEN.value)),
        provisioning=Provisioning(target.get("provisioning", Provisioning.FORMS.value)),
        keep=bool(target.get("keep", False)),
    )


def build_scenario(data: Mapping[str, Any], thresholds: tuple[Threshold, ...], source_path: Path) -> Scenario:
    event = expand_event(data["event"])
    load = build_load(data["load"], event.listener_capacity)
    return Scenario(
        name=data["name"],
        description=data.get("description", ""),
        source_path=source_path,
        target=build_target(data.get("target", {})),
        event=event,
        load=load,
        handovers=build_handovers(data.get("handovers"), event, load.total_duration_s),
        media=build_media(data.get("media", {})),
        slos=thresholds,
    )
