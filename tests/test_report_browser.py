"""report.html in a real headless Chromium: every embedded image decodes, the page logs no error and makes no
network request, and a screenshot of the first page is kept in the run folder (CI artefact).

Chromium is Debian's ``chromium`` package; when /usr/bin/chromium is missing the session installs it once
with apt-get (as root on CI). The page is driven over the DevTools protocol with websocket-client.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import subprocess
import time

import httpx
import pytest
import websocket

from harness.report import build_report

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
                  "--window-size=1200,1600")
SCREENSHOT = "report-screenshot.png"


@pytest.fixture(scope="session")
def chromium() -> str:
    path = shutil.which("chromium") or CHROMIUM
    if not os.path.exists(path):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]):
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
            assert done.returncode == 0, f"{' '.join(cmd)} failed (needs root): {done.stderr[-2000:]}"
    return path


class DevTools:
    """A minimal Chrome DevTools Protocol client: commands by id, every event kept in order."""

    def __init__(self, ws_url: str) -> None:
        self.ws = websocket.create_connection(ws_url, timeout=30, suppress_origin=True)
        self.ids = itertools.count(1)
        self.events: list[dict] = []

    def call(self, method: str, **params) -> dict:
        call_id = next(self.ids)
        self.ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == call_id:
                assert "error" not in message, f"{method}: {message['error']}"
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, method: str, timeout_s: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            seen = next((e for e in self.events if e.get("method") == method), None)
            if seen:
                return seen
            self.events.append(json.loads(self.ws.recv()))
        raise AssertionError(f"no {method} within {timeout_s} s")

    def close(self) -> None:
        self.ws.close()


@pytest.fixture
def browser(chromium, tmp_path):
    profile = tmp_path / "profile"
    proc = subprocess.Popen([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = profile / "DevToolsActivePort"  # Chromium writes its chosen port here
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()) and time.monotonic() < deadline:
            assert proc.poll() is None, "chromium exited at start"
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        pages = [t for t in httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json() if t["type"] == "page"]
        tools = DevTools(pages[0]["webSocketDebuggerUrl"])
        yield tools
        tools.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_report_loads_every_image_without_errors_or_network(smoke_run, browser):
    _, run_dir = smoke_run
    paths = build_report(run_dir)
    plots = paths.html.read_text().count('<figure id="plot-')
    for domain in ("Page", "Runtime", "Log", "Network"):
        browser.call(f"{domain}.enable")
    browser.call("Page.navigate", url=paths.html.resolve().as_uri())
    browser.wait_for("Page.loadEventFired")
    result = browser.call("Runtime.evaluate", returnByValue=True, expression=(
        "JSON.stringify(Array.from(document.images).map(i => ({alt: i.alt, complete: i.complete, w: i.naturalWidth, h: i.naturalHeight})))"))
    images = json.loads(result["result"]["value"])
    assert len(images) == plots >= 6
    assert [i for i in images if not (i["complete"] and i["w"] > 0 and i["h"] > 0)] == []
    shot = browser.call("Page.captureScreenshot", format="png")
    (run_dir / SCREENSHOT).write_bytes(base64.b64decode(shot["data"]))
    assert (run_dir / SCREENSHOT).read_bytes().startswith(b"\x89PNG")
    errors = [e for e in browser.events if e.get("method") == "Runtime.exceptionThrown"
              or (e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] in ("error", "assert"))
              or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")
              or e.get("method") == "Network.loadingFailed"]
    assert errors == []
    requested = [e["params"]["request"]["url"][:80] for e in browser.events if e.get("method") == "Network.requestWillBeSent"]
    assert requested and all(url.startswith(("file:", "data:")) for url in requested)
