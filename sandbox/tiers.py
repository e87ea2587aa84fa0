"""Isolation tiers: which this machine supports, why, and the command line of each.

Strongest first:

- ``bubblewrap``: new user, PID, network, IPC, UTS and mount namespaces; uid 65534;
  an empty environment; read-only binds of only the interpreter, its packages and the
  run's code; a size-capped tmpfs as the only writable place; no view of the home or
  project folders; no network at all.
- ``unshare``: ``unshare`` (no network, own PID namespace) and ``setpriv`` (no
  capabilities, no new privileges, uid 65534 where the interpreter is reachable by
  it). The host's files stay visible, and writable wherever their permissions allow.
- ``rlimits``: a plain subprocess with resource limits, a clean environment and its
  own session. It contains runaway code, not hostile code.

Every tier also gets the run's own cgroup where the host allows one (see
:mod:`sandbox.cgroup`): ``pids.max`` for the process count, and a memory limit for
the whole run. Detection is cached and never silent: :class:`TierInfo` carries the
tier's name, the reason it was chosen, and what limits processes and memory.

Only bubblewrap runs unless a weaker tier is asked for by name
(:func:`require_isolation`).
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from sandbox.cgroup import memory_cgroup_file, pids_cgroup_root
from sandbox.limits import SandboxLimits
from sandbox.workspace import INSIDE_DIR, Workspace

__all__ = [
    "SANDBOX_GID",
    "SANDBOX_UID",
    "TIERS",
    "IsolationUnavailable",
    "TierInfo",
    "detect_tier",
    "inside_paths",
    "require_isolation",
    "sandbox_argv",
]

logger = logging.getLogger(__name__)

TIERS = ("bubblewrap", "unshare", "rlimits")
SANDBOX_UID = 65534  # nobody
SANDBOX_GID = 65534
_PROBE_TIMEOUT_S = 15.0
_BOX = "/sandbox"  # where a bubblewrap run sees its code and the harness
_REPORT_TMPFS_BYTES = 32 * 1024 * 1024
_EACH_PROCESS = "RLIMIT_AS (each process)"
_INSTALL_HINT = (
    "Install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap; the project's "
    "`make setup` does it), or accept a weaker tier by name: "
    "STARCODER_SANDBOX_REQUIRE_FULL_ISOLATION=0, with STARCODER_SANDBOX_TIER=unshare "
    "(no network, but the host's files stay visible) or rlimits (resource limits only) "
    "to pick one."
)


class IsolationUnavailable(RuntimeError):
    """The isolation a run demands is not available on this machine."""


@dataclass(frozen=True)
class TierInfo:
    """The isolation tier runs will use here, and why.

    Attributes:
        name: "bubblewrap", "unshare" or "rlimits".
        reason: Why this tier (and not a stronger one), in words.
        process_limit: How the process count is capped: "cgroup pids.max",
            "RLIMIT_NPROC", or "none" (root without a writable ``pids`` cgroup, where
            RLIMIT_NPROC has no effect).
        drop_uid: The unshare tier switches to uid 65534 for real (no user namespace).
        memory_limit: How memory is capped: a cgroup file for the whole run plus
            RLIMIT_AS for each process, or RLIMIT_AS alone.
    """

    name: str
    reason: str
    process_limit: str
    drop_uid: bool = False
    memory_limit: str = _EACH_PROCESS

    @property
    def full(self) -> bool:
        """True for the strongest tier."""
        return self.name == "bubblewrap"

    @property
    def private_pidns(self) -> bool:
        """True when the run has a PID namespace of its own."""
        return self.name != "rlimits"

    def __str__(self) -> str:
        """The tier and its reason, e.g. ``bubblewrap (bwrap 0.8.0: ...)``."""
        return f"{self.name} ({self.reason})"

    def as_dict(self) -> dict[str, str | bool]:
        """The tier as reports show it: name, whether it is full isolation, its limits, why."""
        return {
            "tier": self.name,
            "full_isolation": self.full,
            "process_limit": self.process_limit,
            "memory_limit": self.memory_limit,
            "reason": self.reason,
        }


# -- where things are --------------------------------------------------------------------


def _python_roots() -> list[str]:
    """Folders the interpreter and its packages live in: the venv and the base install."""
    roots = [os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)]
    roots.append(os.path.dirname(os.path.dirname(os.path.realpath(sys.executable))))
    return _outermost(roots)


def _outermost(paths: list[str]) -> list[str]:
    kept: list[str] = []
    for path in sorted(set(paths), key=len):
        if path and not any(path == k or path.startswith(k.rstrip("/") + "/") for k in kept):
            kept.append(path)
    return kept


def _venv_path_entries() -> list[str]:
    """The interpreter's own folders as they are spelt (the venv may be a symlink farm)."""
    return _outermost([sys.prefix, sys.base_prefix, sys.exec_prefix])


