"""The supervisor that runs inside the sandbox: limits, pytest, the verdict.

It is started by the host with one JSON argument (see :class:`HarnessConfig` for its
keys) and runs with the interpreter's ``-I -S`` flags, so no environment variable,
work-folder file or site package reaches it. It imports only the standard library and
nothing of the project: only this folder is mounted into the sandbox.

Modes:

- ``exec``: apply the resource limits, then replace itself with the given command.
- ``pytest``: apply the limits, read the tests from stdin, and run pytest on them in a
  child process whose output is read through pipes (keeping a bounded tail). The code
  under test runs in a process of its own, started by the pytest process; values
  cross between them as plain data (``remote.py``, ``callee.py``), so the code cannot
  decide a test. The pytest process sends its results on a pipe that only it holds
  (``sandbox_guard.py``); counts are read from there, never from an exit code or a
  file. Tests that could only be judged in the code's own process (they pass it a
  function, say) run again that way and are named in the result. Whatever the tests
  left behind is killed, and one result line, prefixed with :data:`RESULT_MARKER`, is
  printed on this process's stdout.

Everything that parses what the tests produced runs inside the sandbox, so a hostile
result can only hurt the sandbox. The host still checks the result line's shape.
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
from typing import Any, TypedDict

RESULT_MARKER = "@@starcoder-sandbox-result@@"
RESULT_FD_ENV = "STARCODER_SANDBOX_RESULT_FD"  # these four as in sandbox_guard.py
JUDGE_ENV = "STARCODER_SANDBOX_JUDGE"
MODULE_ENV = "STARCODER_SANDBOX_MODULE"
CODE_DIR_ENV = "STARCODER_SANDBOX_CODE_DIR"
RESULT_CAP_BYTES = 8 * 1024 * 1024
TESTS_CAP_BYTES = 4 * 1024 * 1024
MAX_FAILURES = 20
TRACEBACK_CHARS = 1500
MESSAGE_CHARS = 300
LINE_CHARS = 200
EXIT_GRACE_S = 0.3  # how long to keep reading pipes after pytest exits
_INTERNAL_FRAME = re.compile(r"(site-packages/(_pytest|pluggy)/|<frozen |/lib/python\d\.\d+/|(^|/)(remote|plain)\.py:)")
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


def tests_path(cfg: HarnessConfig) -> str:
    """Where the tests are written for pytest; the guard deletes them once collected."""
    return f"{cfg['out_dir']}/tests/test_{cfg['module']}.py"


def write_tests(cfg: HarnessConfig, source: bytes) -> None:
    """Put the tests where pytest will find them (again, for a second pass)."""
    path = tests_path(cfg)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(source)


def pytest_argv(cfg: HarnessConfig, targets: list[str]) -> list[str]:
    """The command line of the pytest child: only our guard plugin, no conftest, no cache."""
    lib = cfg["lib_dir"]
    return [
        sys.executable, "-m", "pytest",
        "-c", f"{lib}/pytest.ini", f"--rootdir={os.path.dirname(tests_path(cfg))}",
        "-p", "no:cacheprovider", "-p", "no:junitxml", "-p", "sandbox_guard", "--noconftest",
        "-v", "--tb=short", "--color=no", "-o", "console_output_style=classic",
        *targets,
    ]  # fmt: skip


def _read_until_done(proc: subprocess.Popen[bytes], tails: dict[int, _Tail], deadline: float) -> bool:
    """Read the child's pipes into ``tails``; return True if the deadline passed first."""
    selector = selectors.DefaultSelector()
    for fd in tails:
        selector.register(fd, selectors.EVENT_READ)
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


def _child_env(cfg: HarnessConfig, judge: str, result_fd: int) -> dict[str, str]:
    env = dict(cfg["env"])
    env[RESULT_FD_ENV] = str(result_fd)
    env[JUDGE_ENV] = judge
    env[MODULE_ENV] = cfg["module"]
    env[CODE_DIR_ENV] = cfg["code_dir"]
    # Only in the in-process pass may the real module be imported by the tests.
    paths = [cfg["lib_dir"]] + ([cfg["code_dir"]] if judge == "in_process" else [])
    env["PYTHONPATH"] = ":".join(paths)
    return env


