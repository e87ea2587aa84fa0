"""Run untrusted tests, or a tool on untrusted files, in the sandbox; never in this process.

:func:`run_tests` writes exactly ``<module>.py`` into a fresh folder, hands the tests
to the harness in ``sandbox/inside`` on a pipe, and runs them there with pytest, the
code in a process of its own; the verdict comes from results the pytest process sends
on a pipe of its own, never from an exit code or a file the code could write.
:func:`run_command` runs an arbitrary command (ruff, say) on untrusted files under the
same isolation and limits.

A process-wide gate bounds how many sandboxes run at once (``max_concurrent``).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sandbox.cgroup import RunCgroup
from sandbox.inside.harness import RESULT_MARKER
from sandbox.limits import SandboxLimits
from sandbox.process import Completed, kill_marked, run_capped
from sandbox.report import CommandResult, TestFailure, ValidationReport
from sandbox.tiers import SANDBOX_UID, TierInfo, inside_paths, require_isolation, sandbox_argv
from sandbox.workspace import Workspace, create_workspace, remove_workspace

__all__ = ["SandboxGate", "choose_tier", "run_command", "run_tests"]

logger = logging.getLogger(__name__)

_HOST_GRACE_S = 5.0  # beyond the harness's own deadline: start-up, coverage report, teardown
_HARNESS_OUTPUT_BYTES = 512 * 1024
_TAIL_CHARS = 2000
_MARKER_ENV = "STARCODER_SANDBOX_RUN"
_MiB = 1024 * 1024


class SandboxGate:
    """Counts the sandboxes running in this process and holds back those over the limit."""

    def __init__(self) -> None:
        """Start with none running."""
        self._cond = threading.Condition()
        self.active = 0
        self.peak = 0

    @contextmanager
    def slot(self, limit: int) -> Iterator[None]:
        """Wait until fewer than ``limit`` sandboxes run, then hold a place until exit."""
        with self._cond:
            self._cond.wait_for(lambda: self.active < limit)
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            yield
        finally:
            with self._cond:
                self.active -= 1
                self._cond.notify_all()


GATE = SandboxGate()


def choose_tier(limits: SandboxLimits) -> TierInfo:
    """The tier a run with ``limits`` uses; raise IsolationUnavailable if it is too weak."""
    return require_isolation(limits)


# -- what the run sees -------------------------------------------------------------------


def _environment(paths: dict[str, str], marker: str | None) -> dict[str, str]:
    """The whole environment of a run: nothing is inherited from this process."""
    venv_bin = os.path.dirname(sys.executable)
    env = {
        "PATH": f"{venv_bin}:/usr/local/bin:/usr/bin:/bin",
        "HOME": paths["home"],
        "TMPDIR": paths["tmp"],
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        "PYTHONUNBUFFERED": "1",
        "PYTHONFAULTHANDLER": "1",
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
        "XDG_CACHE_HOME": f"{paths['tmp']}/.cache",
        "RUFF_CACHE_DIR": f"{paths['tmp']}/.ruff_cache",
        "NO_COLOR": "1",
    }
    if marker:
        env[_MARKER_ENV] = marker
    return env


def _count_own_processes() -> int:
    uid = os.getuid()
    count = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                count += entry.stat().st_uid == uid
            except OSError:
                pass
    return count


def _rlimits(limits: SandboxLimits, tier: TierInfo, cgroup: RunCgroup | None) -> dict[str, int]:
    """Resource limits by ``prlimit`` option name (the harness knows the same names)."""
    values = {
        "as": limits.memory_mb * _MiB,
        "cpu": int(limits.cpu_s),
        "fsize": limits.file_size_mb * _MiB,
        "core": 0,
        "nofile": 1024,
    }
    pids_capped = cgroup is not None and cgroup.pids_group is not None
    if not pids_capped and tier.drop_uid:
        values["nproc"] = limits.max_processes
    elif not pids_capped and os.getuid() != 0:
        # RLIMIT_NPROC counts every process of the real uid: leave room for the others.
        values["nproc"] = _count_own_processes() + limits.max_processes
    return values


# -- one sandboxed process ---------------------------------------------------------------


def _workspace(tier: TierInfo, files: dict[str, str]) -> Workspace:
    return create_workspace(
        files,
        owner_uid=SANDBOX_UID if tier.drop_uid else None,
        copy_harness=tier.name != "bubblewrap",  # bubblewrap binds it from the package
    )


def _launcher(config: dict[str, Any], lib: str) -> list[str]:
    """The command the sandbox starts: the harness, or for a plain command ``prlimit``.

    ``prlimit`` (util-linux) sets the same limits as the harness's exec mode, without
    the start-up of an interpreter; the harness does it where ``prlimit`` is missing.
    """
    prlimit = shutil.which("prlimit")
    if config["mode"] == "exec" and prlimit is not None:
        limits = [f"--{name}={value}" for name, value in config["rlimits"].items()]
        return [prlimit, *limits, "--", *config["argv"]]
    return [sys.executable, "-I", "-S", f"{lib}/harness.py", json.dumps(config)]


def _execute(
    tier: TierInfo,
    ws: Workspace,
    config: dict[str, Any],
    *,
    limits: SandboxLimits,
    cwd: str,
    timeout_s: float,
    cap_bytes: int,
    stdin_data: bytes | None = None,
) -> Completed:
    """Start the harness with ``config`` under ``tier`` and see it through to the end."""
    paths = inside_paths(tier, ws)
    marker = uuid.uuid4().hex if not tier.private_pidns else None
    env = _environment(paths, marker)
    cgroup = RunCgroup.create(limits.max_processes)
    if cgroup is not None:
        cgroup.limit_memory(limits.total_memory_mb * _MiB)
    config = {**config, "env": env, "rlimits": _rlimits(limits, tier, cgroup)}
    command = _launcher(config, paths["lib"])
    argv = sandbox_argv(tier, ws, command, env=env, tmpfs_bytes=limits.tmpfs_mb * _MiB, cwd=cwd)
    if cgroup is not None:
        argv = cgroup.wrap(argv)
    host_cwd = ws.scratch if tier.name == "bubblewrap" else Path(cwd)
    try:
        return run_capped(
            argv, env=env, cwd=host_cwd, timeout_s=timeout_s, cap_bytes=cap_bytes,
            stdin_data=stdin_data,
        )  # fmt: skip
    finally:
        if cgroup is not None:
            _log_memory(cgroup, limits)
            cgroup.remove()
        if marker is not None and cgroup is None:
            kill_marked(f"{_MARKER_ENV}={marker}".encode())


def _log_memory(cgroup: RunCgroup, limits: SandboxLimits) -> None:
    peak, oom_kills = cgroup.memory_usage()
    if oom_kills:
        logger.warning(
            "the run reached its memory limit of %d MiB (peak %.0f MiB): the kernel killed "
            "%d of its processes", limits.total_memory_mb, peak / _MiB, oom_kills,
        )  # fmt: skip
    elif peak:
        logger.debug("the run's peak memory: %.0f MiB", peak / _MiB)


# -- run_tests ---------------------------------------------------------------------------


def _check_module_name(name: str) -> None:
    if not name.isidentifier() or name.startswith("test_") or name == "conftest":
        raise ValueError(f"module_name must be a plain identifier, got {name!r}")


def _harness_result(stdout: bytes) -> dict[str, Any] | None:
    """The harness's result line, if it printed one."""
    text = stdout.decode("utf-8", "replace")
    at = text.rfind(RESULT_MARKER)
    if at < 0:
        return None
    line = text[at + len(RESULT_MARKER) :].split("\n", 1)[0]
    try:
        data = json.loads(line)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _as_int(value: object) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def _as_text(value: object, limit: int) -> str:
    return str(value)[-limit:] if value is not None else ""


