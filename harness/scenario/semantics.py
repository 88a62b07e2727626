"""Semantic checks of a scenario: rules a schema cannot express, each reported at its key's line.

Runs only on documents that passed ``harness.scenario.schema`` (so types and ranges are known good) and
returns the issues plus the parsed SLO thresholds (parsed once here, with their file and line). Checks:
event form and languages, duplicate rooms and languages, stages or a probe ramp (``load.ramp``: climbing
levels within the listener capacity), listener capacity per stage, think-time ranges,
handover schedules (booths must exist and have a backup; times inside the run), media engines, target URL,
and every SLO (metric name from ``harness.results.slo.METRICS``, threshold syntax, aggregation for the metric kind).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ..inputs import url_problem
from ..contract.languages import ISO_639_1
from ..results.slo import METRICS, SloError, Threshold, parse_threshold, suggest
from .errors import ScenarioIssue
from .marked_yaml import MarkedDocument
from .model import DEFAULT_HANDOVER_FIRST_AT_S, EventSpec, build_load, expand_event, handover_booths, parse_percent
from .schema import MAX_BOOTHS, MAX_DURATION_S, MAX_HANDOVERS, MAX_LISTENERS
from .schema_check import describe_value

_THRESHOLD_OBJECT_KEYS = ("threshold", "required")


class _Checker:
    def __init__(self, doc: MarkedDocument) -> None:
        self.doc = doc
        self.data: Mapping[str, Any] = doc.data
        self.issues: list[ScenarioIssue] = []

    def add(self, path: tuple[str | int, ...], message: str) -> None:
        self.issues.append(self.doc.issue(path, message))

    # --- target ---

    def check_target(self) -> None:
        host = self.data.get("target", {}).get("host")
        if host is None:
            return
        # The same rule as --host (harness.inputs); the value is not echoed: it may hold a password.
        problem = url_problem(host)
        if problem is not None:
            self.add(("target", "host"), problem)

    # --- event ---

    def check_language(self, path: tuple[str | int, ...], code: str) -> None:
        # Contract 2: a booth language is two lower-case letters from the ISO 639-1 allow-list.
        if code not in ISO_639_1:
            self.add(path, f"must be an ISO 639-1 language code (got {describe_value(code)}){suggest(code.lower(), ISO_639_1)}")

    def check_event(self) -> EventSpec | None:
        event = self.data["event"]
        has_rooms, has_generate = "rooms" in event, "generate" in event
        if has_rooms == has_generate:
            where = ("event", "generate") if has_rooms else ("event",)
            self.add(where, "give exactly one of 'rooms' (explicit list) or 'generate' (compact form)")
            return None
        before = len(self.issues)
        if has_rooms:
            self.check_rooms(event["rooms"])
            booths = sum(len(room["booths"]) for room in event["rooms"])
            capacity = sum(b["listeners"] for room in event["rooms"] for b in room["booths"])
        else:
            self.check_generate(event["generate"])
            gen = event["generate"]
            booths = gen["rooms"] * gen["booths_per_room"]
            capacity = booths * gen["listeners_per_booth"]
        # Totals are checked before the event is expanded: 700,000 booths must not be built to be refused.
        form = ("event", "rooms" if has_rooms else "generate")
        if booths > MAX_BOOTHS:
            self.add(form, f"has {booths:,} booths; at most {MAX_BOOTHS:,} are supported")
        elif capacity > MAX_LISTENERS:
            self.add(form, f"has {capacity:,} listener seats; at most {MAX_LISTENERS:,} are supported")
        return expand_event(event) if len(self.issues) == before else None

    def check_rooms(self, rooms: list[dict[str, Any]]) -> None:
        seen_rooms: dict[str, int] = {}
        for r, room in enumerate(rooms):
            if room["name"] in seen_rooms:
                self.add(("event", "rooms", r, "name"), f"duplicate room name {room['name']!r} (also rooms[{seen_rooms[room['name']]}])")
            seen_rooms.setdefault(room["name"], r)
            if "/" in room["name"]:
                # booth references are "ROOM/LANG"
                self.add(("event", "rooms", r, "name"), "must not contain '/'")
            seen_languages: dict[str, int] = {}
            for b, booth in enumerate(room["booths"]):
                path = ("event", "rooms", r, "booths", b, "language")
                self.check_language(path, booth["language"])
                if booth["language"] in seen_languages:
                    # Contract 2: the booth id is {slug}-{room_id}-{language}, so a room has one booth per language.
                    self.add(path, f"duplicate language {booth['language']!r} in room {room['name']!r} (also booths[{seen_languages[booth['language']]}])")
                seen_languages.setdefault(booth["language"], b)

    def check_generate(self, gen: Mapping[str, Any]) -> None:
        seen: dict[str, int] = {}
        for i, code in enumerate(gen["languages"]):
            self.check_language(("event", "generate", "languages", i), code)
            if code in seen:
                self.add(("event", "generate", "languages", i), f"duplicate language {code!r} (also languages[{seen[code]}])")
            seen.setdefault(code, i)
        if len(gen["languages"]) < gen["booths_per_room"]:
            self.add(("event", "generate", "languages"),
                     f"needs at least booths_per_room = {gen['booths_per_room']} languages (got {len(gen['languages'])})")
        total = gen["rooms"] * gen["booths_per_room"]
        if gen.get("transcribed_booths", 0) > total:
            self.add(("event", "generate", "transcribed_booths"), f"must be <= the number of booths, {total} (got {gen['transcribed_booths']})")

    # --- load ---

    def check_load(self, event: EventSpec | None) -> bool:
        """True when the load is valid, so later checks can build it (``build_load``)."""
        before = len(self.issues)
        load = self.data["load"]
        capacity = event.listener_capacity if event is not None else None
        has_stages, has_ramp = "stages" in load, "ramp" in load
        if has_stages and has_ramp:
            self.add(("load", "ramp"), "give exactly one of 'stages' (explicit) or 'ramp' (a probe's stepped ramp)")
        elif not has_stages and not has_ramp:
            self.add(("load",), "needs 'stages' (explicit) or 'ramp' (a probe's stepped ramp)")
        elif has_ramp:
            self.check_ramp(load["ramp"], capacity)
        else:
            self.check_stages(load["stages"], capacity)
            total_s = sum(stage["duration_s"] for stage in load["stages"])
            if total_s > MAX_DURATION_S:
                self.add(("load", "stages"), f"last {total_s:,.0f} s in total; at most {MAX_DURATION_S:,.0f} s (7 days) "
                                             "are supported")
        for role, pair in load.get("think_time_s", {}).items():
            if pair[0] > pair[1]:
                self.add(("load", "think_time_s", role), f"must be [min, max] with min <= max (got [{pair[0]:g}, {pair[1]:g}])")
        return len(self.issues) == before

    def check_ramp(self, ramp: Mapping[str, Any], capacity: int | None) -> None:
        levels = ramp["levels"]
        if len(levels) * ramp["step_s"] > MAX_DURATION_S:
            self.add(("load", "ramp", "step_s"), f"{len(levels)} steps of {ramp['step_s']:g} s last more than "
                                                 f"{MAX_DURATION_S:,.0f} s (7 days), the longest supported run")
        for i, level in enumerate(levels):
            path = ("load", "ramp", "levels", i)
            # harness.scenario.ramp.StepPlan: a probe ramp only climbs (each step is a higher concurrency).
            if i > 0 and level <= levels[i - 1]:
                self.add(path, f"must be greater than the level before it, {levels[i - 1]} (got {level})")
            # The levels are listener counts: each one must fit the event's seats.
            if capacity is not None and level > capacity:
                self.add(path, f"exceeds the event's listener capacity of {capacity} (got {level})")

    def check_stages(self, stages: list[dict[str, Any]], capacity: int | None) -> None:
        for i, stage in enumerate(stages):
            path = ("load", "stages", i, "listeners")
            raw = stage["listeners"]
            if isinstance(raw, str):
                percent = parse_percent(raw)
                if percent is None:
                    self.add(path, f"must be a count or a percentage like '50%' (got {describe_value(raw)})")
                elif not 0 <= percent <= 100:
                    self.add(path, f"must be between 0% and 100% of the event's listener capacity (got {raw!r})")
            elif capacity is not None and raw > capacity:
                self.add(path, f"exceeds the event's listener capacity of {capacity} (got {raw})")

    # --- handovers ---

    def check_handover_booth(self, path: tuple[str | int, ...], ref: str, event: EventSpec) -> None:
        refs = [b.ref for b in event.booths]
        if ref not in refs:
            self.add(path, f"unknown booth {ref!r}, expected 'ROOM/LANG'{suggest(ref, refs)}")
            return
        booth = event.booth(ref)
        if booth.interpreters < 2:
            # Contract 5.3: a handoff needs another eligible participant ("No other interpreter in the booth to hand off to.").
            self.add(path, f"booth {ref!r} has 1 interpreter; a handover needs a backup (interpreters >= 2)")

    def check_handovers(self, event: EventSpec | None, load_ok: bool) -> None:
        spec = self.data.get("handovers")
        if spec is None or event is None or not load_ok:
            return
        total_s = build_load(self.data["load"], event.listener_capacity).total_duration_s
        if total_s > MAX_DURATION_S:
            return  # reported by check_load
        if "at" in spec and "every_s" in spec:
            self.add(("handovers", "at"), "give either 'every_s' (periodic) or 'at' (explicit times), not both")
            return
        if "at" in spec:
            for key in ("first_at_s", "booths"):
                if key in spec:
                    self.add(("handovers", key), "only applies to a periodic schedule ('every_s'); put booths in each 'at' entry")
            for i, entry in enumerate(spec["at"]):
                self.check_handover_booth(("handovers", "at", i, "booth"), entry["booth"], event)
                if entry["at_s"] >= total_s:
                    self.add(("handovers", "at", i, "at_s"), f"must be before the end of the load stages at {total_s:g} s (got {entry['at_s']:g})")
            return
        if "every_s" not in spec:
            self.add(("handovers",), "needs 'every_s' (periodic) or 'at' (explicit times)")
            return
        booths = spec.get("booths", "all")
        if isinstance(booths, str):
            if booths != "all":
                self.add(("handovers", "booths"), f"must be 'all' or a list of 'ROOM/LANG' booths (got {describe_value(booths)})")
            elif not any(b.interpreters >= 2 for b in event.booths):
                self.add(("handovers", "booths"), "no booth has a backup interpreter (interpreters >= 2) to hand over to")
        else:
            for i, ref in enumerate(booths):
                self.check_handover_booth(("handovers", "booths", i), ref, event)
        first_s = spec.get("first_at_s")
        if first_s is not None and first_s >= total_s:
            self.add(("handovers", "first_at_s"), f"must be before the end of the load stages at {total_s:g} s (got {first_s:g})")
            return
        # Counted before the periodic schedule is expanded into one entry per handover (model.build_handovers).
        start_s = DEFAULT_HANDOVER_FIRST_AT_S if first_s is None else first_s
        per_booth = max(0, math.ceil((total_s - start_s) / spec["every_s"]))
        count = per_booth * len(handover_booths(spec, event))
        if count > MAX_HANDOVERS:
            self.add(("handovers", "every_s"), f"schedules {count:,} handovers in {total_s:g} s; at most {MAX_HANDOVERS:,} "
                                               f"are supported (got every_s {spec['every_s']:g})")

    # --- media ---

    def check_media(self) -> None:
        engines = self.data.get("media", {}).get("engines")
        if engines is None:
            return
        if isinstance(engines, str) and engines != "auto":
            self.add(("media", "engines"), f"must be 'auto' or a number of engine processes >= 1 (got {describe_value(engines)})")
        elif isinstance(engines, int) and engines < 1:
            self.add(("media", "engines"), f"must be >= 1 (got {engines})")

    # --- slos ---

    def check_slos(self) -> list[Threshold]:
        thresholds: list[Threshold] = []
        for metric, items in self.data["slos"].items():
            if metric not in METRICS:
                self.add(("slos", metric), f"unknown metric{suggest(str(metric), METRICS)}")
                continue
            for i, item in enumerate(items):
                path = ("slos", metric, i)
                required = True
                source = item
                if isinstance(item, dict):
                    unknown = [k for k in item if k not in _THRESHOLD_OBJECT_KEYS]
                    for key in unknown:
                        self.add(path + (key,), f"unknown key{suggest(str(key), _THRESHOLD_OBJECT_KEYS)}")
                    if "threshold" not in item:
                        self.add(path + ("threshold",), "missing required key")
                    elif not isinstance(item["threshold"], str):
                        self.add(path + ("threshold",), f"must be a string like 'p95 < 400' (got {describe_value(item['threshold'])})")
                    if "required" in item and not isinstance(item["required"], bool):
                        self.add(path + ("required",), f"must be true or false (got {describe_value(item['required'])})")
                    if unknown or not isinstance(item.get("threshold"), str) or not isinstance(item.get("required", True), bool):
                        continue
                    source, required = item["threshold"], item.get("required", True)
                try:
                    thresholds.append(parse_threshold(metric, source, required=required, file=self.doc.file, line=self.doc.line_of(path)))
                except SloError as exc:
                    self.add(path, str(exc))
        return thresholds


def semantic_issues(doc: MarkedDocument) -> tuple[list[ScenarioIssue], tuple[Threshold, ...]]:
    """All semantic issues of a schema-valid document, and its parsed thresholds."""
    checker = _Checker(doc)
    checker.check_target()
    event = checker.check_event()
    load_ok = checker.check_load(event)
    checker.check_handovers(event, load_ok)
    checker.check_media()
    thresholds = checker.check_slos()
    return checker.issues, tuple(thresholds)


__all__ = ["semantic_issues"]
