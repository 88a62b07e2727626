"""The probe seam: what every probe is given (:class:`ProbeContext`) and what it must provide (:class:`Probe`).

A probe registers its own flags, runs against ``ctx.target`` within ``ctx.budget_s`` (it checks
``ctx.remaining_s()`` between steps and stops by itself), streams its measurements into CSV files made
with ``ctx.csv(...)`` and returns a :class:`~harness.probes.finding.Finding`, which the CLI validates
and writes next to them.
"""

from __future__ import annotations

import abc
import argparse
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import VoxloadError
from .finding import CsvStream, Finding
from ..target.targets import Target


class ProbeError(VoxloadError, RuntimeError):
    """The probe could not measure what it set out to (one line, exit 2); the data written so far stays."""


class ProbeContext:
    def __init__(self, target: Target, probe_dir: Path, args: argparse.Namespace, budget_s: float,
                 clock_s: Callable[[], float] = time.monotonic) -> None:
        self.target = target
        self.probe_dir = Path(probe_dir)
        self.args = args
        self.budget_s = budget_s
        self.clock_s = clock_s
        self.started_s = clock_s()
        self.log = logging.getLogger(f"harness.probes.{probe_dir.name}")
        self._streams: list[CsvStream] = []

    def elapsed_s(self) -> float:
        return self.clock_s() - self.started_s

    def remaining_s(self) -> float:
        return self.budget_s - self.elapsed_s()

    def out_of_time(self) -> bool:
        return self.remaining_s() <= 0

    def csv(self, file: str, columns: Sequence[str]) -> CsvStream:
        stream = CsvStream(self.probe_dir / file, columns)
        self._streams.append(stream)
        return stream

    def close(self) -> None:
        for stream in self._streams:
            stream.close()


class Probe(abc.ABC):
    """One limit probe. Subclasses set the class attributes and implement ``run``."""

    name: str
    help: str
    # Target knobs whose values the finding reports under "configured" when the operator set them.
    knobs: tuple[str, ...] = ()
    # VoxBento's own values of those knobs (contract sections), reported when the embedded stack runs defaults.
    knob_defaults: Mapping[str, Any] = {}
    # Knobs the probe sets on the embedded stack unless the operator sets them (to fit a drill in its time
    # bound); the finding reports them under "configured" like any other.
    embedded_knobs: Mapping[str, str] = {}
    default_budget_s: float = 300.0
    needs_ownership = False

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Probe-specific flags (common flags are added by the CLI)."""

    @classmethod
    def check_arguments(cls, args: argparse.Namespace) -> None:
        """Raise ValueError with one line for flags that parse but cannot run together."""

    @classmethod
    def configured(cls, target: Target) -> dict[str, Any]:
        """The knob values this probe knows: what the operator set, else VoxBento's default on the embedded stack."""
        known: dict[str, Any] = {}
        for knob in cls.knobs:
            if knob in target.knobs:
                raw = target.knobs[knob]
                known[knob] = _number_or_text(raw)
            elif target.embedded and knob in cls.knob_defaults:
                known[knob] = cls.knob_defaults[knob]
        return known

    @abc.abstractmethod
    def run(self, ctx: ProbeContext) -> Finding:
        """Push the limit, stream the data, return the finding."""


def _number_or_text(raw: str) -> Any:
    for convert in (int, float):
        try:
            return convert(raw)
        except ValueError:
            continue
    lowered = raw.strip().lower()
    if lowered in {"true", "false"}:
        return lowered == "true"
    return raw