def _parse_result(tail: _Tail) -> dict[str, Any] | None:
    if tail.total == 0 or tail.total > RESULT_CAP_BYTES:
        return None
    try:
        data = json.loads(bytes(tail.data).decode("utf-8"))
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def run_child(cfg: HarnessConfig, judge: str, targets: list[str], deadline: float) -> dict[str, Any]:
    """Run pytest in judge mode ``judge``; return its exit status, results and output tails."""
    keep = int(cfg.get("read_cap_bytes", 65536))
    read_end, write_end = os.pipe()
    started = time.monotonic()
    try:
        proc = subprocess.Popen(
            pytest_argv(cfg, targets), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=_child_env(cfg, judge, write_end),
            cwd=cfg["scratch_dir"], start_new_session=True, pass_fds=(write_end,),
        )  # fmt: skip
    finally:
        os.close(write_end)
    assert proc.stdout is not None and proc.stderr is not None
    stdout_tail, stderr_tail = _Tail(keep), _Tail(keep)
    result_tail = _Tail(RESULT_CAP_BYTES + 1)
    tails = {proc.stdout.fileno(): stdout_tail, proc.stderr.fileno(): stderr_tail, read_end: result_tail}
    timed_out = _read_until_done(proc, tails, deadline)
    kill_leftovers(proc, bool(cfg.get("private_pidns")))
    proc.stdout.close()
    proc.stderr.close()
    os.close(read_end)
    return {
        "returncode": proc.returncode,
        "timed_out": timed_out,
        "stdout": stdout_tail,
        "stderr": stderr_tail,
        "result": None if timed_out else _parse_result(result_tail),
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
    """How the code and test folders are spelt in pytest's output; stripped to bare names."""
    spellings: set[str] = set()
    for folder in (cfg["code_dir"], os.path.dirname(tests_path(cfg))):
        folder = folder.rstrip("/")
        spellings |= {folder + "/", os.path.relpath(folder, cfg["scratch_dir"]) + "/"}
    return tuple(sorted(spellings, key=len, reverse=True))  # longest first: "../../x/" before "/x/"


def trim_traceback(text: str, strip: tuple[str, ...] = (), limit: int = TRACEBACK_CHARS) -> str:
    """Keep the last frames of the tests' own code and the assertion lines, capped."""
    for prefix in strip:
        text = text.replace(prefix, "")
    frames, errors = _frames([_short_line(ln) for ln in text.splitlines() if ln.strip()])
    own = [frame for frame in frames if not _INTERNAL_FRAME.search(frame[0])]
    kept = (own or frames)[-3:]
    head = [f"... ({len(frames) - len(kept)} frames above omitted)"] if len(kept) < len(frames) else []
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


def _test_name(nodeid: str) -> str:
    """``test_x`` or ``TestClass::test_x`` from pytest's node id."""
    return nodeid.split("::", 1)[1] if "::" in nodeid else nodeid


def _failure(test: dict[str, Any], cfg: HarnessConfig) -> dict[str, str]:
    message = str(test.get("message") or "").strip()
    first = message.splitlines()[0] if message else ""
    return {
        "test": _test_name(str(test.get("nodeid", "?"))),
        "message": _short_line(first)[:MESSAGE_CHARS],
        "traceback": trim_traceback(str(test.get("longrepr") or ""), path_prefixes(cfg)),
    }


def tally(tests: list[dict[str, Any]], cfg: HarnessConfig) -> tuple[dict[str, int], list[dict[str, str]]]:
    """Counts by outcome, and the failures, of the guard's per-test results."""
    counts = {"passed": 0, "failed": 0, "errored": 0, "skipped": 0}
    failures: list[dict[str, str]] = []
    for test in tests:
        outcome = test.get("outcome")
        outcome = outcome if outcome in counts else "errored"
        counts[outcome] += 1
        if outcome in ("failed", "errored"):
            failures.append(_failure(test, cfg))
    return counts, failures[:MAX_FAILURES]


def read_results(result: dict[str, Any], cfg: HarnessConfig) -> dict[str, Any]:
    """Counts, failures, collection problems and judging from the guard's results."""
    tests = [t for t in result.get("tests") or [] if isinstance(t, dict)]
    counts, failures = tally(tests, cfg)
    problem = result.get("import_problem")
    errors = [str(text) for text in result.get("collect_errors") or []]
    if not problem and errors:
        problem = _collection_problem(errors[0])
    if problem and not tests:
        counts["errored"] = 1  # the test module as one erroring test, as JUnit counts it
    if problem and errors and "SyntaxError" in problem and "line " not in problem:
        problem += _syntax_error_location([ln.strip() for ln in errors[0].splitlines()])
    return {
        "counts": counts,
        "failures": failures,
        "problem": str(problem) if problem else None,
        "tests": tests,
        "exitstatus": result.get("exitstatus"),
        "tampering": [str(item) for item in result.get("tampering") or []][:10],
        "coverage": result.get("coverage"),
    }


def _collection_problem(text: str) -> str:
    """What kept the tests from being collected."""
    return f"import failed: {_exception_line(text)}"


def coverage_percent(value: object) -> float | None:
    """The coverage percent, if it is a number in range."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 100
    return float(value) if ok else None  # type: ignore[arg-type]


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


def _abnormal_end(child: dict[str, Any], report: dict[str, Any] | None, deadline_s: float) -> str | None:
    """Why the run's outcome cannot be read from its results at all, if so."""
    if child["timed_out"]:
        hung = _hanging_test(child["stdout"].text(20000))
        return f"timed out after {deadline_s:g}s" + (f" in {hung}" if hung else "")
    if report and report["tampering"]:
        return "the tests tried to change how pytest reports: " + "; ".join(report["tampering"][:3])
    if child["returncode"] < 0:
        return _crash_reason(child["returncode"])
    return None


def verdict(child: dict[str, Any], report: dict[str, Any] | None, deadline_s: float) -> str | None:
    """Why the run did not pass, or None when it did."""
    abnormal = _abnormal_end(child, report, deadline_s)
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
    return _report_verdict(report["counts"], returncode)


def _report_verdict(counts: dict[str, int], returncode: int) -> str | None:
    """The verdict from the results pytest did send."""
    ran = counts["passed"] + counts["failed"] + counts["errored"]
    if ran == 0 and counts["skipped"]:
        return f"no tests ran: all {counts['skipped']} were skipped"
    if returncode == 5 or ran == 0:
        return "no tests were collected"
    if counts["failed"] or counts["errored"]:
        bad = counts["failed"] + counts["errored"]
        return f"{bad} of {ran} tests failed"
    if returncode != 0:
        return f"pytest exited with code {returncode} although its results show no failures"
    return None


def _read_tests() -> bytes:
    """The tests, from stdin (never a file the code's process could read first)."""
    data = sys.stdin.buffer.read(TESTS_CAP_BYTES + 1)
    sys.stdin.close()
    if len(data) > TESTS_CAP_BYTES:
        raise ValueError(f"the tests are larger than {TESTS_CAP_BYTES} bytes")
    return data


def _judge_in_process(
    cfg: HarnessConfig, source: bytes, report: dict[str, Any], deadline: float
) -> tuple[dict[str, Any], list[str]] | None:
    """Run the tests that could not be judged out of process again, in the code's process.

    Returns the second child's run and the names of the tests judged that way, or None
    when every test was judged out of process.
    """
    nodeids = [t["nodeid"] for t in report["tests"] if t.get("needs_in_process") and t.get("nodeid")]
    if not nodeids:
        return None
    write_tests(cfg, source)
    folder = os.path.dirname(tests_path(cfg))
    again = run_child(cfg, "in_process", [f"{folder}/{nodeid}" for nodeid in nodeids], deadline)
    redone = read_results(again["result"], cfg) if again["result"] else None
    if again["timed_out"] or redone is None or redone["tampering"]:
        return again, []
    by_id = {t.get("nodeid"): t for t in redone["tests"]}
    report["tests"] = [by_id.get(t.get("nodeid"), t) for t in report["tests"]]
    report["counts"], report["failures"] = tally(report["tests"], cfg)
    return again, [_test_name(nodeid) for nodeid in nodeids if nodeid in by_id]


def run_pytest(cfg: HarnessConfig) -> dict[str, Any]:
    """Run the tests and build the result the host turns into a ValidationReport."""
    source = _read_tests()
    write_tests(cfg, source)
    deadline = time.monotonic() + float(cfg["deadline_s"])
    child = run_child(cfg, "isolated", [tests_path(cfg)], deadline)
    report = read_results(child["result"], cfg) if child["result"] else None
    in_process: list[str] = []
    second = _judge_in_process(cfg, source, report, deadline) if report is not None else None
    if second is not None:
        again, in_process = second
        # The second pass ran exactly the tests the first could not judge: its end stands
        # for theirs. Without results from it, nothing can be read.
        child = {**child, "timed_out": again["timed_out"], "returncode": again["returncode"]}
        report = report if in_process else None
    error = verdict(child, report, float(cfg["deadline_s"]))
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
        "coverage": coverage_percent(report["coverage"]) if report else None,
        "error": error,
        "failures": report["failures"] if report else [],
        "in_process_tests": in_process,
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
