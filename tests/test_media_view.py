"""Media figures out of Locust's request table (issue 14): their own web UI tab, route and console block.

The unit tests feed :class:`MediaFigures` engine records shaped like ``harness.media.aggregate``'s; the Locust
tests run the real locustfile (web UI and headless) against the embedded stack, under the heavy lock.
"""

from __future__ import annotations

import csv
import json
import re
import signal
import subprocess
import sys
import textwrap
import time
import urllib.parse
import urllib.request

import pytest

from conftest import REPO, run_locust
from harness.rehearsal.media_view import MEDIA_COLUMNS, MEDIA_ROUTE, MEDIA_TAB_KEY, MediaFigures, console_block

SHORT = str(REPO / "tests" / "data" / "scenarios" / "short.yaml")


def _listener_group(booth: str, role: str, packets: int, expected: int, lost: int, p95: float) -> dict:
    group = {"booth": booth, "role": role, "sessions": 2, "packets": packets, "expected": expected, "lost": lost,
             "latency_ms": {"p50": p95 / 2, "p95": p95}}
    if role == "probe":
        group["marker_latency_ms"] = {"p50": p95 / 2, "p95": p95 + 10}
    return group


def test_figures_sum_packets_and_keep_latest_and_worst_p95():
    figures = MediaFigures()
    figures.add_engine_record({"groups": [_listener_group("b1", "listener", 100, 100, 0, 40.0),
                                          _listener_group("b1", "probe", 50, 50, 0, 80.0),
                                          {"booth": "b1", "role": "publisher", "sessions": 1, "packets": 50,
                                           "lateness_ms": {"p95": 1.5}}]})
    figures.add_engine_record({"groups": [_listener_group("b1", "listener", 90, 100, 10, 30.0)]})
    rows = {(r.booth, r.role): r for r in figures.rows()}
    listener = rows[("b1", "listener")]
    assert (listener.packets, listener.expected, listener.lost) == (190, 200, 10)
    assert listener.loss_pct == 5.0
    assert (listener.latency_p95_ms, listener.worst_p95_ms) == (30.0, 40.0)
    assert rows[("b1", "probe")].latency_p95_ms == 90.0  # a probe shows its marker (mouth-to-ear) latency
    assert rows[("b1", "publisher")].latency_p95_ms == 1.5 and rows[("b1", "publisher")].loss_pct is None
    table = rows[("b1", "listener")].as_table_row()
    assert set(table) == {key for key, _ in MEDIA_COLUMNS}
    assert all("_" not in key for key in table)  # Locust's web UI camel-cases keys before matching columns


def test_workers_snapshots_replace_their_previous_ones_and_merge():
    worker = MediaFigures()
    worker.add_engine_record({"groups": [_listener_group("b1", "listener", 100, 100, 0, 40.0)]})
    master = MediaFigures()
    master.replace_from("w1", worker.snapshot())
    worker.add_engine_record({"groups": [_listener_group("b1", "listener", 100, 110, 10, 60.0)]})
    master.replace_from("w1", json.loads(json.dumps(worker.snapshot())))  # as it travels (msgpack-able dicts)
    master.replace_from("w2", [{"booth": "b1", "role": "listener", "sessions": 1, "packets": 5, "expected": 5,
                                "lost": 0, "latency_p95_ms": 20.0, "worst_p95_ms": 20.0}])
    [row] = master.rows()
    assert (row.packets, row.expected, row.lost) == (205, 215, 10)  # w1's second snapshot replaced its first
    assert row.worst_p95_ms == 60.0
    assert master.snapshot() == []  # a master forwards only its own engines' rows (it has none)


def test_console_block_lists_each_booth_and_role_and_is_empty_without_media():
    assert console_block(MediaFigures()) == []
    figures = MediaFigures()
    figures.add_engine_record({"groups": [_listener_group("booth-x", "probe", 10, 12, 2, 70.0)]})
    lines = console_block(figures)
    assert lines[0].startswith("voxload media")
    assert re.search(r"booth-x\s+probe\s+10\s+2\s+16\.67\s+80\s+80", lines[2]), lines


