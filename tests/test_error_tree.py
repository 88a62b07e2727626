"""One exception root: every exception class voxload defines derives from ``harness.errors.VoxloadError``.

The walk imports every module of ``harness`` in a fresh interpreter (Locust first: the rehearsal modules
import it, and its gevent monkey-patching must come before anything opens a socket), so a new module
with its own unrelated root fails here. The reference target (``harness/refstack``) is exempt: it plays
VoxBento and must not depend on the harness (issue 14).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from conftest import REPO

WALK = """
import inspect, json, pkgutil, importlib
import locust  # noqa: F401  (gevent patches before the rest is imported, as in a Locust process)
import harness
from harness.errors import VoxloadError

classes, foreign = [], []
for info in pkgutil.walk_packages(harness.__path__, "harness."):
    if info.name.endswith("__main__") or info.name.startswith("harness.refstack"):
        continue
    module = importlib.import_module(info.name)
    for name, obj in vars(module).items():
        if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == module.__name__:
            classes.append(f"{obj.__module__}.{name}")
            if not issubclass(obj, VoxloadError):
                foreign.append(f"{obj.__module__}.{name} ({', '.join(b.__name__ for b in obj.__bases__)})")
print(json.dumps({"classes": classes, "foreign": foreign}))
"""


@pytest.fixture(scope="module")
def walked() -> dict:
    done = subprocess.run([sys.executable, "-c", WALK], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_every_harness_exception_derives_from_voxload_error(walked):
    assert walked["foreign"] == [], "exception classes outside the VoxloadError tree:\n" + "\n".join(walked["foreign"])


def test_the_walk_reaches_every_house(walked):
    # A walk that silently skipped a package would make the test above pass by accident.
    houses = {name.split(".")[1] for name in walked["classes"]}
    assert {"clients", "media", "rtc", "rehearsal", "results", "scenario", "probes", "report", "target", "browser"} <= houses
    assert "harness.errors.UserError" in walked["classes"]
    assert len(walked["classes"]) >= 60


def test_value_error_bases_are_kept_where_callers_catch_them():
    # Callers catch these as ValueError (argument parsing, sample parsing): joining the tree must not drop that.
    from harness.clients.identifiers import InvalidIdentifier
    from harness.errors import VoxloadError
    from harness.media.rtpstats import RtpHeaderError
    from harness.probes.finding import FindingError
    from harness.results.slo import SloError
    from harness.scenario.ramp import RampError

    for cls in (InvalidIdentifier, RtpHeaderError, FindingError, SloError, RampError):
        assert issubclass(cls, ValueError) and issubclass(cls, VoxloadError), cls


def test_subcommands_raise_the_one_user_error_themselves(tmp_path):
    # cli.py no longer hands UserError to the subcommands: they import it and raise it, and main() turns it into
    # one line and exit 2.
    from harness.errors import UserError
    from harness.report import cli as report_cli

    args = argparse.Namespace(run_dir=None, compare=None, out=None)
    with pytest.raises(UserError, match="give a run folder"):
        report_cli.run(args)


def test_a_subcommand_user_error_is_one_line_and_exit_2(tmp_path):
    done = subprocess.run([sys.executable, "-m", "harness", "report", "--out", "elsewhere", "."], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        "voxload: --out is only for --compare; a run's report is written into its run folder"], done.stderr
