"""`voxload probe`: help lists every probe, bad flags and unreachable targets are one line and exit 2,
and the workers and security probes find the configured truth of the embedded reference stack.

Each probe runs as the real CLI in a subprocess against its own embedded stack (``--set`` knobs).
"""

from __future__ import annotations

import csv
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from harness.probes import PROBES
from harness.results.finding_schema import FINDING_SCHEMA_VERSION

REPO = Path(__file__).resolve().parents[1]
FAST_BCRYPT = ("--set", "REFSTACK_BCRYPT_ROUNDS=4")


def voxload(*args: str, timeout_s: float = 240, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True, timeout=timeout_s,
                          cwd=REPO, env=env)


def probe(tmp_path: Path, name: str, *args: str, run_id: str = "r1") -> tuple[dict, Path]:
    done = voxload("probe", name, "--results-dir", str(tmp_path), "--run-id", run_id, *FAST_BCRYPT, *args)
    assert done.returncode == 0, done.stderr
    probe_dir = tmp_path / run_id / "probes" / name
    finding = json.loads((probe_dir / "finding.json").read_text())
    assert json.loads((tmp_path / run_id / "run.json").read_text())["status"] == "finished"
    return finding, probe_dir


def rows(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def check_format(finding: dict, probe_dir: Path) -> None:
    """The documented finding format: one paragraph, every data file present with its documented columns."""
    assert finding["schema_version"] == FINDING_SCHEMA_VERSION
    assert finding["severity"] in {"info", "warning", "critical"}
    assert finding["paragraph"] and "\n" not in finding["paragraph"]
    for data in finding["data"]:
        header = next(csv.reader(open(probe_dir / data["file"], newline="")))
        assert set(data["columns"]) <= set(header)
        assert data["plot"]["kind"] in {"line", "scatter", "bar"}


def test_help_lists_every_probe():
    done = voxload("probe", "--help")
    assert done.returncode == 0
    assert set(PROBES) == {"workers", "db-pool", "booth-state", "media-restart", "security"}
    for name in PROBES:
        assert name in done.stdout


@pytest.mark.parametrize("args, message", [
    (("probe", "nosuch"), "invalid choice"),
    (("probe", "workers", "--booths", "1"), "--booths 1"),
    (("probe", "workers", "--set", "lowercase"), "KEY=VALUE"),
    (("probe", "security"), "--i-own-this-target"),
    (("probe", "db-pool", "--levels", "4,2"), "increase"),
    (("probe", "workers", "--restart-cmd", "true"), "apply to --host"),
    (("probe", "media-restart", "--listeners", "0"), "--listeners 0"),
    (("probe", "media-restart", "--media-api-url", "http://127.0.0.1:9"), "applies to --host"),
])
def test_bad_flags_are_one_line_and_exit_2(tmp_path, args, message):
    done = voxload(*args, "--results-dir", str(tmp_path))
    assert done.returncode == 2
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr


def test_unreachable_host_is_one_line_and_exit_2(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    env = {**__import__("os").environ, "VOXLOAD_ADMIN_PASSWORD": "x"}
    done = voxload("probe", "workers", "--host", f"http://127.0.0.1:{port}", "--results-dir", str(tmp_path), env=env)
    assert done.returncode == 2
    assert "unreachable" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())  # no run folder for a target that never answered


def test_unknown_knob_of_the_embedded_stack_is_one_line(tmp_path):
    done = voxload("probe", "workers", "--set", "NOT_A_KNOB=1", "--results-dir", str(tmp_path), "--run-id", "k")
    assert done.returncode == 2 and "unknown knob" in done.stderr
    assert json.loads((tmp_path / "k" / "run.json").read_text())["status"] == "failed"


def test_workers_cap_of_4_is_found_with_429_500_silence_and_leaked_slots(tmp_path):
    finding, probe_dir = probe(tmp_path, "workers", "--set", "REFSTACK_MAX_TOTAL_WORKERS=4", "--booths", "6",
                               "--observe-s", "7", "--cycles", "2")
    check_format(finding, probe_dir)
    assert finding["limit"]["value"] == 4
    assert finding["configured"] == {"REFSTACK_MAX_TOTAL_WORKERS": 4}
    attempts = rows(probe_dir / "attempts.csv")
    api = [(int(r["booth_index"]), r["status"]) for r in attempts if r["route"] == "api"]
    assert api == [(1, "200"), (2, "200"), (3, "200"), (4, "200"), (5, "429"), (6, "429")]
    # Contract 7.2: the admin settings form on the first refused booth is a 500.
    assert [(r["booth_index"], r["status"]) for r in attempts if r["route"] == "admin_form"] == [("5", "500")]
    captions = {int(r["booth_index"]): int(r["caption_messages"]) for r in rows(probe_dir / "captions.csv")}
    assert all(captions[i] > 0 for i in (1, 2, 3, 4)) and captions[5] == captions[6] == 0
    slots = {r["phase"]: int(r["leaked_slots"]) for r in rows(probe_dir / "slots.csv")}
    # Contract 7.1 / 14.3: interpreters leaving do not stop workers; stop/start cycles leak nothing here.
    assert slots == {"after_drop": 4, "after_cycles": 0}
    assert "at most 4 transcription workers" in finding["paragraph"]


def test_workers_default_cap_of_10_is_found_as_10(tmp_path):
    finding, probe_dir = probe(tmp_path, "workers", "--booths", "11", "--no-audio", "--observe-s", "0", "--cycles", "0")
    assert finding["limit"]["value"] == 10
    assert finding["configured"] == {"REFSTACK_MAX_TOTAL_WORKERS": 10}
    statuses = [r["status"] for r in rows(probe_dir / "attempts.csv") if r["route"] == "api"]
    assert statuses == ["200"] * 10 + ["429"]


def test_security_reports_configured_and_absent_limits(tmp_path):
    finding, probe_dir = probe(tmp_path, "security", "--i-own-this-target", "--admin-attempts", "15", "--register-attempts", "12")
    check_format(finding, probe_dir)
    verdicts = {r["check"]: r for r in rows(probe_dir / "limits.csv")}
    # Contract 10: configured limits (10 per email on /login, 10 failures per IP on the join code) ...
    assert finding["limit"]["value"] == 10
    assert (verdicts["login_per_email"]["verdict"], verdicts["login_per_email"]["limit_value"]) == ("limited", "10")
    assert (verdicts["join_code_per_ip"]["verdict"], verdicts["join_code_per_ip"]["limit_value"]) == ("limited", "10")
    # ... and absent ones: /admin/login, /register; X-Forwarded-For resets the join-code limiter; no CSRF (3.9).
    assert verdicts["admin_login"]["verdict"] == "absent" and verdicts["admin_login"]["attempts"] == "15"
    assert verdicts["register"]["verdict"] == "absent" and verdicts["register"]["attempts"] == "12"
    assert verdicts["join_code_xff"]["verdict"] == "bypassed"
    assert verdicts["csrf_admin_form"]["verdict"] == "accepted"
    assert finding["severity"] == "critical"


def test_security_sees_a_limiter_switched_off(tmp_path):
    finding, probe_dir = probe(tmp_path, "security", "--i-own-this-target", "--set", "REFSTACK_LOGIN_RATE_LIMIT=false",
                               "--login-attempts", "12", "--admin-attempts", "3", "--register-attempts", "3", "--join-attempts", "12")
    verdicts = {r["check"]: r["verdict"] for r in rows(probe_dir / "limits.csv")}
    assert verdicts["login_per_email"] == "absent" and finding["limit"]["value"] is None
    assert finding["configured"]["REFSTACK_LOGIN_RATE_LIMIT"] is False
    assert verdicts["join_code_per_ip"] == "limited"


def _db_pool(tmp_path: Path, size: int, overflow: int) -> tuple[dict, Path]:
    return probe(tmp_path, "db-pool", "--levels", "2,4,8,16,32", "--step-s", "2", "--set", f"REFSTACK_DB_POOL_SIZE={size}",
                 "--set", f"REFSTACK_DB_MAX_OVERFLOW={overflow}", "--set", "REFSTACK_DB_POOL_TIMEOUT_S=0.02",
                 "--set", "REFSTACK_WEBHOOK_LOOP=false", run_id=f"pool{size}")


def test_db_pool_of_2_breaks_earlier_than_5_plus_10(tmp_path, small_db_pool_probe):
    done, run = small_db_pool_probe  # the pool of 2: shared with test_report and test_cli_paths (conftest.py)
    assert done.returncode == 0, done.stderr
    assert json.loads((run / "run.json").read_text())["status"] == "finished"
    small_dir = run / "probes" / "db-pool"
    small = json.loads((small_dir / "finding.json").read_text())
    large, _ = _db_pool(tmp_path, 5, 10)
    check_format(small, small_dir)
    assert small["configured"] == {"REFSTACK_DB_POOL_SIZE": 2, "REFSTACK_DB_MAX_OVERFLOW": 0, "REFSTACK_DB_POOL_TIMEOUT_S": 0.02}
    # 2 connections with a 20 ms pool timeout fail below the 16 concurrent requests that 15 connections still serve.
    assert small["limit"]["value"] is not None and small["limit"]["value"] < 16
    assert large["limit"]["value"] is None or large["limit"]["value"] > small["limit"]["value"]
    steps = rows(small_dir / "steps.csv")
    assert {r["kind"] for r in steps} == {"read", "write"}
    assert any(int(r["errors_5xx"]) > 0 for r in steps)  # contract 9.3: the pool timeout is a bare 500


def test_booth_state_restart_loses_exactly_the_in_memory_state(tmp_path):
    finding, probe_dir = probe(tmp_path, "booth-state", "--booths", "2", "--participants", "2,3", "--worker-wait-s", "7",
                               "--slow-reader-s", "14")
    check_format(finding, probe_dir)
    lost = {r["item"]: (r["kept_in"], r["lost"]) for r in rows(probe_dir / "restart.csv")}
    # Contract 8.1: process memory is lost, the database is not.
    assert lost == {
        "booth registry (state route)": ("memory", "1"),
        "join-code limiter counter": ("memory", "1"),
        "broadcast_unlocked": ("memory", "1"),
        "transcription worker": ("memory", "1"),
        "event, rooms and booths": ("database", "0"),
        "unused invite token": ("database", "0"),
    }
    assert finding["limit"]["value"] == 4
    recovery = {r["what"]: r for r in rows(probe_dir / "recovery.csv")}
    assert recovery["sockets dropped"]["count"] == "5"  # 2 interpreters, 2 coordinator sockets, 1 caption socket
    fan = rows(probe_dir / "fanout.csv")
    assert [(r["participants_per_booth"], r["sockets"], r["missing"]) for r in fan] == [("2", "4", "0"), ("3", "6", "0")]

    # Slow-reader drill (contract 8.3 [V], 14.12): large random chats fill the frozen socket's buffers; the sequential
    # fan-out stalls, so the observers starve, and the keepalive (1 + 1 + 10 s here) cannot reap the frozen client.
    assert finding["configured"] == {"REFSTACK_WS_PING_INTERVAL_S": 1, "REFSTACK_WS_PING_TIMEOUT_S": 1}
    traffic = rows(probe_dir / "slow_reader.csv")
    frozen_chats = {}
    for r in traffic:
        if r["phase"] == "frozen":
            frozen_chats[r["socket"]] = frozen_chats.get(r["socket"], 0) + int(r["chats"])
    pushed = max(int(r["chats_sent"]) for r in traffic)
    assert pushed > 0 and all(frozen_chats[s] < pushed for s in ("observer-1", "observer-2"))
    presence = rows(probe_dir / "frozen_presence.csv")
    assert float(presence[-1]["t_s"]) >= 13 and presence[-1]["listed"] == presence[-1]["active"] == "1"
    after = [r for r in traffic if r["phase"] == "after_close" and r["socket"].startswith("observer")]
    assert sum(int(r["messages"]) for r in after) > 0  # dropping the frozen socket un-sticks the fan-out
    assert "the other sockets starved" in finding["paragraph"] and "did not reap it" in finding["paragraph"]


def test_booth_state_slow_reader_without_backlog_is_reaped_by_the_keepalive(tmp_path):
    """One chat does not fill the frozen socket's buffers: nobody starves and the shortened keepalive removes the
    frozen participant after ping interval + timeout + the 10 s close timeout (contract 8.4), within the window."""
    finding, probe_dir = probe(tmp_path, "booth-state", "--booths", "1", "--participants", "2", "--no-restart",
                               "--slow-reader-chats", "1", "--slow-reader-s", "18")
    presence = rows(probe_dir / "frozen_presence.csv")
    assert presence[0]["listed"] == presence[0]["active"] == "1"
    gone = next(float(r["t_s"]) for r in presence if r["listed"] == "0")
    assert 8.0 <= gone <= 18.0
    assert all(r["active"] == "0" for r in presence if float(r["t_s"]) >= gone)
    assert "keepalive reaped it" in finding["paragraph"] and "starved" not in finding["paragraph"]
