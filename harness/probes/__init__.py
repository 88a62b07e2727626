"""Limit probes: `voxload probe NAME` pushes one known VoxBento limit (contract section 14) and states a finding.

Probes (one module each, registered in ``PROBES``):

- ``workers``        transcription worker cap, 429 vs admin-form 500, captions per booth, leaked slots (contract 7)
- ``db-pool``        stepped concurrency of DB-bound reads and writes; knee of latency vs concurrency (contract 9)
- ``booth-state``    booth:state fan-out delay vs sockets, slow-reader drill, portal restart drill (contract 8, 14.17)
- ``media-restart``  media server restart: WHEP recovery, lost path configuration, listener reconnect storm (14.19-20)
- ``security``       login / admin-login / register / join-code limiters, X-Forwarded-For, CSRF (contract 3.9, 10);
                     runs only with ``--i-own-this-target``

Shared parts: ``registry`` (``PROBES``, imported lazily through this package), ``target`` (embedded stack
child or ``--host``; restart drills), ``event`` and ``actors`` (the
probe's event and scripted people, all through ``harness.clients``), ``reconnect`` (media actors that reconnect
with the browser's WHEP back-off), ``slow_reader`` (booth-state's frozen-socket drill), ``ramp`` (stepped
concurrency plans, also a scenario's ``load.ramp``), ``knee`` (kneedle), ``finding`` (the output format below),
``shapes`` (Locust LoadTestShape classes for scenarios; imports locust, so only the Locust process imports it).

Output: every probe run makes a run folder with ``harness.results.run_folder.RunDirectory`` (``<results-dir>/<run-id>/``,
run.json as for rehearsals) and writes into ``<run>/probes/<name>/``:

``finding.json`` (schema_version 1)::

    {"schema_version": 1,
     "probe": "<name>",
     "title": "short title",
     "limit": {"name": "what was limited", "value": <number or null when not reached/absent>, "unit": "..."},
     "configured": {"<KNOB>": <value>, ...},        knob values the probe knows (set with --set, or VoxBento's
                                                     default on the embedded stack); {} when unknown (--host)
     "method": "how the limit/knee was found, e.g. 'first start refused' or 'kneedle on p95 latency vs concurrency'",
     "knee": {"x": <num>, "y": <num>, "x_column": "...", "y_column": "..."} or null,
                                                     columns name columns of one of the data files
     "symptom": "what it looks like from outside",
     "trigger": "the request or message that showed it",
     "evidence": ["short lines"],
     "paragraph": "one readable paragraph for an event lead",
     "severity": "info|warning|critical",
     "recommendation": "what to change",
     "data": [{"file": "data.csv", "description": "...",
               "columns": {"col": "meaning with unit"},   every documented column is in the CSV header
               "plot": {"x": "col", "y": ["col", ...], "series": "col or null", "kind": "line|scatter|bar"} or null}]}

CSV data files sit next to finding.json; they are streamed while the probe measures (flushed at least every
second), so an interrupted probe leaves its data up to that point (run.json then says interrupted/failed and no
finding.json is written). Empty cells mean "no value" (e.g. no latency when every request failed).
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    # PEP 562: ``PROBES`` imports every probe (clients, numpy, the media bridge); it is built on first use so
    # that ``harness.scenario.ramp`` stays light for the scenario loader, which validates ``load.ramp`` with it.
    if name == "PROBES":
        from .registry import PROBES

        return PROBES
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
