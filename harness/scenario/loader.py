"""Finding and loading scenario files: ``resolve_scenario_path`` and ``load_scenario``.

A scenario is named either by a path (``scenarios/smoke.yaml``, ``/tmp/x.yml``) or by a bare name
(``smoke``), which resolves to ``<scenarios dir>/smoke.yaml``. The scenarios directory is the repository's
``scenarios/`` unless ``VOXLOAD_SCENARIOS_DIR`` points elsewhere.

Loading = YAML with line marks -> JSON Schema -> semantic checks -> the frozen ``Scenario`` model.
Every failure is a ``ScenarioError`` whose issues are one line each: ``FILE:LINE: KEY.PATH: message``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..inputs import absolute_path
from .errors import ScenarioError
from .marked_yaml import load_marked
from .model import Scenario, build_scenario
from .schema_check import schema_issues
from .semantics import semantic_issues

SCENARIOS_DIR_ENV = "VOXLOAD_SCENARIOS_DIR"
DEFAULT_SCENARIO = "conference"
_BARE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


def scenarios_dir() -> Path:
    configured = os.environ.get(SCENARIOS_DIR_ENV)
    if configured:
        return Path(configured)
    # harness/scenario/loader.py -> repository root -> scenarios/
    return Path(__file__).resolve().parents[2] / "scenarios"


def resolve_scenario_path(name_or_path: str | os.PathLike[str]) -> Path:
    """A bare name (``smoke``) -> ``scenarios/smoke.yaml``; anything else is taken as a path."""
    text = os.fspath(name_or_path)
    # A bare name is the package's scenario wherever the command runs, unless a file of that name is right here.
    if _BARE_NAME.match(text) and not Path(text).is_file():
        return scenarios_dir() / f"{text}.yaml"
    return Path(text)


def _display_name(path: Path) -> str:
    # Relative to the working directory when possible: errors read like `scenarios/bad.yaml:14: ...`.
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def parse_scenario(text: str, file: str, source_path: Path | None = None) -> Scenario:
    """Validate YAML `text` (reported as `file`) and build the model; raises ``ScenarioError``."""
    doc = load_marked(text, file)
    issues = schema_issues(doc)
    if issues:
        raise ScenarioError(issues)
    issues, thresholds = semantic_issues(doc)
    if issues:
        raise ScenarioError(issues)
    return build_scenario(doc.data, thresholds, source_path if source_path is not None else Path(file))


def load_scenario(name_or_path: str | os.PathLike[str]) -> Scenario:
    """Load and validate a scenario file (or bare name); raises ``ScenarioError`` with file and line."""
    path = resolve_scenario_path(name_or_path)
    shown = _display_name(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        hint = f" (bare names are looked up in {_display_name(scenarios_dir())}/)" if path.parent == scenarios_dir() else ""
        raise ScenarioError.single(shown, 1, "", f"no such scenario file{hint}") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise ScenarioError.single(shown, 1, "", f"cannot read the file: {reason}") from None
    return parse_scenario(text, shown, path)


def scenario_argument(text: str) -> str:
    """``type=`` for ``--scenario``: a valid scenario, as the absolute path of its file."""
    import argparse

    try:
        return str(absolute_path(load_scenario(text).source_path))
    except ScenarioError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
