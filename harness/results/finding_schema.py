"""The format of a probe's ``probes/<name>/finding.json``, as a JSON Schema: the probes write it, the report reads it.

``harness.probes.finding`` checks every finding against :data:`FINDING_SCHEMA` before writing it;
``harness.report.findings`` checks every file it reads the same way and lists one that fails as missing (one line
naming the file and the key) rather than guessing. The plot kinds and severities are the probes' (their enums live
here so both sides use the same words).
"""

from __future__ import annotations

import enum
from typing import Any

import jsonschema

FINDING_SCHEMA_VERSION = 1


class Severity(enum.Enum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class PlotKind(enum.Enum):
    LINE = "line"
    SCATTER = "scatter"
    BAR = "bar"


_TEXT = {"type": "string", "minLength": 1, "pattern": r"\S"}
_COLUMN = {"type": "string", "minLength": 1}

FINDING_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "voxload probe finding",
    "type": "object",
    "required": ["schema_version", "probe", "title", "limit", "configured", "method", "knee", "symptom", "trigger",
                 "evidence", "paragraph", "severity", "recommendation", "data"],
    "additionalProperties": False,
    "properties": {
        "schema_version": {"const": FINDING_SCHEMA_VERSION},
        "probe": {"type": "string", "pattern": r"^[a-z][a-z0-9-]*$"},
        "title": _TEXT,
        "limit": {
            "type": "object",
            "required": ["name", "value", "unit"],
            "additionalProperties": False,
            "properties": {"name": _TEXT, "value": {"type": ["number", "null"]}, "unit": {"type": "string"}},
        },
        "configured": {"type": "object"},
        "method": _TEXT,
        "knee": {
            "oneOf": [
                {"type": "null"},
                {"type": "object", "required": ["x", "y", "x_column", "y_column"], "additionalProperties": False,
                 "properties": {"x": {"type": "number"}, "y": {"type": "number"}, "x_column": _COLUMN, "y_column": _COLUMN}},
            ],
        },
        "symptom": _TEXT,
        "trigger": _TEXT,
        "evidence": {"type": "array", "items": {"type": "string"}},
        "paragraph": _TEXT,
        "severity": {"enum": [s.value for s in Severity]},
        "recommendation": _TEXT,
        "data": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["file", "description", "columns", "plot"],
                "additionalProperties": False,
                "properties": {
                    "file": {"type": "string", "pattern": r"^[^/\\]+$"},  # inside the probe's folder
                    "description": {"type": "string"},
                    "columns": {"type": "object", "minProperties": 1, "additionalProperties": {"type": "string"}},
                    "plot": {
                        "oneOf": [
                            {"type": "null"},
                            {"type": "object", "required": ["x", "y", "series", "kind"], "additionalProperties": False,
                             "properties": {"x": _COLUMN, "y": {"type": "array", "minItems": 1, "items": _COLUMN},
                                            "series": {"type": ["string", "null"]},
                                            "kind": {"enum": [k.value for k in PlotKind]}}},
                        ],
                    },
                },
            },
        },
    },
}

_VALIDATOR = jsonschema.Draft202012Validator(FINDING_SCHEMA)


def finding_errors(doc: Any) -> list[str]:
    """Every way `doc` breaks the schema, one line each naming the key (``data[0].plot.kind: ...``); empty when valid."""
    lines = []
    for error in sorted(_VALIDATOR.iter_errors(doc), key=lambda e: [str(p) for p in e.absolute_path]):
        while error.context:  # a oneOf (null or an object): say what is wrong inside the object, not "no branch fits"
            error = max(error.context, key=lambda e: (len(e.absolute_path), e.validator != "type"))
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path).lstrip(".") or "(top level)"
        lines.append(f"{where}: {error.message}")
    return lines
