"""Paths of the reference media relay: their configuration (control API) and their runtime (publisher, readers).

Mirrors MediaMTX as VoxBento deploys it (contract 12.1): ``paths: all_others:`` so any path is created on
demand by WHIP; ``pathDefaults.overridePublisher: yes``; configuration lives in memory only, so a restart
loses every path added through the control API (contract 14.20).

Configuration keys that drive behaviour (contract 12.2 sends exactly these):

- ``alwaysAvailable``: WHEP on the path succeeds with no publisher; readers survive publisher changes.
- ``alwaysAvailableTracks``: the tracks such a path advertises while offline (only Opus is relayed).
- ``overridePublisher``: a new WHIP publisher evicts the current one (false: it is refused with 400).

Other MediaMTX path keys are stored verbatim and reported back, but have no effect here.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .forwarding import PathForwarder

if TYPE_CHECKING:  # sessions.py imports aiortc, which the relay loads only with its first session
    from .sessions import PublisherSession, ReaderSession

# MediaMTX's name of the catch-all path configuration (contract 12.1: `paths: all_others:`).
ALL_OTHERS_CONF = "all_others"


class PathConfError(ValueError):
    """A path configuration body MediaMTX would reject (400)."""


class PathConfExistsError(PathConfError):
    """MediaMTX: 400 ``path already exists``; VoxBento then falls back to PATCH (contract 12.2)."""


class PathConfNotFoundError(KeyError):
    """MediaMTX: 404 ``path not found`` on patch/get/delete of an unconfigured path."""


_BOOL_KEYS = {"alwaysAvailable": "always_available", "overridePublisher": "override_publisher"}


@dataclasses.dataclass
class PathConf:
    name: str
    always_available: bool = False
    always_available_tracks: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    # Contract 12.1: VoxBento's mediamtx.yml sets pathDefaults overridePublisher: yes (also MediaMTX's default).
    override_publisher: bool = True
    other: dict[str, Any] = dataclasses.field(default_factory=dict)

    def apply(self, body: Mapping[str, Any]) -> None:
        """Merge a control-API body into this configuration (add and patch share the merge rules)."""
        if not isinstance(body, Mapping):
            raise PathConfError("the body must be a JSON object")
        for key, value in body.items():
            if key in _BOOL_KEYS:
                if not isinstance(value, bool):
                    raise PathConfError(f"{key}: expected a boolean")
                setattr(self, _BOOL_KEYS[key], value)
            elif key == "alwaysAvailableTracks":
                if not isinstance(value, list) or not all(isinstance(t, Mapping) and "codec" in t for t in value):
                    raise PathConfError("alwaysAvailableTracks: expected a list of objects with a codec")
                self.always_available_tracks = [dict(t) for t in value]
            elif key == "name":
                continue  # MediaMTX ignores a name in the body; the URL names the path
            else:
                self.other[key] = value

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            **self.other,
            "alwaysAvailable": self.always_available,
            "alwaysAvailableTracks": self.always_available_tracks,
            "overridePublisher": self.override_publisher,
        }


def _iso(ts_s: float | None) -> str | None:
    if ts_s is None:
        return None
    return datetime.datetime.fromtimestamp(ts_s, datetime.timezone.utc).isoformat().replace("+00:00", "Z")


class Path:
    """Runtime of one path: at most one publisher, any number of readers, one forwarder."""

    def __init__(self, name: str, forwarder_factory) -> None:
        self.name = name
        self.publisher: PublisherSession | None = None
        self.pending_publishers: set[PublisherSession] = set()
        self.readers: dict[str, ReaderSession] = {}
        self.generation = 0
        self.offline_task: asyncio.Task[None] | None = None  # forwarding.OfflineSource while offline (relay.py)
        self.ready_time_s: float | None = None
        self.forwarder: PathForwarder = forwarder_factory(name, lambda: self.readers.values())

    @property
    def ready(self) -> bool:
        return self.publisher is not None

    def is_idle(self) -> bool:
        return self.publisher is None and not self.pending_publishers and not self.readers


def describe_path(name: str, path: Path | None, conf: PathConf | None) -> dict[str, Any]:
    """One item of MediaMTX ``GET /v3/paths/list`` (a configured path may have no runtime yet)."""
    publisher = path.publisher if path is not None else None
    ready = publisher is not None
    readers = list(path.readers.values()) if path is not None else []
    always_available = conf is not None and conf.always_available
    return {
        "name": name,
        "confName": conf.name if conf is not None else ALL_OTHERS_CONF,
        "source": publisher.describe() if publisher is not None else None,
        "ready": ready,
        "readyTime": _iso(path.ready_time_s if ready else None),
        # MediaMTX >= 1.15: "available" includes the offline stream of alwaysAvailable paths.
        "available": ready or always_available,
        "online": ready,
        "tracks": ["Opus"] if ready or always_available else [],
        "bytesReceived": publisher.bytes_received if publisher is not None else 0,
        "bytesSent": sum(r.bytes_sent for r in readers),
        "readers": [r.describe() for r in readers],
    }


class PathRegistry:
    """Path configurations and runtime paths, in memory only."""

    def __init__(self, forwarder_factory) -> None:
        self._confs: dict[str, PathConf] = {}
        self._paths: dict[str, Path] = {}
        self._forwarder_factory = forwarder_factory

    # --- configuration (control API) ---
    def add_conf(self, name: str, body: Mapping[str, Any]) -> PathConf:
        if name in self._confs:
            raise PathConfExistsError("path already exists")
        conf = PathConf(name)
        conf.apply(body)
        self._confs[name] = conf
        return conf

    def patch_conf(self, name: str, body: Mapping[str, Any]) -> PathConf:
        conf = self._confs.get(name)
        if conf is None:
            raise PathConfNotFoundError("path not found")
        patched = dataclasses.replace(conf, always_available_tracks=list(conf.always_available_tracks), other=dict(conf.other))
        patched.apply(body)  # validate fully before replacing, so a bad patch changes nothing
        self._confs[name] = patched
        return patched

    def get_conf(self, name: str) -> PathConf:
        conf = self._confs.get(name)
        if conf is None:
            raise PathConfNotFoundError("path not found")
        return conf

    def delete_conf(self, name: str) -> None:
        if self._confs.pop(name, None) is None:
            raise PathConfNotFoundError("path not found")

    def conf_for(self, name: str) -> PathConf | None:
        return self._confs.get(name)

    def effective_conf(self, name: str) -> PathConf:
        """The configuration a path runs with: its own, or the all_others defaults."""
        return self._confs.get(name) or PathConf(ALL_OTHERS_CONF)

    def conf_names(self) -> list[str]:
        return sorted(self._confs)

    # --- runtime ---
    def runtime(self, name: str) -> Path | None:
        return self._paths.get(name)

    def ensure_runtime(self, name: str) -> Path:
        path = self._paths.get(name)
        if path is None:
            path = self._paths[name] = Path(name, self._forwarder_factory)
        return path

    async def discard_if_idle(self, name: str) -> None:
        path = self._paths.get(name)
        if path is not None and path.is_idle():
            del self._paths[name]
            await path.forwarder.close()

    def runtimes(self) -> list[Path]:
        return list(self._paths.values())

    def list_items(self) -> list[dict[str, Any]]:
        """MediaMTX lists configured paths and every path with a publisher or readers, sorted by name."""
        names = sorted(set(self._confs) | set(self._paths))
        return [describe_path(name, self._paths.get(name), self._confs.get(name)) for name in names]
