"""Typed reports of running untrusted tests: what validate hands to review and refine.

Also how strong a pass is: a test judged in the code's own process (see
:class:`ValidationReport`) is weaker evidence than one judged outside it.
"""

from __future__ import annotations

from dataclasses import dataclass

from typing_extensions import TypedDict


class TestFailure(TypedDict):
    """One failing or erroring test, with a trimmed traceback."""

    test: str
    message: str
    traceback: str


class ValidationReport(TypedDict):
    """The outcome of running an attempt's tests in isolation.

    Counts come from the results the test runner sent on a pipe of its own, never from
    its exit code. ``passed`` is true only when at least one test ran and none failed or
    errored. ``error`` says why the run did not pass (None when it passed).

    How each test was judged: the code runs in a process of its own and its results
    reach the tests as plain data, so it cannot decide a test. A test that passes the
    code something that cannot cross (a function, say) is judged in the code's own
    process instead, where the code could forge the outcome: those are named in
    ``in_process_tests``, weaker evidence.
    """

    passed: bool
    passed_count: int
    failed_count: int
    errored_count: int
    skipped_count: int
    timed_out: bool
    coverage: float | None  # percent of the solution module's lines run by the tests
    duration_s: float
    error: str | None
    failures: list[TestFailure]
    in_process_tests: list[str]  # tests judged in the code's own process: weaker evidence
    isolation: str  # the sandbox tier that ran it: "bubblewrap", "unshare", "rlimits", or "none"
    stdout_tail: str
    stderr_tail: str


@dataclass(frozen=True)
class CommandResult:
    """The outcome of one command (a linter, say) run on untrusted files in the sandbox.

    ``returncode`` is negative (minus the signal) when the command was killed.
    ``stdout`` and ``stderr`` hold at most the configured cap of bytes each, decoded
    as UTF-8 with replacement; ``truncated`` says whether anything was cut.
    """

    returncode: int
    stdout: str
    stderr: str
    timed_out: bool
    duration_s: float
    isolation: str
    truncated: bool = False


def judged_out_of_process(report: ValidationReport) -> int:
    """Passing tests whose verdict the code could not write (judged outside its process)."""
    return max(0, report["passed_count"] - len(report.get("in_process_tests", [])))


def strong_pass(report: ValidationReport) -> bool:
    """Passed, with at least one passing test judged outside the code's process."""
    return report["passed"] and judged_out_of_process(report) > 0


def judging_summary(report: ValidationReport) -> str:
    """How the tests were judged, in words, for every report a person reads."""
    in_process = report.get("in_process_tests", [])
    if not in_process:
        return "every test judged outside the code's process"
    names = ", ".join(in_process[:3]) + (" ..." if len(in_process) > 3 else "")
    return f"{len(in_process)} test(s) judged in the code's own process, weaker evidence ({names})"
