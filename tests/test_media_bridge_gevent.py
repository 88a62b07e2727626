"""The bridge inside a gevent monkey-patched process (as in a Locust worker), driven by many greenlets at once.

Runs a real script in a subprocess (monkey patching must happen before anything else is imported), against
the real relay, and checks: every concurrent call succeeds (one writer lock per socket: no
ConcurrentObjectUseError when many greenlets close at once), the hub keeps ticking while the bridge waits
on engines, per-second pushes reach a plain callable, and a killed engine raises EngineCrashed in a greenlet.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx


REPO_ROOT = str(Path(__file__).resolve().parents[1])

SCRIPT = textwrap.dedent(
    """
    from gevent import monkey
    monkey.patch_all()

    import json, os, signal, sys, time
    import gevent
    from harness.media.bridge import MediaBridge
    from harness.media.errors import EngineCrashed
    heavy_imports = sorted(m for m in ("aiortc", "av", "numpy") if m in sys.modules)

    http_url, results = sys.argv[1], sys.argv[2]
    lags_ms, stats, errors = [], [], []
    running = True

    def ticker():
        while running:
            t = time.monotonic()
            gevent.sleep(0.01)
            lags_ms.append((time.monotonic() - t - 0.01) * 1000)

    tick = gevent.spawn(ticker)
    bridge = MediaBridge(results, engines=1, on_stats=stats.append).start()
    publisher = bridge.publish(http_url + "/gev/1/es/whip", "gev-1-es")

    def listen(i):
        try:
            return bridge.listen(http_url + "/gev/1/es/whep", "gev-1-es", probe=(i == 0))
        except Exception as exc:
            errors.append(repr(exc))

    handles = [h for h in gevent.joinall([gevent.spawn(listen, i) for i in range(30)]) if h.value]
    handles = [g.value for g in handles]
    gevent.sleep(2.5)

    def close(handle):
        try:
            bridge.close(handle)
        except Exception as exc:
            errors.append(repr(exc))

    gevent.joinall([gevent.spawn(close, h) for h in handles + [publisher]])
    os.kill(bridge.engines["e0"].proc.pid, signal.SIGKILL)
    crashed = None
    try:
        with gevent.Timeout(10):
            bridge.hello("e0")
    except EngineCrashed as exc:
        crashed = str(exc)
    running = False
    tick.join()
    bridge.stop()
    listener_packets = sum(g["packets"] for r in stats for g in r["groups"] if g["role"] in ("listener", "probe"))
    print(json.dumps({
        "patched": monkey.is_module_patched("socket"), "heavy_imports": heavy_imports,
        "listeners": len(handles), "errors": errors, "pushes": len(stats),
        "listener_packets": listener_packets, "max_lag_ms": max(lags_ms), "crashed": crashed,
    }))
    """
)




def test_bridge_under_gevent(relay, tmp_path):
    assert httpx.post(f"{relay.media_api_url}/v3/config/paths/add/gev/1/es", json={"alwaysAvailable": True}).status_code == 200
    script = tmp_path / "gevent_bridge.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": REPO_ROOT}
    done = subprocess.run([sys.executable, str(script), relay.media_http_url, str(tmp_path / "results")],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["patched"] is True
    assert report["heavy_imports"] == []  # the bridge keeps aiortc/av/numpy out of the Locust process
    assert report["errors"] == []
    assert report["listeners"] == 30
    assert report["pushes"] >= 2 and report["listener_packets"] > 30 * 50
    # The hub was never blocked for long (a blocking bridge would stall it for the whole setup/sleep).
    assert report["max_lag_ms"] < 1000
    assert report["crashed"] and "e0 died (exit code -9)" in report["crashed"]
