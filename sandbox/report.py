"""Typed reports of running untrusted tests: what validate hands to review and refine."""

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
