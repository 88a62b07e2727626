"""The probe registry: ``voxload probe NAME`` -> the :class:`~harness.probes.base.Probe` subclass that runs it.

Imports every probe module (and with them the clients, numpy and the media bridge), so it is imported only
when a probe is selected; ``harness.probes.PROBES`` forwards here lazily.
"""

from __future__ import annotations

from .base import Probe
from .booth_state import BoothStateProbe
from .db_pool import DbPoolProbe
from .media_restart import MediaRestartProbe
from .security import SecurityProbe
from .workers import WorkersProbe

PROBES: dict[str, type[Probe]] = {p.name: p for p in (WorkersProbe, DbPoolProbe, BoothStateProbe, MediaRestartProbe, SecurityProbe)}
