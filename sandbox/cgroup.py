"""A run's own cgroup: a process limit, a memory limit for the whole run, every leftover found.

RLIMIT_NPROC does nothing while the real uid is root, even inside a user namespace,
and RLIMIT_AS bounds each process, not the run (64 processes of 2 GiB each are
128 GiB). So where the host lets us, each run gets a cgroup of its own:

- cgroup v1: a group in the ``pids`` hierarchy (``pids.max``) and one in the
  ``memory`` hierarchy (``memory.limit_in_bytes``, and ``memory.memsw.limit_in_bytes``
  where swap is accounted, so the run cannot swap instead), each under this
  process's own group there, or the hierarchy's root where that is all we see;
- cgroup v2: one group under this process's own, with whichever of the ``pids``
  (``pids.max``) and ``memory`` (``memory.max``, ``memory.swap.max`` 0) controllers
  are delegated to it.

The run's first process joins them before it execs anything, so all its descendants
are counted, and after the run every process still in them is killed — including
double-forked daemons that left the process group.
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import time
import uuid
from pathlib import Path

__all__ = [
    "PidsCgroup",
    "RunCgroup",
    "memory_cgroup_file",
    "memory_cgroup_root",
    "pids_cgroup_root",
]

logger = logging.getLogger(__name__)

_CGROUP_FS = Path("/sys/fs/cgroup")
_PREFIX = "starcoder-sandbox-"


def _own_groups() -> dict[str, str]:
    """This process's cgroup by v1 controller name, and by "" for the v2 hierarchy."""
    groups: dict[str, str] = {}
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return groups
    for line in lines:
        _id, controllers, path = line.split(":", 2)
        for name in controllers.split(",") if controllers else [""]:
            groups[name] = path.lstrip("/")
    return groups


def _writable(folder: Path) -> bool:
    return (folder / "cgroup.procs").exists() and os.access(folder, os.W_OK)


def _v1_root(controller: str) -> Path | None:
    """Where to create groups in the v1 hierarchy of ``controller``, if it is ours to write."""
    mount = _CGROUP_FS / controller
    if not (mount / "cgroup.procs").exists():
        return None
    own = mount / _own_groups().get(controller, "")
    # A container without a cgroup namespace sees its own group as the mount's root.
    folder = own if own.is_dir() else mount
    return folder if _writable(folder) else None


def _v2_root(controller: str) -> Path | None:
    """This process's v2 group, if ``controller`` is delegated below it and it is writable."""
    relative = _own_groups().get("")
    if relative is None:
        return None
    group = _CGROUP_FS / relative
    try:
        delegated = controller in (group / "cgroup.subtree_control").read_text().split()
    except OSError:
        return None
    return group if delegated and _writable(group) else None


def _root(controller: str) -> Path | None:
    return _v1_root(controller) or _v2_root(controller)


def pids_cgroup_root() -> Path | None:
    """The folder under which this process may create ``pids`` cgroups, if any."""
    return _root("pids")


def memory_cgroup_root() -> Path | None:
    """The folder under which this process may create ``memory`` cgroups, if any."""
    return _root("memory")


def memory_cgroup_file() -> str | None:
    """The file that caps a run's memory here (``memory.max`` or ``memory.limit_in_bytes``)."""
    root = memory_cgroup_root()
    if root is None:
        return None
    return "memory.limit_in_bytes" if (root / "memory.limit_in_bytes").exists() else "memory.max"


def _remove_stale(root: Path) -> None:
    """Delete empty groups left by processes that died before cleaning up."""
    for group in root.glob(f"{_PREFIX}*"):
        owner = group.name[len(_PREFIX) :].split("-", 1)[0]
        if owner.isdigit() and not Path(f"/proc/{owner}").exists():
            try:
                group.rmdir()  # fails, harmlessly, while a task is still inside
            except OSError:
                pass


def _read_key(path: Path, key: str) -> int:
    """The number after ``key`` in a flat keyed cgroup file (0 where absent)."""
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key and value.strip().isdigit():
                return int(value)
    except OSError:
        pass
    return 0