def _failures(raw: object) -> list[TestFailure]:
    items = raw if isinstance(raw, list) else []
    return [
        TestFailure(
            test=_as_text(item.get("test"), 300),
            message=_as_text(item.get("message"), 300),
            traceback=_as_text(item.get("traceback"), 2000),
        )
        for item in items[:20]
        if isinstance(item, dict)
    ]


def _names(raw: object) -> list[str]:
    items = raw if isinstance(raw, list) else []
    return [_as_text(item, 300) for item in items[:100] if isinstance(item, str)]


def _no_result_error(done: Completed, limits: SandboxLimits) -> str:
    if done.timed_out:
        return f"timed out after {limits.wall_timeout_s:g}s (the sandbox was killed)"
    detail = done.stderr.decode("utf-8", "replace").strip().splitlines()
    last = detail[-1][:300] if detail else f"exit code {done.returncode}"
    return f"the sandbox ended without a result: {last}"


def _validation_report(done: Completed, tier: TierInfo, limits: SandboxLimits, duration_s: float) -> ValidationReport:
    raw = _harness_result(done.stdout)
    if raw is None:
        return ValidationReport(
            passed=False, passed_count=0, failed_count=0, errored_count=0, skipped_count=0,
            timed_out=done.timed_out, coverage=None, duration_s=round(duration_s, 3),
            error=_no_result_error(done, limits), failures=[], in_process_tests=[],
            isolation=tier.name,
            stdout_tail=done.stdout.decode("utf-8", "replace")[-_TAIL_CHARS:],
            stderr_tail=done.stderr.decode("utf-8", "replace")[-_TAIL_CHARS:],
        )  # fmt: skip
    coverage = raw.get("coverage")
    error = raw.get("error")
    passed = raw.get("passed") is True and error is None and not done.timed_out
    return ValidationReport(
        passed=passed,
        passed_count=_as_int(raw.get("passed_count")),
        failed_count=_as_int(raw.get("failed_count")),
        errored_count=_as_int(raw.get("errored_count")),
        skipped_count=_as_int(raw.get("skipped_count")),
        timed_out=bool(raw.get("timed_out")) or done.timed_out,
        coverage=float(coverage) if isinstance(coverage, int | float) else None,
        duration_s=round(duration_s, 3),
        error=None if passed else _as_text(error or "the sandbox reported no verdict", 500),
        failures=_failures(raw.get("failures")),
        in_process_tests=_names(raw.get("in_process_tests")),
        isolation=tier.name,
        stdout_tail=_as_text(raw.get("stdout_tail"), _TAIL_CHARS),
        stderr_tail=_as_text(raw.get("stderr_tail"), _TAIL_CHARS),
    )


