"""A per-run cgroup with a process limit: caps fork bombs and finds every leftover.

RLIMIT_NPROC does nothing while the real uid is root, even inside a user namespace,
so where the host lets us, each run gets its own ``pids`` cgroup (v1 hierarchy, or a
v2 subtree with the controller delegated). The run's first process joins it before it
execs anything, so all its descendants are counted, and after the run every process
still in the group is killed — including double-forked daemons that left the
process group.
"""

from __future__ import annotations

import logging
import os
import signal
import time
import uuid
from pathlib import Path

__all__ = ["PidsCgroup", "pids_cgroup_root"]

logger = logging.getLogger(__name__)

_V1_ROOT = Path("/sys/fs/cgroup/pids")
_V2_MOUNT = Path("/sys/fs/cgroup")
_PREFIX = "starcoder-sandbox-"


def _own_v2_group() -> Path | None:
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            if line.startswith("0::"):
                return _V2_MOUNT / line[3:].lstrip("/")
    except OSError:
        return None
    return None


def pids_cgroup_root() -> Path | None:
    """The folder under which this process may create ``pids`` cgroups, if any."""
    if (_V1_ROOT / "cgroup.procs").exists() and os.access(_V1_ROOT, os.W_OK):
        return _V1_ROOT
    group = _own_v2_group()
    if group is None:
        return None
    try:
        delegated = "pids" in (group / "cgroup.subtree_control").read_text().split()
    except OSError:
        return None
    return group if delegated and os.access(group, os.W_OK) else None


def _remove_stale(root: Path) -> None:
    """Delete empty groups left by processes that died before cleaning up."""
    for group in root.glob(f"{_PREFIX}*"):
        owner = group.name[len(_PREFIX) :].split("-", 1)[0]
        if owner.isdigit() and not Path(f"/proc/{owner}").exists():
            try:
                group.rmdir()  # fails, harmlessly, while a task is still inside
            except OSError:
                pass


class PidsCgroup:
    """One run's cgroup: created with a ``pids.max``, emptied and removed afterwards."""

    def __init__(self, path: Path) -> None:
        """Wrap an existing cgroup folder (use :meth:`create`)."""
        self.path = path

    @classmethod
    def create(cls, max_pids: int) -> PidsCgroup | None:
        """Create a fresh group limited to ``max_pids`` tasks; None where not allowed."""
        root = pids_cgroup_root()
        if root is None:
            return None
        _remove_stale(root)
        path = root / f"{_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:12]}"
        try:
            path.mkdir()
            (path / "pids.max").write_text(str(max_pids))
        except OSError as exc:
            logger.warning("cannot set up a pids cgroup at %s: %s", path, exc)
            try:
                path.rmdir()
            except OSError:
                pass
            return None
        return cls(path)

    def wrap(self, argv: list[str]) -> list[str]:
        """``argv`` prefixed so that its process joins this group before it execs."""
        join = 'echo $$ > "$0/cgroup.procs" && exec "$@"'
        return ["/bin/sh", "-c", join, str(self.path), *argv]

    def pids(self) -> list[int]:
        """The processes in the group now."""
        try:
            text = (self.path / "cgroup.procs").read_text()
        except OSError:
            return []
        return [int(pid) for pid in text.split()]

    def kill_all(self, timeout_s: float = 5.0) -> int:
        """SIGKILL every process in the group until it is empty; return how many."""
        killed: set[int] = set()
        deadline = time.monotonic() + timeout_s
        while (pids := self.pids()) and time.monotonic() < deadline:
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed.add(pid)
                except ProcessLookupError:
                    pass
            time.sleep(0.01)
        if self.pids():
            logger.warning("processes still in %s after %.1fs", self.path, timeout_s)
        return len(killed)

    def remove(self) -> None:
        """Kill what is left and delete the group."""
        if self.pids():
            self.kill_all()
        for _ in range(100):
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.01)  # the kernel frees the tasks a moment after the kill
        logger.warning("could not remove cgroup %s", self.path)
