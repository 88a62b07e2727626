"""The walls between the harness's houses (docs/architecture.md), read from the import statements of every module.

Each house may import only the houses listed for it in HOUSE_MAY_IMPORT; a new edge is a design decision: make it
here and in docs/architecture.md, together. Function-level imports count the same as top-level ones.
"""

from __future__ import annotations

import ast
import collections
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parents[1] / "harness"

# house -> houses it may import (a house is a subpackage of harness/, or a top-level module)
HOUSE_MAY_IMPORT: dict[str, set[str]] = {
    "errors": set(),
    "waiting": {"errors"},  # poll_until: the one deadline loop
    "contract": set(),  # VoxBento facts shared by clients, scenario and the reference target
    "rtc": {"errors"},  # aiortc patches, pins, synthetic audio, timing markers: shared by media and refstack
    "results": {"errors"},
    "scenario": {"errors", "contract", "results", "inputs"},
    "inputs": {"errors", "results"},
    "clients": {"errors", "contract", "rtc"},
    "media": {"errors", "waiting", "rtc", "results"},
    "browser": {"errors", "contract", "rtc", "media", "results"},
    "target": {"errors", "waiting", "contract", "clients", "refstack"},  # the only way into the reference target: its child process and `stack up`
    "probes": {"errors", "waiting", "inputs", "contract", "rtc", "clients", "media", "results", "scenario", "target"},
    "rehearsal": {"errors", "waiting", "inputs", "contract", "rtc", "clients", "media", "browser", "results", "scenario",
                  "target", "report"},
    "report": {"errors", "inputs", "results", "browser"},
    "cli": {"errors", "inputs", "clients", "results", "scenario", "target", "report", "rehearsal", "probes"},
    "__main__": {"cli"},
    "refstack": {"rtc", "contract"},  # the reference target stands alone, so it cannot agree with our clients by accident
}
# Third-party packages that decide which process a module may live in.
GEVENT_PACKAGES = {"locust", "gevent", "flask"}
GEVENT_HOUSES = {"rehearsal"}  # the Locust process; media engines, probes and the stack must never monkey-patch


