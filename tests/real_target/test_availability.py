"""Whether the real VoxBento can run here: the suite's one line when it cannot."""

from __future__ import annotations

import subprocess

import pytest

from .conftest import UNAVAILABLE, layout_or_skip


def test_real_voxbento_is_available():
    if UNAVAILABLE:
        pytest.skip(f"conformance suite skipped: {UNAVAILABLE} (tests/real_target needs shared/voxbento beside the repo)")
    layout = layout_or_skip()
    # VoxBento's own interpreter imports its own app package, not ours.
    done = subprocess.run([str(layout.python), "-c", "import fastapi_app, sys; print(sys.version_info[:2])"],
                          cwd=layout.app_dir, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "(3, 13)"