def _reachable_by_others(path: str) -> bool:
    """True when a user with no relation to the owner can reach ``path``."""
    current = Path(path)
    try:
        for folder in [*reversed(current.parents), current]:
            if folder.is_dir() and not folder.stat().st_mode & 0o001:
                return False
    except OSError:
        return False
    return True


# -- command lines -----------------------------------------------------------------------


def inside_paths(tier: TierInfo, ws: Workspace) -> dict[str, str]:
    """Where the run sees its folders: fixed places under bubblewrap, host paths otherwise."""
    if tier.name == "bubblewrap":
        return {
            "code": f"{_BOX}/code",
            "lib": f"{_BOX}/lib",
            "scratch": "/tmp/work",
            "out": "/tmp/.sandbox-out",
            "home": "/tmp/home",
            "tmp": "/tmp",
        }
    return {
        "code": str(ws.code),
        "lib": str(ws.lib),
        "scratch": str(ws.scratch),
        "out": str(ws.out),
        "home": str(ws.home),
        "tmp": str(ws.tmp),
    }


def _system_binds() -> list[str]:
    """Read-only views of /usr and its companions, mirroring the host's symlinks."""
    args = ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    for name in ("/etc/ld.so.cache", "/etc/localtime", "/etc/alternatives"):
        args += ["--ro-bind-try", name, name]
    return args


