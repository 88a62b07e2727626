"""The exact aiortc/aioice versions ``aiortc_patches`` is written for (pyproject pins them with ``==``).

Checkable without importing either package, so a process that imports aiortc only when it needs it (the
reference relay, at its first session) can still refuse to start with the wrong versions installed. The
source fingerprints of the patched internals are checked by ``aiortc_patches.install``.
"""

from __future__ import annotations

from importlib import metadata

from ..errors import VoxloadError

PINNED_AIORTC_VERSION = "1.16.0"
PINNED_AIOICE_VERSION = "0.13.0"


class PinnedVersionError(VoxloadError, RuntimeError):
    """aiortc or aioice is not the pinned version."""


def check_installed_versions() -> None:
    for package, pinned in (("aiortc", PINNED_AIORTC_VERSION), ("aioice", PINNED_AIOICE_VERSION)):
        try:
            found = metadata.version(package)
        except metadata.PackageNotFoundError:
            raise PinnedVersionError(f"{package}=={pinned} is needed and not installed") from None
        if found != pinned:
            raise PinnedVersionError(f"harness.rtc.aiortc_patches needs {package}=={pinned}, found {found}")