def test_failures_without_a_round_trip_are_counted_with_no_timing_sample():
    """A failed handover (no duration) and a blocked listener count as Locust failures, with no 0 ms sample in
    the aggregated row; a completed handover keeps its real duration. In a subprocess: locust monkey-patches."""
    script = textwrap.dedent("""
        import json
        from locust.env import Environment
        from harness.rehearsal.handover import HandoverRecord
        from harness.rehearsal.users import count_failure, report_handover
        env = Environment()
        env.create_local_runner()  # its stats listen to the request event
        report_handover(env, HandoverRecord("b1", 0.0, True, 250.0, None, 1))
        report_handover(env, HandoverRecord("b1", 0.0, False, None, "not completed within 10 s", 2))
        count_failure(env, "LISTENER", "blocked in auth mode", RuntimeError("needs a token"))
        total = env.stats.total
        print(json.dumps({"requests": total.num_requests, "failures": total.num_failures,
                          "min_ms": total.min_response_time, "times": total.response_times,
                          "errors": sorted(e.method for e in env.stats.errors.values())}))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert data["requests"] == 1 and data["failures"] == 2
    assert data["min_ms"] == 250 and data["times"] == {"250": 1}  # no 0 ms sample
    assert data["errors"] == ["HANDOVER", "LISTENER"]


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read()


def _stats_rows_types(path) -> set[str]:
    with open(path, newline="") as fh:
        return {row["Type"] for row in csv.DictReader(fh)}


def test_headless_run_keeps_media_out_of_the_request_table_and_prints_it(tmp_path):
    result = run_locust(tmp_path, SHORT, "headless")
    out = result.stdout + result.stderr
    run = tmp_path / "headless"
    assert (run / "summary.json").exists(), out[-3000:]
    types = _stats_rows_types(run / "locust_stats.csv")
    assert "MEDIA" not in types and "GET" in types, types
    block = out[out.index("voxload media"):].splitlines()
    booth_rows = [line for line in block[2:6] if re.match(r"\s+\S+\s+(listener|probe|publisher)\s+\d+", line)]
    probe = [line for line in booth_rows if " probe " in line]
    assert probe and int(probe[0].split()[2]) > 100, block[:6]  # the probe listener's packets, counted
    # The run-folder media samples (what the SLOs read) are still written.
    assert any((run / "media").glob("media-*-listeners.csv"))


def test_web_ui_has_a_media_tab_whose_route_serves_the_figures(tmp_path):
    from harness.refstack.stack import free_port

    port = free_port()
    cmd = [sys.executable, "-m", "locust", "-f", str(REPO / "scenarios" / "conference.py"), "--scenario", SHORT,
           "--results-dir", "reports", "--run-id", "webui", "--web-host", "127.0.0.1", "--web-port", str(port)]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                page = _get(base + "/").decode()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "the web UI did not come up"
                time.sleep(0.3)
        args = json.loads(re.search(r"window\.templateArgs = (\{.*\})", page).group(1))
        assert {"title": "Media", "key": MEDIA_TAB_KEY} in args["extended_tabs"]
        [table] = [t for t in args["extended_tables"] if t["key"] == MEDIA_TAB_KEY]
        assert [c["key"] for c in table["structure"]] == [k for k, _ in MEDIA_COLUMNS]
        form = urllib.parse.urlencode({"user_count": 1, "spawn_rate": 1}).encode()
        with urllib.request.urlopen(urllib.request.Request(base + "/swarm", data=form), timeout=10) as response:
            assert json.loads(response.read())["success"]
        probe_rows = []
        deadline = time.monotonic() + 120
        while not probe_rows:
            assert proc.poll() is None and time.monotonic() < deadline, "no media figures on the route"
            time.sleep(1.0)
            served = json.loads(_get(base + MEDIA_ROUTE))
            probe_rows = [r for r in served["rows"] if r["role"] == "probe" and r["packets"] > 0 and r["p95"]]
        assert served["columns"] == [k for k, _ in MEDIA_COLUMNS]
        stats = json.loads(_get(base + "/stats/requests"))
        [extended] = [e for e in stats["extended_stats"] if e["key"] == MEDIA_TAB_KEY]
        assert any(r["role"] == "probe" and r["packets"] > 0 for r in extended["data"])
        assert not [s for s in stats["stats"] if s["method"] == "MEDIA"], stats["stats"]
        while json.loads(_get(base + "/stats/requests"))["state"] != "stopped":
            assert proc.poll() is None and time.monotonic() < deadline + 120, "the load shape did not end"
            time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    run = tmp_path / "reports" / "webui"
    assert "MEDIA" not in _stats_rows_types(run / "locust_stats.csv")
    assert "voxload media" in out, out[-3000:]


def test_locust_web_ui_serves_the_media_tab_rows_and_route():
    """Locust's real web UI app (Flask test client), in a subprocess: locust monkey-patches on import."""
    script = textwrap.dedent("""
        import json, re
        from locust import HttpUser, task
        from locust.env import Environment
        from harness.rehearsal.media_view import MediaFigures, install_web_ui

        class U(HttpUser):
            host = "http://127.0.0.1:9"
            @task
            def t(self):
                pass

        env = Environment(user_classes=[U])
        env.create_local_runner()
        web_ui = env.create_web_ui("127.0.0.1", 0)
        figures = MediaFigures()
        figures.add_engine_record({"groups": [{"booth": "b1", "role": "probe", "sessions": 1, "packets": 50,
                                               "expected": 50, "lost": 0, "latency_ms": {"p95": 20.0},
                                               "marker_latency_ms": {"p95": 88.0}}]})
        install_web_ui(web_ui, figures)
        client = web_ui.app.test_client()
        page = client.get("/").get_data(as_text=True)
        args = json.loads(re.search(r"window\\.templateArgs = (\\{.*\\})", page).group(1))
        stats = client.get("/stats/requests").get_json()
        media = client.get("/voxload/media").get_json()
        print(json.dumps({"tabs": args.get("extended_tabs"), "tables": args.get("extended_tables"),
                          "extended": stats.get("extended_stats"), "stats": stats["stats"], "media": media}))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert data["tabs"] == [{"title": "Media", "key": MEDIA_TAB_KEY}]
    assert [c["key"] for c in data["tables"][0]["structure"]] == [k for k, _ in MEDIA_COLUMNS]
    [extended] = data["extended"]
    assert extended["key"] == MEDIA_TAB_KEY
    assert extended["data"] == [{"booth": "b1", "role": "probe", "sessions": 1, "packets": 50, "lost": 0,
                                 "loss": 0.0, "p95": 88.0, "worst": 88.0}]
    assert all(row["method"] != "MEDIA" for row in data["stats"])
    assert data["media"]["rows"] == extended["data"]
