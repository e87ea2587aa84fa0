"""The fresh temporary folder of one run: the untrusted files, and nothing else of ours.

Layout (host side)::

    <root>/code/      the files to run, read-only to the run (solution.py, test_solution.py)
    <root>/lib/       a copy of the harness (tiers that do not bind it from the package)
    <root>/work/      scratch: the run's working folder (tiers without a tmpfs)
    <root>/out/       the harness's own files: JUnit report, coverage data
    <root>/home/      $HOME of the run
    <root>/tmp/       $TMPDIR of the run
    <root>/etc/       a two-line passwd and group for uid 65534

Under bubblewrap only ``code`` and ``etc`` are used (read-only binds); the rest lives
in the sandbox's tmpfs and never touches the host disk.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["INSIDE_DIR", "Workspace", "create_workspace", "remove_workspace", "safe_name"]

INSIDE_DIR = Path(__file__).resolve().parent / "inside"
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")
_PASSWD = "nobody:x:65534:65534:nobody:/tmp/home:/usr/sbin/nologin\n"
_GROUP = "nogroup:x:65534:\n"


@dataclass(frozen=True)
class Workspace:
    """Host paths of one run's temporary folder."""

    root: Path
    code: Path
    lib: Path
    scratch: Path
    out: Path
    home: Path
    tmp: Path
    etc: Path


def safe_name(name: str) -> str:
    """Return ``name`` if it is a plain file name (no folders, no leading dot), else raise."""
    if not _NAME.match(name) or name in {".", ".."}:
        raise ValueError(f"not a plain file name: {name!r}")
    return name


def create_workspace(files: dict[str, str], *, owner_uid: int | None = None, copy_harness: bool = True) -> Workspace:
    """Make a fresh folder holding exactly ``files``; writable parts owned by ``owner_uid``.

    ``copy_harness`` puts a copy of the harness in ``lib`` (tiers that cannot bind it).
    """
    for name in files:
        safe_name(name)
    root = Path(tempfile.mkdtemp(prefix="starcoder-sandbox-"))
    ws = Workspace(
        root=root, code=root / "code", lib=root / "lib", scratch=root / "work",
        out=root / "out", home=root / "home", tmp=root / "tmp", etc=root / "etc",
    )  # fmt: skip
    try:
        _fill(ws, files, owner_uid, copy_harness)
    except BaseException:
        remove_workspace(ws)
        raise
    return ws


def _fill(ws: Workspace, files: dict[str, str], owner_uid: int | None, copy_harness: bool) -> None:
    ws.code.mkdir()
    for name, text in files.items():
        path = ws.code / name
        path.write_text(text, encoding="utf-8")
        path.chmod(0o444)
    ws.code.chmod(0o555)
    if copy_harness:
        shutil.copytree(INSIDE_DIR, ws.lib, ignore=shutil.ignore_patterns("__pycache__"))
    ws.etc.mkdir()
    (ws.etc / "passwd").write_text(_PASSWD)
    (ws.etc / "group").write_text(_GROUP)
    for folder in (ws.scratch, ws.out, ws.home, ws.tmp):
        folder.mkdir(mode=0o700)
        if owner_uid is not None:
            os.chown(folder, owner_uid, owner_uid)
    if owner_uid is not None:
        ws.root.chmod(0o711)  # let the unprivileged uid reach its folders, not list them


def remove_workspace(ws: Workspace) -> None:
    """Delete the run's folder, whatever the run left in it."""

    def _unlock(func: object, path: str, _exc: object) -> None:
        try:
            os.chmod(os.path.dirname(path), 0o700)
            os.chmod(path, 0o700)
        except OSError:
            return
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            try:
                os.unlink(path)
            except OSError:
                pass

    shutil.rmtree(ws.root, onerror=_unlock)