@functools.lru_cache(maxsize=1)
def _bwrap_features() -> frozenset[str]:
    try:
        text = subprocess.run(["bwrap", "--help"], capture_output=True, text=True, timeout=5, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    return frozenset(opt for opt in ("--disable-userns", "--size", "--cap-drop") if opt in text)


def _bwrap_argv(ws: Workspace, tmpfs_bytes: int, env: dict[str, str], cwd: str) -> list[str]:
    features = _bwrap_features()
    paths = inside_paths(TierInfo("bubblewrap", "", ""), ws)
    args = ["bwrap", "--unshare-all", "--unshare-user", "--die-with-parent", "--new-session"]
    args += ["--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_GID), "--hostname", "sandbox"]
    if "--disable-userns" in features:
        args.append("--disable-userns")
    if "--cap-drop" in features:
        args += ["--cap-drop", "ALL"]
    # The tmpfs first: a later mount on /tmp would hide binds beneath it. The harness's
    # report folder gets a small tmpfs of its own, so tests that fill /tmp cannot keep
    # pytest from writing its report.
    for folder, size in (("/tmp", tmpfs_bytes), (paths["out"], _REPORT_TMPFS_BYTES)):
        args += (["--size", str(size)] if "--size" in features else []) + ["--tmpfs", folder]
    for key in ("scratch", "home"):
        args += ["--dir", paths[key]]
    args += _system_binds()
    args += ["--ro-bind", str(ws.etc / "passwd"), "/etc/passwd"]
    args += ["--ro-bind", str(ws.etc / "group"), "/etc/group"]
    for root in _python_roots():
        args += ["--ro-bind", root, root]
    for spelt in _venv_path_entries():  # a venv reached through a symlink: bind that spelling
        real = os.path.realpath(spelt)
        if real != spelt:
            args += ["--ro-bind", real, spelt]
    args += ["--ro-bind", str(INSIDE_DIR), paths["lib"], "--ro-bind", str(ws.code), paths["code"]]
    args += ["--proc", "/proc", "--dev", "/dev", "--chdir", cwd, "--clearenv"]
    for key, value in env.items():
        args += ["--setenv", key, value]
    return [*args, "--"]


def _unshare_argv(tier: TierInfo) -> list[str]:
    args = ["unshare", "--net", "--pid", "--fork", "--kill-child", "--mount-proc", "--ipc", "--uts"]
    drop = ["setpriv", "--no-new-privs", "--inh-caps=-all", "--bounding-set=-all"]
    if tier.drop_uid:
        drop += [f"--reuid={SANDBOX_UID}", f"--regid={SANDBOX_GID}", "--clear-groups"]
    else:
        args += ["--user", f"--map-user={SANDBOX_UID}", f"--map-group={SANDBOX_GID}"]
    return [*args, *drop, "--"]


def sandbox_argv(
    tier: TierInfo,
    ws: Workspace,
    command: list[str],
    *,
    env: dict[str, str],
    tmpfs_bytes: int,
    cwd: str,
) -> list[str]:
    """The full command line that runs ``command`` under ``tier``.

    ``cwd`` is the working folder as the run sees it (see :func:`inside_paths`); the
    caller starts the namespaced tiers with the same folder on the host side.
    """
    if tier.name == "bubblewrap":
        return [*_bwrap_argv(ws, tmpfs_bytes, env, cwd), *command]
    if tier.name == "unshare":
        return [*_unshare_argv(tier), *command]
    return list(command)


# -- detection ---------------------------------------------------------------------------


def _probe(tier: TierInfo) -> str | None:
    """Run a trivial command under ``tier``; None if it worked, else what went wrong."""
    from sandbox.workspace import create_workspace, remove_workspace

    ws = create_workspace({}, owner_uid=SANDBOX_UID if tier.drop_uid else None)
    try:
        check = f"import os, sys; sys.exit(0 if os.getuid() == {SANDBOX_UID} else 3)"
        if tier.name == "rlimits":
            check = "pass"
        command = [sys.executable, "-I", "-S", "-c", check]
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
        cwd = inside_paths(tier, ws)["scratch"]
        argv = sandbox_argv(tier, ws, command, env=env, tmpfs_bytes=16 << 20, cwd=cwd)
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=_PROBE_TIMEOUT_S, check=False,
            env=env, cwd=str(ws.scratch), stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError) as exc:
        return str(exc)
    finally:
        remove_workspace(ws)
    if done.returncode != 0:
        return (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1][:200]
    return None


def _memory_limit() -> str:
    file = memory_cgroup_file()
    return f"cgroup {file} (the whole run) and {_EACH_PROCESS}" if file else _EACH_PROCESS


def _process_limit(drop_uid: bool) -> str:
    if pids_cgroup_root() is not None:
        return "cgroup pids.max"
    if drop_uid or os.getuid() != 0:
        return "RLIMIT_NPROC"
    return "none"


def _try_bubblewrap() -> tuple[TierInfo | None, str]:
    path = shutil.which("bwrap")
    if path is None:
        return None, "bwrap not installed"
    tmpfs = "capped tmpfs" if "--size" in _bwrap_features() else "tmpfs WITHOUT a size cap"
    tier = TierInfo("bubblewrap", f"{path}: namespaces, uid {SANDBOX_UID}, {tmpfs}", "")
    failure = _probe(tier)
    if failure:
        return None, f"bwrap does not work here: {failure}"
    return TierInfo(tier.name, tier.reason, _process_limit(False)), ""


def _interpreter_reachable() -> bool:
    paths = [*_python_roots(), tempfile.gettempdir()]
    return all(_reachable_by_others(p) for p in paths)


def _try_unshare() -> tuple[TierInfo | None, str]:
    missing = [tool for tool in ("unshare", "setpriv") if shutil.which(tool) is None]
    if missing:
        return None, f"{' and '.join(missing)} not installed"
    drop = os.geteuid() == 0 and _interpreter_reachable()
    how = (
        f"real uid {SANDBOX_UID}"
        if drop
        else f"uid {SANDBOX_UID} in a user namespace; host files readable and, where their owner may, writable"
    )
    tier = TierInfo("unshare", f"no network, own PID namespace, no capabilities, {how}", "", drop)
    failure = _probe(tier)
    if failure:
        return None, f"unshare does not work here: {failure}"
    return TierInfo(tier.name, tier.reason, _process_limit(drop), drop), ""


def _rlimits() -> TierInfo:
    reason = "resource limits and a clean environment only: no filesystem or network isolation"
    return TierInfo("rlimits", reason, _process_limit(False))


@functools.lru_cache(maxsize=len(TIERS))
def _detect(ceiling: str) -> TierInfo:
    skipped: list[str] = []
    if ceiling != "bubblewrap":
        skipped.append(f"tier capped at {ceiling}")
    order = TIERS[TIERS.index(ceiling) :]
    for name, attempt in (("bubblewrap", _try_bubblewrap), ("unshare", _try_unshare)):
        if name not in order:
            continue
        tier, why_not = attempt()
        if tier is not None:
            break
        skipped.append(f"{name}: {why_not}")
    else:
        tier = _rlimits()
    reason = "; ".join([tier.reason, *skipped])
    tier = replace(tier, reason=reason, memory_limit=_memory_limit())
    log = logger.info if tier.full else logger.warning
    log("sandbox tier: %s; processes: %s; memory: %s", tier, tier.process_limit, tier.memory_limit)
    if tier.process_limit == "none":
        logger.warning(
            "no process limit: running as root without a writable pids cgroup, where "
            "RLIMIT_NPROC has no effect; a fork bomb is stopped only by the memory limit "
            "and the wall-clock timeout"
        )
    return tier


def detect_tier(tier: str | None = None) -> TierInfo:
    """The strongest tier that works here, at most ``tier`` (or $STARCODER_SANDBOX_TIER).

    Probes once per ceiling and caches the answer.
    """
    ceiling = (tier or os.environ.get("STARCODER_SANDBOX_TIER", "") or "bubblewrap").strip()
    ceiling = ceiling.lower()
    if ceiling not in TIERS:
        raise ValueError(f"unknown sandbox tier {ceiling!r}: choose one of {', '.join(TIERS)}")
    return _detect(ceiling)


def require_isolation(limits: SandboxLimits | None = None) -> TierInfo:
    """The tier runs with ``limits`` will use; refuse if it is weaker than they demand.

    Cheap enough to call before any expensive work (it probes once and caches), so a
    command can stop at once instead of after loading a model.

    Raises:
        IsolationUnavailable: full isolation is required (the default) and bubblewrap
            cannot run here, or a weaker tier was asked for without opting in; the
            message says how to install bubblewrap or how to opt in.
        ValueError: an unknown tier name.
    """
    limits = limits or SandboxLimits()
    tier = detect_tier(limits.tier)
    if tier.full or not limits.require_full_isolation:
        return tier
    if limits.tier not in (None, "bubblewrap"):
        hint = (
            f"The tier is capped at {limits.tier} (STARCODER_SANDBOX_TIER): also set "
            "STARCODER_SANDBOX_REQUIRE_FULL_ISOLATION=0 to accept it, or lift the cap."
        )
    else:
        hint = _INSTALL_HINT
    raise IsolationUnavailable(
        f"full isolation (bubblewrap) is required, but only the {tier.name} tier runs here ({tier.reason}). {hint}"
    )
