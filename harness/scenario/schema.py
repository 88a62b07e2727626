"""The JSON Schema (draft 2020-12) of a scenario file: structure, types, ranges and unknown keys.

What a schema can say lives here; rules that need more than one value at a time (capacity, duplicate
languages, handover eligibility, threshold syntax, ...) live in ``harness.scenario.semantics``.
Every object sets ``additionalProperties: false``: unknown keys are errors. Defaults are applied by
``harness.scenario.model`` and documented in scenarios/README.md.
"""

from __future__ import annotations

from typing import Any

from ..contract.languages import SLUG_RE
from .ramp import RAMP_PROBES

# Contract 2: the scenario name prefixes the per-run event slug, so it follows the slug rule.
NAME_PATTERN = SLUG_RE.pattern
NAME_MAX_LEN = 40  # leaves room for "-<run id>" within the contract's 64-character slug limit

# Upper bounds (documented in scenarios/README.md, "Limits"). They are far above what one deployment takes
# (docs/scaling.md plans 10,000 listeners) and exist so that a typo or a hostile file fails in milliseconds
# with one line, instead of hanging the loader (a 1 us handover period), exhausting memory (700,000 booths)
# or running for ever (.inf seconds).
MAX_DURATION_S = 7 * 24 * 3600.0  # one stage, and the whole run
MAX_ROOMS = 200
MAX_BOOTHS = 1_000  # per event, after `generate` is expanded
MAX_INTERPRETERS_PER_BOOTH = 20
MAX_LISTENERS = 100_000  # per booth, per stage and per event
MAX_FIXED_USERS = 1_000  # admins, coordinators
MAX_SPAWN_RATE_PER_S = 10_000.0
MIN_HANDOVER_EVERY_S = 1.0  # a handover takes about a second: a shorter period is a typo
MAX_HANDOVERS = 10_000  # scheduled handovers per run, all booths together
MAX_RAMP_LEVELS = 1_000
MAX_STAGES = 1_000
MAX_THINK_TIME_S = 3600.0
MAX_SILENCE_THRESHOLD_MS = 60_000.0
MAX_ENGINES = 256

_DURATION_S = {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_DURATION_S}
_OFFSET_S = {"type": "number", "minimum": 0, "maximum": MAX_DURATION_S}
_SPAWN_RATE = {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_SPAWN_RATE_PER_S}
_THINK_TIME = {"type": "array", "items": {"type": "number", "minimum": 0, "maximum": MAX_THINK_TIME_S},
               "minItems": 2, "maxItems": 2}


