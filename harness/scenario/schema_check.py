"""Run the scenario JSON Schema and translate each jsonschema error into a one-line ``ScenarioIssue``.

jsonschema reports paths as deques of keys and indices and messages written for programmers; here
each error kind gets a short message of our own (``must be >= 1 (got 0)``, ``unknown key (did you
mean 'interpreters'?)``) and the line of the offending key from ``MarkedDocument.lines``.
"""

from __future__ import annotations

import math
from typing import Any

import jsonschema

from ..results.slo import closest, suggest
from .errors import ScenarioIssue
from .marked_yaml import MarkedDocument
from .schema import SCENARIO_SCHEMA

_VALIDATOR = jsonschema.Draft202012Validator(SCENARIO_SCHEMA)

_MISSING = "missing required key"
_TYPE_WORDS = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
    "null": "null",
}


def describe_value(value: Any) -> str:
    """How a YAML value is named in messages: "string 'two'", "list", "0"."""
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"{value:g}" if isinstance(value, float) else str(value)
    if isinstance(value, str):
        return f"string {value!r}"
    if value is None:
        return "null"
    return {dict: "a mapping", list: "a list"}.get(type(value), type(value).__name__)


def _type_message(expected: str | list[str], value: Any) -> str:
    names = [expected] if isinstance(expected, str) else list(expected)
    words = " or ".join(_TYPE_WORDS.get(n, n) for n in names)
    return f"must be {words} (got {describe_value(value)})"


def _issues_for(doc: MarkedDocument, error: jsonschema.ValidationError) -> list[ScenarioIssue]:
    path = tuple(error.absolute_path)
    kind = error.validator
    value = error.instance
    if kind == "additionalProperties":
        known = error.schema.get("properties", {})
        return [
            doc.issue(path + (key,), f"unknown key{suggest(str(key), known)}")
            for key in value
            if key not in known
        ]
    if kind == "required":
        known = error.schema.get("properties", {})
        # A misspelt required key is one mistake: the "unknown key (did you mean ...)" issue already says it.
        misspelt = {closest(str(k), known) for k in value if k not in known}
        return [
            doc.issue(path + (key,), _MISSING, line=doc.line_of(path))
            for key in error.validator_value
            if key not in value and key not in misspelt
        ]
    if kind == "type":
        if not path:
            return [doc.issue(path, f"the document must be a mapping of scenario keys (got {describe_value(value)})")]
        return [doc.issue(path, _type_message(error.validator_value, value))]
    limit = error.validator_value
    messages = {
        "minimum": lambda: f"must be >= {limit:g} (got {describe_value(value)})",
        "maximum": lambda: f"must be <= {limit:g} (got {describe_value(value)})",
        "exclusiveMinimum": lambda: f"must be > {limit:g} (got {describe_value(value)})",
        "exclusiveMaximum": lambda: f"must be < {limit:g} (got {describe_value(value)})",
        "enum": lambda: f"must be one of {', '.join(map(str, limit))} (got {describe_value(value)}){suggest(str(value), map(str, limit))}",
        "minItems": lambda: f"must have at least {limit} item{'s' if limit != 1 else ''} (got {len(value)})",
        "maxItems": lambda: f"must have at most {limit} item{'s' if limit != 1 else ''} (got {len(value)})",
        "minLength": lambda: "must not be empty",
        "maxLength": lambda: f"must be at most {limit} characters (got {len(value)})",
        "minProperties": lambda: f"must have at least {limit} entr{'ies' if limit != 1 else 'y'}",
        # The only pattern in the schema is the scenario name's (contract 2 slug rule).
        "pattern": lambda: f"must be lower-case letters and digits joined by single hyphens (got {describe_value(value)})",
    }
    message = messages.get(kind, lambda: error.message)()
    return [doc.issue(path, message)]


def _non_finite_issues(doc: MarkedDocument) -> list[ScenarioIssue]:
    # JSON Schema has no NaN or infinity, and jsonschema lets YAML's .nan through every bound (NaN compares false).
    issues: list[ScenarioIssue] = []
    pending: list[tuple[tuple[str | int, ...], Any]] = [((), doc.data)]
    while pending:
        path, value = pending.pop()
        if isinstance(value, float) and not math.isfinite(value):
            issues.append(doc.issue(path, f"must be a finite number (got {describe_value(value)})"))
        elif isinstance(value, dict):
            pending.extend((path + (str(k),), v) for k, v in value.items())
        elif isinstance(value, list):
            pending.extend((path + (i,), v) for i, v in enumerate(value))
    return issues


def schema_issues(doc: MarkedDocument) -> list[ScenarioIssue]:
    issues = _non_finite_issues(doc)
    if issues:
        return issues
    for error in _VALIDATOR.iter_errors(doc.data):
        issues.extend(_issues_for(doc, error))
    return issues
