"""The limits one sandboxed run works under, with defaults and environment fallbacks.

Each field falls back to an environment variable ``STARCODER_SANDBOX_<FIELD>`` (for
example ``STARCODER_SANDBOX_WALL_TIMEOUT_S=10``) when not given, then to its default.

Full isolation is the default demand: a weaker tier runs only when asked for by name,
with ``STARCODER_SANDBOX_REQUIRE_FULL_ISOLATION=0`` (and, to pick one,
``STARCODER_SANDBOX_TIER=unshare`` or ``rlimits``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

from envconfig import env_str, env_value

__all__ = ["ENV_PREFIX", "SandboxLimits"]

ENV_PREFIX = "STARCODER_SANDBOX_"
_T = TypeVar("_T", int, float, bool, str)


def _env(name: str, default: _T) -> _T:
    """``STARCODER_SANDBOX_<NAME>`` by :mod:`envconfig`'s rule (empty is unset; an unclear yes/no is refused)."""
    return env_value(ENV_PREFIX + name.upper(), default)


def _env_tier() -> str | None:
    raw = env_str(ENV_PREFIX + "TIER")
    return raw.lower() if raw else None


@dataclass(frozen=True, kw_only=True)
class SandboxLimits:
    """Resource limits and isolation demands of one sandboxed run.

    Attributes:
        wall_timeout_s: Wall-clock seconds the tests (or the command) may take; past
            it, everything the run started is killed and the report says it timed out.
        cpu_s: CPU seconds each process of the run may use (RLIMIT_CPU).
        memory_mb: Address space each process may map, in MiB (RLIMIT_AS). pytest with
            coverage needs about 150 MiB; the rest is for the code under test.
        total_memory_mb: Memory all the run's processes together may use, in MiB,
            page cache and tmpfs files included: a cgroup ``memory.max`` (v2) or
            ``memory.limit_in_bytes`` (v1) where the host allows one; past it the
            kernel kills the largest process. Without such a cgroup only
            ``memory_mb`` per process applies (``TierInfo.memory_limit`` says which).
        file_size_mb: Largest file a process may write, in MiB (RLIMIT_FSIZE).
        max_processes: Processes (and threads) the run may have at once: a cgroup
            ``pids.max`` where the host allows one, else RLIMIT_NPROC.
        tmpfs_mb: Size of the in-memory file system that is the only writable place
            of a fully isolated run, in MiB.
        output_cap_bytes: Bytes of stdout and of stderr kept from a run; the rest is
            read and thrown away, so endless output cannot fill memory.
        max_concurrent: Sandboxes that may run at once in this process; more wait.
        require_full_isolation: Refuse to run (raise ``IsolationUnavailable``) unless
            the strongest tier, bubblewrap, is available. On by default; turning it
            off is the explicit opt-in to a weaker tier.
        tier: Use at most this tier ("bubblewrap", "unshare" or "rlimits"), for hosts
            where a stronger one misbehaves and for tests; None picks the strongest
            available. A weaker tier still needs ``require_full_isolation=False``.
    """

    wall_timeout_s: float = field(default_factory=lambda: _env("wall_timeout_s", 30.0))
    cpu_s: int = field(default_factory=lambda: _env("cpu_s", 30))
    memory_mb: int = field(default_factory=lambda: _env("memory_mb", 2048))
    total_memory_mb: int = field(default_factory=lambda: _env("total_memory_mb", 2048))
    file_size_mb: int = field(default_factory=lambda: _env("file_size_mb", 64))
    max_processes: int = field(default_factory=lambda: _env("max_processes", 64))
    tmpfs_mb: int = field(default_factory=lambda: _env("tmpfs_mb", 256))
    output_cap_bytes: int = field(default_factory=lambda: _env("output_cap_bytes", 1_000_000))
    max_concurrent: int = field(default_factory=lambda: _env("max_concurrent", 2))
    require_full_isolation: bool = field(default_factory=lambda: _env("require_full_isolation", True))
    tier: str | None = field(default_factory=_env_tier)

    def __post_init__(self) -> None:
        """Reject limits that cannot work."""
        positive = {
            "wall_timeout_s": self.wall_timeout_s,
            "cpu_s": self.cpu_s,
            "memory_mb": self.memory_mb,
            "total_memory_mb": self.total_memory_mb,
            "file_size_mb": self.file_size_mb,
            "max_processes": self.max_processes,
            "tmpfs_mb": self.tmpfs_mb,
            "output_cap_bytes": self.output_cap_bytes,
            "max_concurrent": self.max_concurrent,
        }
        bad = [name for name, value in positive.items() if not value > 0]
        if bad:
            raise ValueError(f"sandbox limits must be positive: {', '.join(bad)}")
        if self.tier is not None and self.tier not in ("bubblewrap", "unshare", "rlimits"):
            raise ValueError(f"unknown sandbox tier {self.tier!r}")
