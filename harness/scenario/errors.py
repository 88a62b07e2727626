"""Errors of scenario loading: every problem is one line naming file, LINE and key path.

``ScenarioIssue`` is one problem; ``ScenarioError`` carries one or more of them (sorted by line) and its
``str()`` is the first issue's line, e.g.::

    scenarios/bad.yaml:14: event.rooms[0].booths[1].interpreters: must be >= 1 (got 0)

The CLI prints the issues and exits 2 with no traceback.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from ..errors import VoxloadError


@dataclasses.dataclass(frozen=True, order=True)
class ScenarioIssue:
    file: str
    line: int
    path: str  # "event.rooms[0].booths[1].interpreters"; "" for the document itself
    message: str

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{self.file}:{self.line}: {where}{self.message}"


class ScenarioError(VoxloadError):
    """A scenario file that cannot be used. ``issues`` is never empty."""

    def __init__(self, issues: Iterable[ScenarioIssue]) -> None:
        ordered = tuple(sorted(set(issues), key=lambda i: (i.line, i.path, i.message)))
        if not ordered:
            raise ValueError("ScenarioError needs at least one issue")
        self.issues = ordered
        super().__init__(str(ordered[0]))

    @classmethod
    def single(cls, file: str, line: int, path: str, message: str) -> ScenarioError:
        return cls([ScenarioIssue(file, line, path, message)])

    @property
    def file(self) -> str:
        return self.issues[0].file

    @property
    def line(self) -> int:
        return self.issues[0].line

    @property
    def path(self) -> str:
        return self.issues[0].path

    def lines(self) -> list[str]:
        return [str(issue) for issue in self.issues]
