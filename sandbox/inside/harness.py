"""The supervisor that runs inside the sandbox: limits, pytest under coverage, the verdict.

It is started by the host with one JSON argument (see :class:`HarnessConfig` for its
keys) and runs with the interpreter's ``-I -S`` flags, so no environment variable,
work-folder file or site package reaches it. It imports only the standard library and
nothing of the project: only this folder is mounted into the sandbox.

Modes:

- ``exec``: apply the resource limits, then replace itself with the given command.
- ``pytest``: apply the limits, run pytest under coverage.py in a child process with
  output read through pipes (keeping a bounded tail), kill whatever the tests left
  behind, read the counts from the JUnit XML report (never from the exit code), and
  print one result line, prefixed with :data:`RESULT_MARKER`, on its own stdout.

The coverage percent comes from the guard plugin (``sandbox_guard.py``), measured in
the pytest process at the end of the session. Everything that parses what the tests
produced (the XML report, the plugin's file, the output) runs inside the sandbox, so
a hostile report can only hurt the sandbox. The host still checks the result line's
shape.
"""

from __future__ import annotations

import json
import os
import re
import resource
import selectors
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from typing import Any, TypedDict

RESULT_MARKER = "@@starcoder-sandbox-result@@"
SENTINEL_ENV = "STARCODER_SANDBOX_SENTINEL"  # these two as in sandbox_guard.py
COVERAGE_INCLUDE_ENV = "STARCODER_SANDBOX_COVERAGE_OF"
MAX_FAILURES = 20
TRACEBACK_CHARS = 1500
MESSAGE_CHARS = 300
LINE_CHARS = 200
EXIT_GRACE_S = 0.3  # how long to keep reading pipes after pytest exits
_INTERNAL_FRAME = re.compile(r"(site-packages/(_pytest|pluggy)/|<frozen |/lib/python\d\.\d+/)")
_FRAME_HEADER = re.compile(r"^\S.*:\d+: in \S")


class HarnessConfig(TypedDict, total=False):
    """What the host passes in (as JSON in ``argv[1]``)."""

    mode: str  # "pytest" or "exec"
    argv: list[str]  # exec mode: the command
    env: dict[str, str]  # environment of the child (pytest) or the command (exec)
    rlimits: dict[str, int]  # "as", "cpu", "fsize", "nproc", "nofile", "core"
    private_pidns: bool  # true when the sandbox has its own PID namespace
    deadline_s: float  # pytest mode: stop pytest after this many seconds
    code_dir: str
    lib_dir: str
    scratch_dir: str
    out_dir: str
    module: str
    tail_chars: int
    read_cap_bytes: int


# -- limits and self-protection ----------------------------------------------------------

_RLIMITS = {
    "as": resource.RLIMIT_AS,
    "cpu": resource.RLIMIT_CPU,
    "fsize": resource.RLIMIT_FSIZE,
    "nproc": resource.RLIMIT_NPROC,
    "nofile": resource.RLIMIT_NOFILE,
    "core": resource.RLIMIT_CORE,
}


def apply_rlimits(limits: dict[str, int]) -> None:
    """Lower this process's resource limits; children inherit them."""
    for name, value in limits.items():
        kind = _RLIMITS[name]
        _soft, hard = resource.getrlimit(kind)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(kind, (value, value))


def make_undumpable() -> None:
    """Keep the tests (same uid) from opening this process's fds or tracing it."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 4
    except (OSError, AttributeError):
        pass


# -- running pytest ----------------------------------------------------------------------


class _Tail:
    """The last ``keep`` bytes written to a stream, and how many bytes there were."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self.data = bytearray()
        self.total = 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        self.data += chunk
        if len(self.data) > 2 * self.keep:
            del self.data[: len(self.data) - self.keep]

    def text(self, chars: int, strip: tuple[str, ...] = ()) -> str:
        text = bytes(self.data[-self.keep :]).decode("utf-8", "replace")
        for prefix in strip:
            text = text.replace(prefix, "")
        return text[-chars:] if chars else ""


def pytest_argv(cfg: HarnessConfig) -> list[str]:
    """The command line of the pytest child: coverage of the solution module only."""
    lib, code, out = cfg["lib_dir"], cfg["code_dir"], cfg["out_dir"]
    module = cfg["module"]
    return [
        sys.executable, "-m", "coverage", "run",
        f"--rcfile={lib}/coveragerc", f"--data-file={out}/.coverage",
        f"--include={code}/{module}.py",
        "-m", "pytest",
        "-c", f"{lib}/pytest.ini", f"--rootdir={code}",
        "-p", "no:cacheprovider", "-p", "sandbox_guard", "--noconftest",
        "-v", "--tb=short", "--color=no", "-o", "junit_family=xunit2",
        "-o", "console_output_style=classic",
        f"--junitxml={out}/report.xml",
        f"{code}/test_{module}.py",
    ]  # fmt: skip


