"""Host side of a run: start the sandbox, read its output with a cap, enforce the deadline.

The sandbox starts in a session of its own with stdin on /dev/null, or on a pipe that
carries the data it is given. Its stdout and
stderr are read as they come; past ``cap_bytes`` the rest is read and dropped, so no
amount of output can fill this process's memory. At the deadline the whole process
group is killed; under the namespaced tiers that takes down the sandbox's PID
namespace and everything in it. Whatever still runs afterwards is found through the
run's cgroup, or, without one, through a marker in its environment, and killed.
"""

from __future__ import annotations

import logging
import os
import selectors
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Completed", "kill_marked", "run_capped"]

logger = logging.getLogger(__name__)

_EXIT_GRACE_S = 0.5  # keep reading this long after the process exits, for buffered output
_CHUNK = 65536


@dataclass(frozen=True)
class Completed:
    """What a finished (or killed) sandbox process left behind."""

    returncode: int
    stdout: bytes
    stderr: bytes
    timed_out: bool
    duration_s: float
    truncated: bool


class _Capped:
    """The first ``cap`` bytes of a stream, and whether there were more."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.data = bytearray()
        self.truncated = False

    def add(self, chunk: bytes) -> None:
        room = self.cap - len(self.data)
        if len(chunk) > room:
            self.truncated = True
        if room > 0:
            self.data += chunk[:room]


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _feed(proc: subprocess.Popen[bytes], data: bytes) -> None:
    assert proc.stdin is not None
    try:
        proc.stdin.write(data)
    except OSError:
        pass  # it ended, or closed its stdin: its result says what happened
    finally:
        try:
            proc.stdin.close()
        except OSError:
            pass


def _pump(proc: subprocess.Popen[bytes], outs: dict[int, _Capped], deadline: float) -> bool:
    """Read both pipes until EOF (or a stuck pipe after exit); True if the deadline hit."""
    selector = selectors.DefaultSelector()
    assert proc.stdout is not None and proc.stderr is not None
    selector.register(proc.stdout, selectors.EVENT_READ)
    selector.register(proc.stderr, selectors.EVENT_READ)
    exited_at: float | None = None
    try:
        while selector.get_map():
            now = time.monotonic()
            if now >= deadline:
                return True
            if exited_at is None and proc.poll() is not None:
                exited_at = now
            if exited_at is not None and now - exited_at > _EXIT_GRACE_S:
                return False
            for key, _ in selector.select(timeout=min(0.1, deadline - now)):
                chunk = os.read(key.fd, _CHUNK)
                if chunk:
                    outs[key.fd].add(chunk)
                else:
                    selector.unregister(key.fileobj)
        return False
    finally:
        selector.close()


def run_capped(
    argv: list[str],
    *,
    env: dict[str, str],
    cwd: Path,
    timeout_s: float,
    cap_bytes: int,
    stdin_data: bytes | None = None,
) -> Completed:
    """Run ``argv`` to completion or until ``timeout_s``; keep at most ``cap_bytes`` per stream.

    ``stdin_data``, when given, is written to the process's stdin (from a thread, so a
    process that does not read cannot block this one), which is then closed.
    """
    started = time.monotonic()
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL if stdin_data is None else subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=env, cwd=str(cwd), start_new_session=True, close_fds=True,
    )  # fmt: skip
    if stdin_data is not None:
        threading.Thread(target=_feed, args=(proc, stdin_data), daemon=True).start()
    assert proc.stdout is not None and proc.stderr is not None
    out, err = _Capped(cap_bytes), _Capped(cap_bytes)
    outs = {proc.stdout.fileno(): out, proc.stderr.fileno(): err}
    try:
        timed_out = _pump(proc, outs, started + timeout_s)
        if timed_out or proc.poll() is None:
            _kill_group(proc)
        if proc.poll() is None:
            try:
                proc.wait(timeout=max(0.0, started + timeout_s - time.monotonic()))
            except subprocess.TimeoutExpired:
                timed_out = True
                _kill_group(proc)
    finally:
        _kill_group(proc)  # leftovers in its group, even after a clean exit
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    return Completed(
        returncode=proc.returncode,
        stdout=bytes(out.data),
        stderr=bytes(err.data),
        timed_out=timed_out,
        duration_s=time.monotonic() - started,
        truncated=out.truncated or err.truncated,
    )


def kill_marked(marker: bytes, rounds: int = 5) -> int:
    """SIGKILL every process whose environment holds ``marker``; return how many."""
    killed = 0
    own = os.getpid()
    for _ in range(rounds):
        found = 0
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit() or int(entry.name) == own:
                continue
            try:
                with open(f"/proc/{entry.name}/environ", "rb") as handle:
                    environ = handle.read()
            except OSError:
                continue
            if marker in environ.split(b"\0"):
                try:
                    os.kill(int(entry.name), signal.SIGKILL)
                    found += 1
                except ProcessLookupError:
                    pass
        killed += found
        if not found:
            break
        time.sleep(0.02)
    if killed:
        logger.info("killed %d leftover sandbox processes", killed)
    return killed
