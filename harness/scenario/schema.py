"""The JSON Schema (draft 2020-12) of a scenario file: structure, types, ranges and unknown keys.

What a schema can say lives here; rules that need more than one value at a time (capacity, duplicate
languages, handover eligibility, threshold syntax, ...) live in ``harness.scenario.semantics``.
Every object sets ``additionalProperties: false``: unknown keys are errors. Defaults are applied by
``harness.scenario.model`` and documented in scenarios/README.md.
"""

from __future__ import annotations

from typing import Any

from ..probes.ramp import RAMP_PROBES

# Contract 2: event slugs are `^[a-z0-9]+(?:-[a-z0-9]+)*$`; the scenario name prefixes the per-run slug.
NAME_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
NAME_MAX_LEN = 40  # leaves room for "-<run id>" within the contract's 64-character slug limit

_POSITIVE_NUMBER = {"type": "number", "exclusiveMinimum": 0}
_THINK_TIME = {"type": "array", "items": {"type": "number", "minimum": 0}, "minItems": 2, "maxItems": 2}


def _object(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = list(required)
    return schema


BOOTH = _object(
    {
        "language": {"type": "string"},
        # Contract 5.5: the first interpreter becomes active, the others are backups.
        "interpreters": {"type": "integer", "minimum": 1},
        "listeners": {"type": "integer", "minimum": 0},
        "transcribed": {"type": "boolean"},
    },
    required=("language", "interpreters", "listeners"),
)

ROOM = _object(
    {"name": {"type": "string", "minLength": 1}, "booths": {"type": "array", "items": BOOTH, "minItems": 1}},
    required=("name", "booths"),
)

GENERATE = _object(
    {
        "rooms": {"type": "integer", "minimum": 1},
        "booths_per_room": {"type": "integer", "minimum": 1},
        "languages": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "interpreters_per_booth": {"type": "integer", "minimum": 1},
        "listeners_per_booth": {"type": "integer", "minimum": 0},
        "transcribed_booths": {"type": "integer", "minimum": 0},
    },
    required=("rooms", "booths_per_room", "languages", "listeners_per_booth"),
)

STAGE = _object(
    {
        "duration_s": _POSITIVE_NUMBER,
        # an absolute count, or "NN%" of the event's listener capacity (semantics checks the string form)
        "listeners": {"type": ["integer", "string"], "minimum": 0},
        "spawn_rate_per_s": _POSITIVE_NUMBER,
    },
    required=("duration_s", "listeners", "spawn_rate_per_s"),
)

RAMP = _object(
    {
        # A probe whose load is a stepped ramp (harness.probes.ramp.RAMP_PROBES); its levels are listener counts.
        "probe": {"type": "string", "enum": list(RAMP_PROBES)},
        "levels": {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 1},
        "step_s": _POSITIVE_NUMBER,
        "spawn_rate_per_s": _POSITIVE_NUMBER,
    },
    required=("probe", "levels", "step_s"),
)

LOAD = _object(
    {
        # Exactly one of `stages` and `ramp` (semantics checks it, at the line of the key).
        "stages": {"type": "array", "items": STAGE, "minItems": 1},
        "ramp": RAMP,
        "admins": {"type": "integer", "minimum": 0},
        # Contract 5.5: only a coordinator can unlock broadcast, and nobody publishes before that.
        "coordinators": {"type": "integer", "minimum": 1},
        "think_time_s": _object({role: _THINK_TIME for role in ("admin", "coordinator", "interpreter", "listener")}),
    },
)

HANDOVERS = _object(
    {
        # Contract 5.3: `offer` = the active interpreter initiates, `request` = the backup initiates.
        "method": {"type": "string", "enum": ["offer", "request"]},
        "every_s": _POSITIVE_NUMBER,
        "first_at_s": {"type": "number", "minimum": 0},
        "booths": {"type": ["string", "array"], "items": {"type": "string"}},
        "at": {
            "type": "array",
            "minItems": 1,
            "items": _object({"at_s": {"type": "number", "minimum": 0}, "booth": {"type": "string"}}, required=("at_s", "booth")),
        },
    }
)

MEDIA = _object(
    {
        "probe_listener_share": {"type": "number", "minimum": 0, "maximum": 1},
        "silence_threshold_ms": _POSITIVE_NUMBER,
        "engines": {"type": ["string", "integer"]},
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
            "event": _object({"rooms": {"type": "array", "items": ROOM, "minItems": 1}, "generate": GENERATE}),
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
