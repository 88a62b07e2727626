"""YAML loading that remembers where every key and list item is: ``key path -> line number``.

PyYAML's ``SafeLoader`` composes a node tree (each node has a ``start_mark``) and then constructs plain
Python data. We keep both: the data for validation, and a map from key paths such as
``("event", "rooms", 0, "booths", 1, "interpreters")`` to 1-based line numbers, so schema and semantic
errors can name the line. Duplicate mapping keys (which PyYAML silently lets the last one win) are errors.

Before anything is composed, one pass over the parser's events (iterative, no recursion) refuses hostile
documents with the line and key where they go wrong: nesting deeper than ``MAX_DEPTH``, an alias inside
its own anchor (a recursive structure), more than ``MAX_EXPANDED_VALUES`` values once aliases are expanded
(alias bombs such as "billion laughs": PyYAML shares aliased nodes, but every later walk expands them), and
integers of more than ``MAX_INTEGER_DIGITS`` digits (Python refuses to convert them beyond 4300).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from typing import Any

import yaml

from .errors import ScenarioError, ScenarioIssue

KeyPath = tuple[str | int, ...]

# A scenario is a few dozen keys deep at most and a few hundred values long; these leave ample room.
MAX_FILE_BYTES = 1_000_000
MAX_DEPTH = 32
MAX_EXPANDED_VALUES = 100_000
MAX_INTEGER_DIGITS = 100
_INTEGER_LIKE = re.compile(r"^[-+]?[0-9_]+$")


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


class _Level:
    """One open mapping or sequence while scanning events: its key path so far and its expanded size."""

    __slots__ = ("anchor", "is_mapping", "key", "index", "expect_key", "size")

    def __init__(self, anchor: str | None, is_mapping: bool) -> None:
        self.anchor = anchor
        self.is_mapping = is_mapping
        self.key: str | int | None = None
        self.index = -1
        self.expect_key = True
        self.size = 1

    def child_part(self) -> str | int | None:
        return self.key if self.is_mapping else self.index


def _scan_events(text: str, file: str) -> None:
    """Refuse over-deep, recursive, alias-bomb and huge-integer documents before PyYAML composes them."""
    levels: list[_Level] = []
    sizes: dict[str, int] = {}  # anchor -> expanded size of what it names
    open_anchors: set[str] = set()

    def path() -> KeyPath:
        return tuple(p for lvl in levels if (p := lvl.child_part()) is not None)

    def fail(event: yaml.Event, message: str) -> None:
        raise ScenarioError.single(file, event.start_mark.line + 1, format_path(path()), message)

    def add(event: yaml.Event, size: int, key_text: str | None = None) -> None:
        if not levels:
            return
        top = levels[-1]
        if top.is_mapping:
            if top.expect_key:
                top.key = key_text if key_text is not None else "?"
            top.expect_key = not top.expect_key
        top.size += size
        if top.size > MAX_EXPANDED_VALUES:
            fail(event, f"the document expands to more than {MAX_EXPANDED_VALUES:,} values once aliases are "
                        "expanded (an alias bomb?)")

    def before_value() -> None:
        # A sequence item gets the next index before it is scanned, so errors inside it name it.
        if levels and not levels[-1].is_mapping:
            levels[-1].index += 1

    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            before_value()
            if len(levels) >= MAX_DEPTH:
                fail(event, f"nested more than {MAX_DEPTH} levels deep")
            levels.append(_Level(event.anchor, isinstance(event, yaml.MappingStartEvent)))
            if event.anchor:
                open_anchors.add(event.anchor)
        elif isinstance(event, yaml.CollectionEndEvent):
            done = levels.pop()
            if done.anchor:
                sizes[done.anchor] = done.size
                open_anchors.discard(done.anchor)
            add(event, done.size)
        elif isinstance(event, yaml.ScalarEvent):
            before_value()
            if event.style is None and _INTEGER_LIKE.match(event.value) and len(event.value) > MAX_INTEGER_DIGITS:
                fail(event, f"integer of {len(event.value)} digits is out of range")
            if event.anchor:
                sizes[event.anchor] = 1
            add(event, 1, key_text=event.value)
        elif isinstance(event, yaml.AliasEvent):
            before_value()
            if event.anchor in open_anchors:
                fail(event, f"alias *{event.anchor} refers to its own anchor (a recursive structure)")
            add(event, sizes.get(event.anchor, 1), key_text=f"*{event.anchor}")


def load_marked(text: str, file: str) -> MarkedDocument:
    """Parse `text` (one YAML document); raises ``ScenarioError`` for syntax errors and duplicate keys."""
    if len(text) > MAX_FILE_BYTES:
        raise ScenarioError.single(file, 1, "", f"the file is larger than {MAX_FILE_BYTES:,} characters")
    try:
        loader = yaml.SafeLoader(text)
    except yaml.reader.ReaderError as exc:  # a control character: the reader checks the whole text at once
        line = text[: exc.position].count("\n") + 1
        raise ScenarioError.single(file, line, "", f"YAML error: unacceptable character #x{exc.character:04x}: "
                                                   f"{exc.reason}") from None
    try:
        _scan_events(text, file)
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
    except (ValueError, OverflowError) as exc:
        # PyYAML's constructors raise plain errors for values its resolver accepted (a date like 2026-13-45).
        raise ScenarioError.single(file, 1, "", f"YAML value cannot be read: {exc}") from None
    finally:
        loader.dispose()
    lines: dict[KeyPath, int] = {(): node.start_mark.line + 1}
    issues: list[ScenarioIssue] = []
    _record(node, (), lines, issues, file)
    if issues:
        raise ScenarioError(issues)
    return MarkedDocument(file=file, data=data, lines=lines)
