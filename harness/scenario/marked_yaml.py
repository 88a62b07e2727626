"""YAML loading that remembers where every key and list item is: ``key path -> line number``.

PyYAML's ``SafeLoader`` composes a node tree (each node has a ``start_mark``) and then constructs plain
Python data. We keep both: the data for validation, and a map from key paths such as
``("event", "rooms", 0, "booths", 1, "interpreters")`` to 1-based line numbers, so schema and semantic
errors can name the line. Duplicate mapping keys (which PyYAML silently lets the last one win) are errors.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import yaml

from .errors import ScenarioError, ScenarioIssue

KeyPath = tuple[str | int, ...]


def format_path(path: Sequence[str | int]) -> str:
    """("event", "rooms", 0, "name") -> "event.rooms[0].name"."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


@dataclasses.dataclass(frozen=True)
class MarkedDocument:
    file: str
    data: Any
    lines: dict[KeyPath, int]

    def line_of(self, path: Sequence[str | int]) -> int:
        """Line of `path`, or of its nearest ancestor that has one (missing keys report their parent)."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), 1)

    def issue(self, path: Sequence[str | int], message: str, line: int | None = None) -> ScenarioIssue:
        return ScenarioIssue(self.file, line if line is not None else self.line_of(path), format_path(path), message)


def _record(node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int], issues: list[ScenarioIssue], file: str) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in seen:
                issues.append(ScenarioIssue(file, line, format_path(path + (key,)),
                                            f"duplicate key (first defined on line {seen[key]})"))
                continue
            seen[key] = line
            lines[path + (key,)] = line
            _record(value_node, path + (key,), lines, issues, file)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[path + (index,)] = item.start_mark.line + 1
            _record(item, path + (index,), lines, issues, file)


def load_marked(text: str, file: str) -> MarkedDocument:
    """Parse `text` (one YAML document); raises ``ScenarioError`` for syntax errors and duplicate keys."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise ScenarioError.single(file, 1, "", "the file is empty (expected a YAML mapping)")
        # construct_document also flattens merge keys (<<) in place, so the walk below sees them resolved.
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = exc.problem or exc.context or "invalid YAML"
        # The parser notices a problem where it stops (often the next line); name where the construct began.
        if exc.context and exc.context_mark is not None and exc.context_mark.line + 1 != line:
            problem += f" ({exc.context} started on line {exc.context_mark.line + 1})"
        raise ScenarioError.single(file, line, "", f"YAML syntax error: {problem}") from None
    except yaml.YAMLError as exc:
        raise ScenarioError.single(file, 1, "", f"YAML error: {' '.join(str(exc).split())}") from None
    finally:
        loader.dispose()
    lines: dict[KeyPath, int] = {(): node.start_mark.line + 1}
    issues: list[ScenarioIssue] = []
    _record(node, (), lines, issues, file)
    if issues:
        raise ScenarioError(issues)
    return MarkedDocument(file=file, data=data, lines=lines)
