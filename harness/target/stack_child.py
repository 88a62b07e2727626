"""Child process that runs the embedded reference stack for the harness and restarts its parts on command.

``python -m harness.target.stack_child --data-dir DIR`` (knobs as a JSON object in ``$VOXLOAD_STACK_KNOBS``, so
secrets such as ``BOOTH_ACCESS_TOKEN`` never appear on a command line) starts the portal and the
media relay on free loopback ports (``harness.refstack.stack.Stack``, the same supervisor `voxload stack
up` uses), prints one JSON line ``{"ready": true, "portal_url": ..., "media_url": ..., "media_api_url": ...}``
and then obeys one command per stdin line, answering each with one JSON line:

    restart-portal   -> {"done": "restart-portal", "down_s": <s>}   (SIGTERM, respawn, wait for /healthz)
    restart-media    -> {"done": "restart-media", "down_s": <s>}    (the relay loses its path configuration)
    stop / EOF       -> stops both and exits 0

Errors are one JSON line ``{"error": "..."}`` (exit 2 at startup). Rehearsals and probes reach the reference
stack only through this child (``harness.target.embedded``): the harness process itself never imports
``harness.refstack``. The admin password and the JWT secret come from the parent through ``ADMIN_PASSWORD``
and ``SECRET_KEY`` in the environment and are never printed.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

# The knobs as a JSON object in the environment (harness.target.embedded sets it): secrets stay out of `ps`.
KNOBS_ENV_VAR = "VOXLOAD_STACK_KNOBS"
RESTART_PORTAL = "restart-portal"
RESTART_MEDIA = "restart-media"
STOP = "stop"


def _say(**message: object) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.target.stack_child")
    parser.add_argument("--data-dir", type=lambda text: Path(os.path.abspath(text)), required=True)
    parser.add_argument("--startup-timeout-s", type=float, default=30.0)
    args = parser.parse_args(argv)

    from harness.refstack.portal.config import KNOBS, ConfigError, Settings
    from harness.refstack.stack import Stack, StackConfig, StackError

    try:
        knobs = json.loads(os.environ.pop(KNOBS_ENV_VAR, "{}"))
    except ValueError:
        _say(error=f"${KNOBS_ENV_VAR} is not a JSON object")
        return 2
    if not isinstance(knobs, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in knobs.items()):
        _say(error=f"${KNOBS_ENV_VAR} must map knob names to strings")
        return 2
    unknown = sorted(set(knobs) - set(KNOBS))
    if unknown:
        _say(error=f"unknown knob {unknown[0]!r} (see `voxload stack up --help`)")
        return 2
    try:
        Settings.from_env({**os.environ, **knobs})
    except ConfigError as exc:
        _say(error=str(exc))
        return 2
    stack = Stack(StackConfig.ephemeral(data_dir=args.data_dir, portal_env=knobs, startup_timeout_s=args.startup_timeout_s))
    # SIGTERM from the parent is an orderly stop: children get SIGTERM and are awaited.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        try:
            stack.start()
        except StackError as exc:
            _say(error=str(exc))
            return 2
        _say(ready=True, portal_url=stack.portal_url, media_url=stack.media_http_url, media_api_url=stack.media_api_url)
        for line in sys.stdin:
            command = line.strip()
            try:
                if command == RESTART_PORTAL:
                    _say(done=command, down_s=round(stack.restart_portal(), 3))
                elif command == RESTART_MEDIA:
                    _say(done=command, down_s=round(stack.restart_media(), 3))
                elif command == STOP:
                    break
                elif command:
                    _say(error=f"unknown command {command!r}")
            except StackError as exc:
                _say(error=str(exc))
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
