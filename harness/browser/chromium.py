"""The system Chromium: where it is, whether it runs, and the one set of flags every canary launches it with.

Debian's ``chromium`` package, never a browser downloaded at run time (``executable_path``). ``$VOXLOAD_CHROMIUM``
names another binary. ``unavailable_reason`` answers in one line why canaries cannot run (no binary, no
Playwright, a binary that does not start), so a run can say so and carry on.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import subprocess
from collections.abc import Sequence

CHROMIUM_ENV_VAR = "VOXLOAD_CHROMIUM"
DEFAULT_CHROMIUM = "/usr/bin/chromium"

# Every canary: headless, no sandbox (containers, CI), no GPU, no traffic of Chromium's own (QUIC, background
# networking, component updates, sync), so that everything on the wire is the target's pages.
BASE_FLAGS: tuple[str, ...] = (
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
    # A canary has no person to click: the page's <audio> and AudioContexts may start without a gesture.
    "--autoplay-policy=no-user-gesture-required",
)


def chromium_path() -> str:
    return os.environ.get(CHROMIUM_ENV_VAR) or DEFAULT_CHROMIUM


def launch_flags(*, fake_audio_wav: str | None = None, secure_origins: Sequence[str] = ()) -> list[str]:
    flags = list(BASE_FLAGS)
    if fake_audio_wav:
        # The interpreter canary's microphone: Chromium's fake capture device playing a WAV file in a loop,
        # and no permission prompt for it.
        flags += ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                  f"--use-file-for-fake-audio-capture={fake_audio_wav}"]
    if secure_origins:
        # getUserMedia and AudioWorklet need a secure context; a plain-http --host that is not loopback is not one.
        flags.append("--unsafely-treat-insecure-origin-as-secure=" + ",".join(secure_origins))
    return flags


@functools.lru_cache(maxsize=4)
def _probe(path: str) -> str | None:
    resolved = shutil.which(path) or (path if os.path.isfile(path) else None)
    if resolved is None:
        return f"Chromium not found at {path} (install Debian's chromium or set ${CHROMIUM_ENV_VAR})"
    # find_spec, not import: this runs in the Locust process, which must not load Playwright next to gevent.
    if importlib.util.find_spec("playwright") is None:
        return "Playwright for Python is not installed (pip install playwright; no browser download needed)"
    try:
        done = subprocess.run([resolved, "--headless", "--no-sandbox", "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"Chromium at {resolved} does not start: {exc}"
    if done.returncode != 0 or "Chromium" not in done.stdout + done.stderr:
        return f"Chromium at {resolved} does not start (exit {done.returncode}): {(done.stderr or done.stdout).strip()[:200]}"
    return None


def unavailable_reason() -> str | None:
    """None when canaries can run; else one line saying why not."""
    return _probe(chromium_path())