def _read_until_done(
    proc: subprocess.Popen[bytes], tails: dict[int, _Tail], deadline: float
) -> bool:
    """Read the child's pipes into ``tails``; return True if the deadline passed first."""
    selector = selectors.DefaultSelector()
    assert proc.stdout is not None and proc.stderr is not None
    for stream in (proc.stdout, proc.stderr):
        selector.register(stream, selectors.EVENT_READ)
    exited_at: float | None = None
    try:
        while selector.get_map():
            now = time.monotonic()
            if now >= deadline:
                return True
            if exited_at is None and proc.poll() is not None:
                exited_at = now
            if exited_at is not None and now - exited_at > EXIT_GRACE_S:
                break  # something the tests started still holds the pipes open
            _drain(selector, tails, min(0.1, deadline - now))
    finally:
        selector.close()
    while proc.poll() is None:
        if time.monotonic() >= deadline:
            return True
        time.sleep(0.01)
    return False


def _drain(selector: selectors.BaseSelector, tails: dict[int, _Tail], timeout: float) -> None:
    """Read what is ready; stop watching pipes that reached end of file."""
    for key, _ in selector.select(timeout=timeout):
        chunk = os.read(key.fd, 65536)
        if chunk:
            tails[key.fd].add(chunk)
        else:
            selector.unregister(key.fileobj)


