"""Fault knobs of the reference media relay: added one-way delay, seeded random loss, stall.

Set at start by command-line flag (``--delay-ms``, ``--loss-pct``, ``--stall``, ``--seed``) and at run time
through the control API (``GET``/``POST /v3/refstack/faults``, see ``control_api.py``). A restart drill needs no
knob: ``Stack.restart_media()`` restarts the process, which loses all path configuration as MediaMTX does.

Where each fault applies (``forwarding.py``):

- ``delay_ms``: every packet received from a publisher is held this long before it is fanned out (one-way,
  publisher -> relay -> every reader). Changing it at run time never reorders packets.
- ``loss_pct``: each reader independently loses each forwarded packet with this probability, drawn from a
  per-reader ``random.Random`` seeded with ``(seed, reader number)``. Lost packets leave a gap in the reader's
  RTP sequence numbers, like loss on the relay -> listener leg.
- ``stall``: nothing is forwarded on any path while true (packets are dropped, sessions stay up).
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping
from typing import Any


class FaultConfigError(ValueError):
    """A fault knob has an invalid value (HTTP 400 from the control API, one-line error from the CLI)."""


@dataclasses.dataclass(frozen=True)
class FaultConfig:
    delay_ms: float = 0.0
    loss_pct: float = 0.0
    stall: bool = False
    seed: int | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.delay_ms <= 60_000.0:
            raise FaultConfigError(f"delay_ms={self.delay_ms}: must be within 0..60000")
        if not 0.0 <= self.loss_pct <= 100.0:
            raise FaultConfigError(f"loss_pct={self.loss_pct}: must be within 0..100")

    @property
    def delay_s(self) -> float:
        return self.delay_ms / 1000.0

    def updated(self, changes: Mapping[str, Any]) -> FaultConfig:
        """A copy with ``changes`` applied; unknown keys and wrong types are errors, not ignored."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise FaultConfigError(f"unknown fault knob(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        values = dataclasses.asdict(self)
        for key, raw in changes.items():
            values[key] = _coerce(key, raw)
        return FaultConfig(**values)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def reader_rng(self, reader_number: int) -> random.Random:
        """Loss RNG of one reader: reproducible per (seed, reader number) when a seed is set."""
        if self.seed is None:
            return random.Random()
        return random.Random(f"{self.seed}:{reader_number}")


def _coerce(key: str, raw: Any) -> Any:
    if key == "stall":
        if not isinstance(raw, bool):
            raise FaultConfigError(f"stall={raw!r}: expected true or false")
        return raw
    if key == "seed":
        if raw is None:
            return None
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise FaultConfigError(f"seed={raw!r}: expected an integer or null")
        return raw
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise FaultConfigError(f"{key}={raw!r}: expected a number")
    return float(raw)