def _module_name(path: Path, root: Path = HARNESS) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _house(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def _imports(path: Path, root: Path = HARNESS) -> list[tuple[str, int]]:
    """(absolute module name, line) for every import in the file, relative ones resolved."""
    module = _module_name(path, root)
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # `from package import x` imports the module x where x is one (`from harness import __version__` does not)
            folder = root.parent.joinpath(*target.split("."))
            submodules = [alias.name for alias in node.names
                          if (folder / alias.name).is_dir() or (folder / f"{alias.name}.py").exists()]
            found += [(f"{target}.{name}", node.lineno) for name in submodules]
            if target != "harness" and len(submodules) < len(node.names):
                found.append((target, node.lineno))
    return found


def _edges(root: Path = HARNESS) -> dict[tuple[str, str], list[str]]:
    edges: dict[tuple[str, str], list[str]] = collections.defaultdict(list)
    for path in sorted(root.rglob("*.py")):
        source = _house(_module_name(path, root))
        if source is None:
            continue
        for target, line in _imports(path, root):
            where = f"{path.relative_to(root.parent)}:{line}"
            if target.startswith("harness."):
                house = _house(target)
                if house != source:
                    edges[(source, house)].append(where)
            elif target.split(".")[0] in GEVENT_PACKAGES:
                edges[(source, target.split(".")[0])].append(where)
    return edges


def test_every_house_is_declared():
    houses = {_house(_module_name(p)) for p in HARNESS.rglob("*.py")} - {None}
    assert houses - set(HOUSE_MAY_IMPORT) == set(), "a new house needs its walls in HOUSE_MAY_IMPORT and docs/architecture.md"


def _forbidden_edges(root: Path = HARNESS) -> list[str]:
    forbidden = []
    for (source, target), where in sorted(_edges(root).items()):
        if target in GEVENT_PACKAGES:
            if source not in GEVENT_HOUSES:
                forbidden.append(f"{source} -> {target} (only {sorted(GEVENT_HOUSES)} may import it): {where[0]}")
        elif target not in HOUSE_MAY_IMPORT.get(source, set()):
            forbidden.append(f"{source} -> {target}: {', '.join(where[:3])}")
    return forbidden


def test_houses_import_only_what_they_may():
    assert _forbidden_edges() == []


def test_houses_form_no_cycle():
    graph = collections.defaultdict(set)
    for source, target in _edges():
        if target not in GEVENT_PACKAGES:
            graph[source].add(target)
    # Declared walls first: a cycle there is a design error even before code uses it.
    for name, allowed in (("declared", HOUSE_MAY_IMPORT), ("imported", graph)):
        state: dict[str, int] = {}

        def visit(house: str, path: list[str]) -> None:
            state[house] = 1
            for nxt in sorted(allowed.get(house, ())):
                if state.get(nxt) == 1:
                    pytest.fail(f"{name} cycle: {' -> '.join(path + [house, nxt])}")
                if nxt not in state:
                    visit(nxt, path + [house])
            state[house] = 2

        for house in sorted(allowed):
            if house not in state:
                visit(house, [])


def test_the_walls_catch_forbidden_edges(tmp_path):
    """Relative imports are resolved and function-level imports count: a tree with three leaks fails three ways."""
    root = tmp_path / "harness"
    (root / "refstack" / "portal").mkdir(parents=True)
    (root / "media").mkdir()
    (root / "refstack" / "portal" / "leak.py").write_text("from ...clients import tokens\n")
    (root / "media" / "engine.py").write_text("def run():\n    import gevent\n")
    (root / "scenario").mkdir()
    (root / "probes").mkdir()
    (root / "scenario" / "model.py").write_text("from harness import probes\n")
    found = _forbidden_edges(root)
    assert [line.split(":")[0] for line in found] == [
        "media -> gevent (only ['rehearsal'] may import it)", "refstack -> clients", "scenario -> probes"]


def test_the_architecture_page_states_the_same_walls():
    """docs/architecture.md's house table says what HOUSE_MAY_IMPORT enforces, so the page cannot drift."""
    page = (HARNESS.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    table = page.split("## The houses", 1)[1].split("\n## ", 1)[0]
    stated = {}
    for row in table.splitlines():
        cells = [cell.strip() for cell in row.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        house = cells[0].strip("`").removesuffix(".py").rstrip("/")
        stated[house] = set() if cells[2] == "nothing" else {name.strip() for name in cells[2].split(",")}
    declared = {house: allowed for house, allowed in HOUSE_MAY_IMPORT.items() if house != "__main__"}
    assert stated == declared


def _module_graph(root: Path = HARNESS) -> dict[str, set[str]]:
    """module -> harness modules it imports (a submodule importing its own package's __init__ is not counted)."""
    modules = {_module_name(path, root): path for path in root.rglob("*.py")}
    graph: dict[str, set[str]] = collections.defaultdict(set)
    for module, path in modules.items():
        for target, _ in _imports(path, root):
            if target not in modules:
                parent = target.rsplit(".", 1)[0]
                target = parent if parent in modules else target
            if target in modules and target != module and not module.startswith(target + "."):
                graph[module].add(target)
    return graph


def _module_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        stack.append(module)
        for nxt in sorted(graph.get(module, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state and (found := visit(module)):
            return found
    return None


def test_modules_form_no_cycle():
    """Not even through a function-level import (which only hides a cycle from the interpreter)."""
    assert _module_cycle(_module_graph()) is None


def test_a_module_cycle_is_found(tmp_path):
    root = tmp_path / "harness"
    (root / "report").mkdir(parents=True)
    (root / "report" / "build.py").write_text("def go():\n    from . import render\n")
    (root / "report" / "render.py").write_text("from .build import go\n")
    assert _module_cycle(_module_graph(root)) == ["harness.report.build", "harness.report.render", "harness.report.build"]
