"""Operator input checked where it enters: target URLs, results folders, run ids (one owner per rule).

Every command that takes ``--host`` or ``--results-dir`` (``voxload rehearse``, ``voxload probe``, the
locustfile's flags) and the scenario's ``target.host`` use these checks, so the same mistake gets the same
one line everywhere. Paths are made absolute here, at the point they enter: child processes run with other
working directories (the embedded portal runs in its data folder), so a relative path would point elsewhere.

The checks are argparse ``type=`` callables (argparse names the flag: "argument --host: ..."), and
``url_problem`` serves the scenario's ``target.host``. Nothing here imports Locust or the reference stack.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

URL_SCHEMES = ("http", "https")


def redact_url(text: str) -> str:
    """`text` with any user-info replaced by ``***``: a password typed into a URL is never echoed."""
    scheme, sep, rest = text.partition("://")
    if not sep:
        return text
    authority, slash, path = rest.partition("/")
    if "@" in authority:
        authority = "***@" + authority.rpartition("@")[2]
    return f"{scheme}{sep}{authority}{slash}{path}"


def url_problem(text: str) -> str | None:
    """Why `text` is not a usable target URL (``http(s)://host[:port][/path]``), or None when it is."""
    if not text.strip():
        return "is empty (omit it to use the embedded reference stack)"
    try:
        parts = urlsplit(text)
        port = parts.port  # parses the port: ValueError when out of 0-65535 or not a number
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    if parts.scheme not in URL_SCHEMES:
        return "must be an http:// or https:// URL"
    if parts.username is not None or parts.password is not None:
        # Issue 4: credentials come only from environment variables, never from command lines or files.
        return "must not contain credentials (give the admin password in $VOXLOAD_ADMIN_PASSWORD)"
    if not parts.hostname:
        return "has no host name"
    if port == 0:
        return "has port 0 (use 1-65535)"
    if parts.query or parts.fragment:
        return "must not have a query (?...) or fragment (#...)"
    if any(ch.isspace() for ch in text):
        return "must not contain spaces"
    return None


def _url_error(text: str) -> str | None:
    problem = url_problem(text)
    return None if problem is None else f"{redact_url(text)!r} {problem}"


def absolute_path(text: str | os.PathLike[str]) -> Path:
    """The path made absolute against the current working directory (``~`` expanded), without resolving links."""
    return Path(os.path.abspath(Path(text).expanduser()))


def folder_problem(path: Path) -> str | None:
    """Why files cannot be created in folder `path` (absolute, created later if missing), or None.

    Nothing is created: the nearest existing folder on the way is tried with a temporary file, which is removed.
    """
    for parent in (path, *path.parents):
        if parent.exists():
            if not parent.is_dir():
                return "is a file, not a folder" if parent == path else f"{parent} is a file, not a folder"
            try:
                # root passes os.access checks even where writes fail (read-only mounts, /sys): try a real file.
                with tempfile.TemporaryFile(dir=parent):
                    pass
            except OSError as exc:
                where = "" if parent == path else f" ({parent})"
                return f"not writable{where}: {exc.strerror or type(exc).__name__}"
            return None
    return None


def _folder_error(text: str | os.PathLike[str]) -> tuple[Path | None, str | None]:
    if not os.fspath(text).strip():
        return None, "is empty"
    path = absolute_path(text)
    problem = folder_problem(path)
    return path, None if problem is None else f"{path} {problem}"


# --- argparse `type=` callables: argparse prefixes "argument --flag:" to the message ---


def url_argument(text: str) -> str:
    """``type=`` for ``--host``: a usable target URL."""
    import argparse

    error = _url_error(text)
    if error is not None:
        raise argparse.ArgumentTypeError(error)
    return text.rstrip("/")


def folder_argument(text: str) -> str:
    """``type=`` for ``--results-dir`` and ``--data-dir``: an absolute folder path where files can be created.

    A string, not a Path: Locust sends parsed options to its workers as msgpack."""
    import argparse

    path, error = _folder_error(text)
    if error is not None:
        raise argparse.ArgumentTypeError(error)
    return str(path)


def run_id_argument(text: str) -> str:
    """``type=`` for ``--run-id``: a run folder name (the rule is ``harness.results.run_folder``')."""
    import argparse

    from .results.run_folder import _RUN_ID_RE

    if not _RUN_ID_RE.match(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a run id: use letters, digits, '.', '_' and '-' (at most 100)")
    return text