def _read_int(path: Path) -> int:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return 0


class RunCgroup:
    """One run's cgroups: created with ``pids.max``, given a memory limit, emptied and removed."""

    def __init__(self, paths: list[Path], *, pids: Path | None, memory: Path | None) -> None:
        """Wrap existing cgroup folders (use :meth:`create`)."""
        self.paths = paths
        self.pids_group = pids
        self.memory_group = memory

    @classmethod
    def create(cls, max_pids: int) -> RunCgroup | None:
        """Create the run's groups, with ``pids.max`` where the host allows; None where none.

        Where memory can be limited too the group is ready for :meth:`limit_memory`.
        """
        roots = {name: _root(name) for name in ("pids", "memory")}
        name = f"{_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:12]}"
        made: dict[Path, Path] = {}
        for root in dict.fromkeys(r for r in roots.values() if r is not None):
            _remove_stale(root)
            try:
                (root / name).mkdir()
                made[root] = root / name
            except OSError as exc:
                logger.warning("cannot create a cgroup under %s: %s", root, exc)
        pids = made.get(roots["pids"]) if roots["pids"] else None
        memory = made.get(roots["memory"]) if roots["memory"] else None
        if not made:
            return None
        group = cls(list(made.values()), pids=pids, memory=memory)
        if pids is not None and not group._write(pids / "pids.max", max_pids):
            group.pids_group = None
        return group

    def _write(self, path: Path, value: int | str) -> bool:
        try:
            path.write_text(str(value))
        except OSError as exc:
            logger.warning("cannot set %s to %s: %s", path, value, exc)
            return False
        return True

    def limit_memory(self, limit_bytes: int) -> bool:
        """Cap the memory of every process in the run together; False where it cannot."""
        group = self.memory_group
        if group is None:
            return False
        if (group / "memory.limit_in_bytes").exists():  # v1
            done = self._write(group / "memory.limit_in_bytes", limit_bytes)
            if done and (group / "memory.memsw.limit_in_bytes").exists():
                done = self._write(group / "memory.memsw.limit_in_bytes", limit_bytes)
        else:
            done = self._write(group / "memory.max", limit_bytes)
            if done and (group / "memory.swap.max").exists():
                done = self._write(group / "memory.swap.max", 0)
        return done

    def memory_usage(self) -> tuple[int, int]:
        """The run's peak memory in bytes, and how many of its processes the kernel killed for it."""
        group = self.memory_group
        if group is None:
            return 0, 0
        if (group / "memory.max_usage_in_bytes").exists():  # v1
            peak, events = group / "memory.max_usage_in_bytes", group / "memory.oom_control"
        else:
            peak, events = group / "memory.peak", group / "memory.events"
        return _read_int(peak), _read_key(events, "oom_kill")

    def wrap(self, argv: list[str]) -> list[str]:
        """``argv`` prefixed so that its process joins these groups before it execs."""
        joins = [f"echo $$ > {shlex.quote(str(path / 'cgroup.procs'))}" for path in self.paths]
        return ["/bin/sh", "-c", " && ".join([*joins, 'exec "$@"']), "sandbox-join", *argv]

    def pids(self) -> list[int]:
        """The processes in the groups now."""
        found: set[int] = set()
        for path in self.paths:
            try:
                found.update(int(pid) for pid in (path / "cgroup.procs").read_text().split())
            except OSError:
                pass
        return sorted(found)

    def kill_all(self, timeout_s: float = 5.0) -> int:
        """SIGKILL every process in the groups until they are empty; return how many."""
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
            logger.warning("processes still in %s after %.1fs", self.paths, timeout_s)
        return len(killed)

    def remove(self) -> None:
        """Kill what is left and delete the groups."""
        if self.pids():
            self.kill_all()
        for path in self.paths:
            _remove_folder(path)


def _remove_folder(path: Path) -> None:
    for _ in range(100):
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.01)  # the kernel frees the tasks a moment after the kill
    logger.warning("could not remove cgroup %s", path)


# The older name, from when the group limited only processes.
PidsCgroup = RunCgroup