def run_tests(
    code: str,
    tests: str,
    *,
    module_name: str = "solution",
    limits: SandboxLimits | None = None,
) -> ValidationReport:
    """Run ``tests`` against ``code`` in the sandbox and report the outcome.

    The code is written as ``<module_name>.py``, the only file of the run's folder; the
    tests reach the sandbox on a pipe, as ``test_<module_name>.py``, and are gone before
    the code first runs. The tests run under pytest; the code runs in a process of its
    own, where its coverage is measured, and what it returns crosses to the tests as
    plain data, so it cannot decide a test (``sandbox/inside/remote.py``). ``passed`` is
    true only when at least one test ran and none failed or errored, as the pytest
    process reported on a pipe only it holds. Tests that can only be judged in the
    code's own process are named in ``in_process_tests`` (weaker evidence).

    Raises:
        IsolationUnavailable: ``limits.require_full_isolation`` is set and only a
            weaker tier is available.
        ValueError: ``module_name`` is not a plain identifier.
    """
    limits = limits or SandboxLimits()
    _check_module_name(module_name)
    tier = choose_tier(limits)
    files = {f"{module_name}.py": code}
    with GATE.slot(limits.max_concurrent):
        started = time.monotonic()
        ws = _workspace(tier, files)
        try:
            paths = inside_paths(tier, ws)
            config = {
                "mode": "pytest", "private_pidns": tier.private_pidns,
                "deadline_s": float(limits.wall_timeout_s), "module": module_name,
                "code_dir": paths["code"], "lib_dir": paths["lib"],
                "scratch_dir": paths["scratch"], "out_dir": paths["out"],
                "tail_chars": _TAIL_CHARS, "read_cap_bytes": min(limits.output_cap_bytes, 65536),
            }  # fmt: skip
            done = _execute(
                tier, ws, config, limits=limits, cwd=paths["scratch"],
                timeout_s=limits.wall_timeout_s + _HOST_GRACE_S,
                cap_bytes=_HARNESS_OUTPUT_BYTES, stdin_data=tests.encode("utf-8"),
            )  # fmt: skip
        finally:
            remove_workspace(ws)
        report = _validation_report(done, tier, limits, time.monotonic() - started)
    logger.info(
        "sandboxed tests (%s): passed=%s %d/%d/%d in %.2fs%s", tier.name, report["passed"],
        report["passed_count"], report["failed_count"], report["errored_count"],
        report["duration_s"], f": {report['error']}" if report["error"] else "",
    )  # fmt: skip
    return report


# -- run_command -------------------------------------------------------------------------


def run_command(
    argv: list[str],
    files: dict[str, str],
    *,
    limits: SandboxLimits | None = None,
) -> CommandResult:
    """Run ``argv`` on ``files`` in the sandbox; the files are its (read-only) working folder.

    ``files`` maps plain file names to their text. The command may write under
    ``$TMPDIR`` and ``$HOME``. Output beyond ``limits.output_cap_bytes`` per stream is
    dropped (``truncated`` says so).

    Raises:
        IsolationUnavailable: ``limits.require_full_isolation`` is set and only a
            weaker tier is available.
        ValueError: a file name is not a plain name, or ``argv`` is empty.
    """
    if not argv:
        raise ValueError("run_command needs a command")
    limits = limits or SandboxLimits()
    tier = choose_tier(limits)
    with GATE.slot(limits.max_concurrent):
        started = time.monotonic()
        ws = _workspace(tier, files)
        try:
            paths = inside_paths(tier, ws)
            done = _execute(
                tier, ws, {"mode": "exec", "argv": list(argv)}, limits=limits,
                cwd=paths["code"], timeout_s=limits.wall_timeout_s,
                cap_bytes=limits.output_cap_bytes,
            )  # fmt: skip
        finally:
            remove_workspace(ws)
    return CommandResult(
        returncode=done.returncode,
        stdout=done.stdout.decode("utf-8", "replace"),
        stderr=done.stderr.decode("utf-8", "replace"),
        timed_out=done.timed_out,
        duration_s=round(time.monotonic() - started, 3),
        isolation=tier.name,
        truncated=done.truncated,
    )