def _object(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = list(required)
    return schema


BOOTH = _object(
    {
        "language": {"type": "string"},
        # Contract 5.5: the first interpreter becomes active, the others are backups.
        "interpreters": {"type": "integer", "minimum": 1, "maximum": MAX_INTERPRETERS_PER_BOOTH},
        "listeners": {"type": "integer", "minimum": 0, "maximum": MAX_LISTENERS},
        "transcribed": {"type": "boolean"},
    },
    required=("language", "interpreters", "listeners"),
)

ROOM = _object(
    {"name": {"type": "string", "minLength": 1, "maxLength": 100},
     "booths": {"type": "array", "items": BOOTH, "minItems": 1, "maxItems": MAX_BOOTHS}},
    required=("name", "booths"),
)

GENERATE = _object(
    {
        "rooms": {"type": "integer", "minimum": 1, "maximum": MAX_ROOMS},
        "booths_per_room": {"type": "integer", "minimum": 1, "maximum": MAX_BOOTHS},
        "languages": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": MAX_BOOTHS},
        "interpreters_per_booth": {"type": "integer", "minimum": 1, "maximum": MAX_INTERPRETERS_PER_BOOTH},
        "listeners_per_booth": {"type": "integer", "minimum": 0, "maximum": MAX_LISTENERS},
        "transcribed_booths": {"type": "integer", "minimum": 0, "maximum": MAX_BOOTHS},
    },
    required=("rooms", "booths_per_room", "languages", "listeners_per_booth"),
)

STAGE = _object(
    {
        "duration_s": _DURATION_S,
        # an absolute count, or "NN%" of the event's listener capacity (semantics checks the string form)
        "listeners": {"type": ["integer", "string"], "minimum": 0, "maximum": MAX_LISTENERS},
        "spawn_rate_per_s": _SPAWN_RATE,
    },
    required=("duration_s", "listeners", "spawn_rate_per_s"),
)

RAMP = _object(
    {
        # A probe whose load is a stepped ramp (harness.scenario.ramp.RAMP_PROBES); its levels are listener counts.
        "probe": {"type": "string", "enum": list(RAMP_PROBES)},
        "levels": {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": MAX_LISTENERS},
                   "minItems": 1, "maxItems": MAX_RAMP_LEVELS},
        "step_s": _DURATION_S,
        "spawn_rate_per_s": _SPAWN_RATE,
    },
    required=("probe", "levels", "step_s"),
)

LOAD = _object(
    {
        # Exactly one of `stages` and `ramp` (semantics checks it, at the line of the key).
        "stages": {"type": "array", "items": STAGE, "minItems": 1, "maxItems": MAX_STAGES},
        "ramp": RAMP,
        "admins": {"type": "integer", "minimum": 0, "maximum": MAX_FIXED_USERS},
        # Contract 5.5: only a coordinator can unlock broadcast, and nobody publishes before that.
        "coordinators": {"type": "integer", "minimum": 1, "maximum": MAX_FIXED_USERS},
        "think_time_s": _object({role: _THINK_TIME for role in ("admin", "coordinator", "interpreter", "listener")}),
    },
)

HANDOVERS = _object(
    {
        # Contract 5.3: `offer` = the active interpreter initiates, `request` = the backup initiates.
        "method": {"type": "string", "enum": ["offer", "request"]},
        "every_s": {"type": "number", "minimum": MIN_HANDOVER_EVERY_S, "maximum": MAX_DURATION_S},
        "first_at_s": _OFFSET_S,
        "booths": {"type": ["string", "array"], "items": {"type": "string"}, "maxItems": MAX_BOOTHS},
        "at": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_HANDOVERS,
            "items": _object({"at_s": _OFFSET_S, "booth": {"type": "string"}}, required=("at_s", "booth")),
        },
    }
)

MEDIA = _object(
    {
        "probe_listener_share": {"type": "number", "minimum": 0, "maximum": 1},
        "silence_threshold_ms": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_SILENCE_THRESHOLD_MS},
        "engines": {"type": ["string", "integer"], "maximum": MAX_ENGINES},
        # Headless Chromium canaries (harness/browser): each is a whole browser, hence the cap.
        "browser_listeners": {"type": "integer", "minimum": 0, "maximum": 8},
        "browser_interpreter": {"type": "boolean"},
    }
)

TARGET = _object(
    {
        "host": {"type": ["string", "null"]},
        # Contract 3.5: BOOTH_ACCESS_TOKEN empty = open, set = token.
        "auth_mode": {"type": "string", "enum": ["open", "token"]},
        # Contract 4.1 (admin forms, both modes) or 4.2 (JSON shortcut POST /api/events/{slug}/booths).
        "provisioning": {"type": "string", "enum": ["forms", "json"]},
        "keep": {"type": "boolean"},
    }
)

SCENARIO_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    **_object(
        {
            "name": {"type": "string", "pattern": NAME_PATTERN, "maxLength": NAME_MAX_LEN},
            "description": {"type": "string"},
            "target": TARGET,
            "event": _object({"rooms": {"type": "array", "items": ROOM, "minItems": 1, "maxItems": MAX_ROOMS}, "generate": GENERATE}),
            "load": LOAD,
            "handovers": HANDOVERS,
            "media": MEDIA,
            # metric name -> list of thresholds; names and threshold texts are checked by semantics
            "slos": {
                "type": "object",
                "minProperties": 1,
                "additionalProperties": {"type": "array", "minItems": 1, "items": {"type": ["string", "object"]}},
            },
        },
        required=("name", "event", "load", "slos"),
    ),
}
