"""Every row of tests/data/bad_inputs.yaml, run as a person types it: one line on stderr, exit 2, nothing else.

Each command runs in a fresh temporary working directory with relative paths (the README's commands, the
locustfile through a relative ``-f``), so a message that names a path shows what the operator would see.
Nothing may start: these fail during validation, so each run takes about as long as the interpreter's imports.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO

TABLE = Path(__file__).parent / "data" / "bad_inputs.yaml"
ROWS = yaml.safe_load(TABLE.read_text(encoding="utf-8"))
SMOKE = (REPO / "scenarios" / "smoke.yaml").read_text(encoding="utf-8")


def _deep_nesting() -> str:
    return "name: deep\ndescription: " + "[" * 5000 + "]" * 5000 + "\n"


def _billion_laughs() -> str:
    # Nine levels of nine aliases each: 9**9 (387 million) strings once expanded, 10 lines of text.
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 10):
        name, prev = chr(ord("a") + level), chr(ord("a") + level - 1)
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def _huge_booths() -> str:
    return ("name: huge\n"
            "event:\n"
            "  generate:\n"
            "    # 700,000 rooms x 1 booth\n"
            "    rooms: 700000\n"
            "    booths_per_room: 1\n"
            "    languages: [en]\n"
            "    listeners_per_booth: 1\n"
            "load:\n"
            "  stages: [{duration_s: 10, listeners: 1, spawn_rate_per_s: 1}]\n"
            "slos:\n"
            "  http_error_rate: ['rate < 0.02']\n")


GENERATORS = {"deep_nesting": _deep_nesting, "billion_laughs": _billion_laughs, "huge_booths": _huge_booths}


def _content(spec) -> bytes:
    if isinstance(spec, str):
        return spec.encode("utf-8")
    if "smoke" in spec:
        text = SMOKE
        for old, new in spec["smoke"]:
            assert old in text, f"{old!r} is not in scenarios/smoke.yaml"
            text = text.replace(old, new, 1)
        return text.encode("utf-8")
    if "latin1" in spec:
        return spec["latin1"].encode("latin-1")
    return GENERATORS[spec["generate"]]().encode("utf-8")


def _argv(cmd: list[str], cwd: Path) -> list[str]:
    program, *args = cmd
    if program == "voxload":
        return [sys.executable, "-m", "harness", *args]
    if program == "scenario":
        return [sys.executable, "-m", "harness.scenario", *args]
    assert program == "locust", program
    locustfile = os.path.relpath(REPO / "scenarios" / "conference.py", cwd)
    return [sys.executable, "-m", "locust", "-f", locustfile, "--headless", *args]


def test_the_table_has_at_least_40_distinct_inputs():
    ids = [row["id"] for row in ROWS]
    assert len(ids) == len(set(ids)) >= 40


@pytest.mark.parametrize("row", ROWS, ids=[row["id"] for row in ROWS])
def test_bad_input_is_one_line_and_exit_2(row, tmp_path):
    cwd = tmp_path / "work"
    cwd.mkdir()
    for folder in row.get("dirs", []):
        (cwd / folder).mkdir(parents=True)
    for name, spec in row.get("files", {}).items():
        (cwd / name).write_bytes(_content(spec))
    before = sorted(p.relative_to(cwd) for p in cwd.rglob("*"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOXLOAD_")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])
    done = subprocess.run(_argv(row["cmd"], cwd), cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    expected = row["expect"].replace("{cwd}", str(cwd))
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [expected]
    assert done.stdout == ""
    if "secret" in row:
        assert row["secret"] not in done.stderr + done.stdout
    # Validation fails before anything starts: no run folder, no stack data, nothing new in the directory.
    assert sorted(p.relative_to(cwd) for p in cwd.rglob("*")) == before
