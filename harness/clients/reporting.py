"""How clients report timed round trips: a plain callable shaped like Locust's ``events.request.fire``.

A client takes ``report=None`` or a callable and calls it with keyword arguments only::

    report(request_type="GET", name="/admin/events/[id]/rooms/", response_time=12.5,
           response_length=2048, exception=None)

``response_time`` is milliseconds; the keyword keeps Locust's name so that a Locust user can pass
``environment.events.request.fire`` unchanged (conventions item 2). Only round trips that were
actually timed are reported: fire-and-forget sends are never reported with a made-up 0 ms.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

ReportFn = Callable[..., Any]

# request_type values for WebSocket traffic, so Locust stats group them apart from HTTP methods.
WS_CONNECT = "WSCONNECT"
WS_ROUND_TRIP = "WS"


def report_round_trip(
    report: ReportFn | None,
    *,
    request_type: str,
    name: str,
    response_time_ms: float,
    response_length: int,
    exception: BaseException | None,
) -> None:
    """Call `report` (if any) with Locust's keyword names; a no-op without a reporter."""
    if report is None:
        return
    report(
        request_type=request_type,
        name=name,
        response_time=response_time_ms,
        response_length=response_length,
        exception=exception,
    )