def kill_leftovers(proc: subprocess.Popen[bytes], private_pidns: bool) -> None:
    """Kill everything the tests started: the whole namespace when it is ours alone."""
    if private_pidns:
        try:
            os.kill(-1, signal.SIGKILL)  # every process in this PID namespace but us
        except ProcessLookupError:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def run_child(cfg: HarnessConfig) -> dict[str, Any]:
    """Run pytest under coverage; return exit status, timing-out and output tails."""
    env = dict(cfg["env"])
    env[SENTINEL_ENV] = f"{cfg['out_dir']}/sentinel.json"
    env[COVERAGE_INCLUDE_ENV] = f"{cfg['code_dir']}/{cfg['module']}.py"
    env["PYTHONPATH"] = cfg["lib_dir"]
    keep = int(cfg.get("read_cap_bytes", 65536))
    started = time.monotonic()
    proc = subprocess.Popen(
        pytest_argv(cfg), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, env=env, cwd=cfg["scratch_dir"], start_new_session=True,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    tails = {proc.stdout.fileno(): _Tail(keep), proc.stderr.fileno(): _Tail(keep)}
    stdout_tail, stderr_tail = tails[proc.stdout.fileno()], tails[proc.stderr.fileno()]
    timed_out = _read_until_done(proc, tails, started + float(cfg["deadline_s"]))
    kill_leftovers(proc, bool(cfg.get("private_pidns")))
    proc.stdout.close()
    proc.stderr.close()
    return {
        "returncode": proc.returncode,
        "timed_out": timed_out,
        "stdout": stdout_tail,
        "stderr": stderr_tail,
        "seconds": time.monotonic() - started,
    }


# -- reading the report ------------------------------------------------------------------


def _short_line(line: str) -> str:
    return line if len(line) <= LINE_CHARS else line[: LINE_CHARS - 3] + "..."


def _frames(lines: list[str]) -> tuple[list[list[str]], list[str]]:
    """Split a ``--tb=short`` traceback into frames and the final ``E`` lines."""
    frames: list[list[str]] = []
    errors: list[str] = []
    for line in lines:
        if line.startswith("E ") or line == "E":
            errors.append(line)
        elif _FRAME_HEADER.match(line):
            frames.append([line])
        elif frames and not errors:
            frames[-1].append(line)
        else:
            errors.append(line)
    return frames, errors


def path_prefixes(cfg: HarnessConfig) -> tuple[str, ...]:
    """How the code folder is spelt in pytest's output; stripped to leave bare file names."""
    code = cfg["code_dir"].rstrip("/")
    spellings = {code + "/", os.path.relpath(code, cfg["scratch_dir"]) + "/"}
    return tuple(sorted(spellings, key=len, reverse=True))  # longest first: "../../x/" before "/x/"


def trim_traceback(text: str, strip: tuple[str, ...] = (), limit: int = TRACEBACK_CHARS) -> str:
    """Keep the last frames of the tests' own code and the assertion lines, capped."""
    for prefix in strip:
        text = text.replace(prefix, "")
    frames, errors = _frames([_short_line(ln) for ln in text.splitlines() if ln.strip()])
    own = [frame for frame in frames if not _INTERNAL_FRAME.search(frame[0])]
    kept = (own or frames)[-3:]
    head = (
        [f"... ({len(frames) - len(kept)} frames above omitted)"] if len(kept) < len(frames) else []
    )
    more = [f"E   ... ({len(errors) - 15} more lines)"] if len(errors) > 15 else []
    body = [line for frame in kept for line in frame[:6]] + errors[:15] + more
    out = "\n".join(head + body)
    return out if len(out) <= limit else out[: limit - 4] + "\n..."


def _exception_line(text: str) -> str:
    """The last exception line of a traceback (``E   ValueError: ...`` without the ``E``).

    A syntax error also gets its file and line, which the traceback gives just above.
    """
    lines = [ln for ln in text.splitlines() if ln.strip()]
    marked = [ln[1:].strip() for ln in lines if ln.startswith("E ")]
    candidates = marked or [ln.strip() for ln in lines]
    if not candidates:
        return "unknown error"
    line = candidates[-1]
    if line.startswith(("SyntaxError", "IndentationError", "TabError")):
        line += _syntax_error_location(candidates)
    return _short_line(line)


def _syntax_error_location(lines: list[str]) -> str:
    """`` (solution.py, line 3)`` from the ``File "...", line 3`` line of a syntax error."""
    for line in reversed(lines):
        match = re.match(r'File "(?:.*/)?([^/"]+)", line (\d+)', line)
        if match:
            return f" ({match.group(1)}, line {match.group(2)})"
    return ""


def _test_name(case: ET.Element, module: str) -> str:
    classname = case.get("classname", "")
    name = case.get("name", "?")
    prefix = f"test_{module}"
    if classname in ("", prefix, "pytest"):
        return name
    return f"{classname.removeprefix(prefix + '.')}::{name}"


def _failure(case: ET.Element, kind: str, text: str, cfg: HarnessConfig) -> dict[str, str]:
    first = kind.strip().splitlines()[0] if kind.strip() else ""
    return {
        "test": _test_name(case, cfg["module"]),
        "message": _short_line(first)[:MESSAGE_CHARS],
        "traceback": trim_traceback(text, path_prefixes(cfg)),
    }


def read_junit(path: str, cfg: HarnessConfig) -> dict[str, Any]:
    """Counts, failures, and collection problems from pytest's JUnit XML report."""
    counts = {"passed": 0, "failed": 0, "errored": 0, "skipped": 0}
    failures: list[dict[str, str]] = []
    problems: list[str] = []
    for case in ET.parse(path).getroot().iter("testcase"):
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error"):
                outcome = "failed" if child.tag == "failure" else "errored"
                failures.append(_failure(case, child.get("message", ""), child.text or "", cfg))
                problems += _collection_problem(child.get("message", ""), child.text or "")
            elif child.tag == "skipped" and outcome == "passed":
                outcome = "skipped"
        counts[outcome] += 1
    return {
        "counts": counts,
        "failures": failures[:MAX_FAILURES],
        "problem": problems[0] if problems else None,
    }


def _collection_problem(kind: str, text: str) -> list[str]:
    """What kept the tests from being collected, if ``kind`` says that happened."""
    if kind not in ("collection failure", "internal error"):
        return []
    if kind == "collection failure" or "importtestmodule" in text:
        return [f"import failed: {_exception_line(text)}"]
    return [f"pytest internal error: {_exception_line(text)}"]


def sentinel_coverage(sentinel: dict[str, Any] | None) -> float | None:
    """The coverage percent the guard plugin measured, if it is a number."""
    value = (sentinel or {}).get("coverage")
    ok = isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 100
    return float(value) if ok else None  # type: ignore[arg-type]


def read_sentinel(cfg: HarnessConfig) -> dict[str, Any] | None:
    """What the guard plugin wrote at the end of the session, or None if it never ran."""
    try:
        with open(f"{cfg['out_dir']}/sentinel.json", encoding="utf-8") as handle:
            data = json.load(handle)
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


# -- the verdict -------------------------------------------------------------------------

_SIGNAL_HINTS: dict[int, str] = {
    signal.SIGXCPU.value: "the CPU time limit",
    signal.SIGXFSZ.value: "the file size limit",
    signal.SIGKILL.value: "killed from outside, perhaps for memory",
    signal.SIGSEGV.value: "a segmentation fault",
}


def _hanging_test(stdout: str) -> str:
    """The test pytest ``-v`` announced last without a result: the one that hung."""
    for line in reversed(stdout.splitlines()):
        match = re.match(r"^(\S+::\S+)\s*(PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)?", line)
        if match:
            return "" if match.group(2) else match.group(1).rsplit("/", 1)[-1]
    return ""


def _crash_reason(returncode: int) -> str:
    sig = -returncode
    try:
        name = signal.Signals(sig).name
    except ValueError:
        name = f"signal {sig}"
    hint = _SIGNAL_HINTS.get(sig)
    return f"crashed: pytest was killed by {name}" + (f" ({hint})" if hint else "")


def _abnormal_end(
    child: dict[str, Any], sentinel: dict[str, Any] | None, deadline_s: float
) -> str | None:
    """Why the run's outcome cannot be read from its report at all, if so."""
    if child["timed_out"]:
        hung = _hanging_test(child["stdout"].text(20000))
        return f"timed out after {deadline_s:g}s" + (f" in {hung}" if hung else "")
    if sentinel and sentinel.get("tampering"):
        return "the tests tried to change how pytest reports: " + "; ".join(
            str(item) for item in sentinel["tampering"][:3]
        )
    if child["returncode"] < 0:
        return _crash_reason(child["returncode"])
    return None


def verdict(
    child: dict[str, Any],
    report: dict[str, Any] | None,
    sentinel: dict[str, Any] | None,
    deadline_s: float,
) -> str | None:
    """Why the run did not pass, or None when it did."""
    abnormal = _abnormal_end(child, sentinel, deadline_s)
    if abnormal:
        return abnormal
    returncode = child["returncode"]
    if report is None:
        return (
            f"pytest ended without writing its report (exit code {returncode}): "
            "the tests ended the process early (os._exit or similar)"
        )
    if report["problem"]:
        return str(report["problem"])
    return _report_verdict(report["counts"], returncode, sentinel)


def _report_verdict(
    counts: dict[str, int], returncode: int, sentinel: dict[str, Any] | None
) -> str | None:
    """The verdict from a report that pytest did write."""
    ran = counts["passed"] + counts["failed"] + counts["errored"]
    if ran == 0 and counts["skipped"]:
        return f"no tests ran: all {counts['skipped']} were skipped"
    if returncode == 5 or ran == 0:
        return "no tests were collected"
    if counts["failed"] or counts["errored"]:
        bad = counts["failed"] + counts["errored"]
        return f"{bad} of {ran} tests failed"
    if sentinel is None:
        return "pytest did not finish its session normally (the tests ended it early?)"
    if returncode != 0:
        return f"pytest exited with code {returncode} although its report shows no failures"
    return None


def run_pytest(cfg: HarnessConfig) -> dict[str, Any]:
    """Run the tests and build the result the host turns into a ValidationReport."""
    child = run_child(cfg)
    report_path = f"{cfg['out_dir']}/report.xml"
    report: dict[str, Any] | None = None
    if not child["timed_out"] and os.path.exists(report_path):
        try:
            report = read_junit(report_path, cfg)
        except (ET.ParseError, OSError, RecursionError, MemoryError):
            report = None
    sentinel = read_sentinel(cfg)
    error = verdict(child, report, sentinel, float(cfg["deadline_s"]))
    counts = report["counts"] if report else {"passed": 0, "failed": 0, "errored": 0, "skipped": 0}
    tail = int(cfg.get("tail_chars", 2000))
    strip = path_prefixes(cfg)
    return {
        "passed": error is None,
        "passed_count": counts["passed"],
        "failed_count": counts["failed"],
        "errored_count": counts["errored"],
        "skipped_count": counts["skipped"],
        "timed_out": bool(child["timed_out"]),
        "coverage": sentinel_coverage(sentinel) if report else None,
        "error": error,
        "failures": report["failures"] if report else [],
        "stdout_tail": child["stdout"].text(tail, strip),
        "stderr_tail": child["stderr"].text(tail, strip),
        "returncode": child["returncode"],
    }


def main(argv: list[str]) -> int:
    """Entry point: ``python -I harness.py CONFIG_JSON``."""
    cfg: HarnessConfig = json.loads(argv[1])
    make_undumpable()
    apply_rlimits(cfg.get("rlimits", {}))
    if cfg["mode"] == "exec":
        os.execvpe(cfg["argv"][0], cfg["argv"], cfg["env"])
    result = run_pytest(cfg)
    sys.stdout.write("\n" + RESULT_MARKER + json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
