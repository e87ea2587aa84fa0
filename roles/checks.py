"""Running one attempt's tests: syntax first, then the tests in the sandbox, with coverage.

Deterministic — no model here. Generated code never runs in this process: the tests
run through :func:`sandbox.run_tests`, which isolates them and counts results from the
report file the test runner writes. The validate node, the candidates, the single-agent
routes, the command line and the benchmarks all check attempts here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from analysis.parsing import parse_python
from roles.context import NO_CODE
from sandbox import SandboxLimits, run_tests
from sandbox.report import ValidationReport

if TYPE_CHECKING:
    from graph.config import Settings

__all__ = ["check_attempt", "failed_before_running"]


def failed_before_running(error: str) -> ValidationReport:
    """A report for an attempt that could not be run at all, saying why."""
    return ValidationReport(
        passed=False, passed_count=0, failed_count=0, errored_count=0, skipped_count=0,
        timed_out=False, coverage=None, duration_s=0.0, error=error, failures=[],
        in_process_tests=[], isolation="none", stdout_tail="", stderr_tail="",
    )  # fmt: skip


def _syntax_error(source: str, what: str) -> str | None:
    try:
        parse_python(source)
    except SyntaxError as exc:
        return f"syntax error in the {what}: line {exc.lineno}: {exc.msg}"
    except ValueError as exc:  # e.g. null bytes
        return f"the {what} cannot be parsed: {exc}"
    return None


COLLECTION_CALL = "cannot run while the tests are being collected"
"""The sandbox's words when a test module calls the code as pytest imports it: the tests' fault."""


def _tests_collected_nothing(report: ValidationReport) -> bool:
    """Nothing ran, and the tests are to blame (not the code failing to import)."""
    error = report["error"] or ""
    if COLLECTION_CALL in error and report["passed_count"] + report["failed_count"] == 0:
        return True
    ran = report["passed_count"] + report["failed_count"] + report["errored_count"]
    return ran == 0 and not error.startswith("import failed")


def check_attempt(code: str, tests: str, settings: Settings, *, ranking: bool = False) -> tuple[ValidationReport, bool]:
    """Validate one attempt; return its report and whether the tests must be rewritten.

    ``ranking``: the run only ranks the code among others, so it stops at
    ``Settings.rank_timeout_s`` (or ``test_timeout_s``, if lower) rather than
    ``test_timeout_s``.
    """
    if not code.strip():
        return failed_before_running(NO_CODE), False
    if error := _syntax_error(code, "code"):
        return failed_before_running(error), False
    if not tests.strip():
        return failed_before_running("no tests were written for this code"), True
    if error := _syntax_error(tests, "tests"):
        return failed_before_running(error), True
    timeout_s = min(settings.rank_timeout_s, settings.test_timeout_s) if ranking else settings.test_timeout_s
    report = run_tests(code, tests, limits=SandboxLimits(wall_timeout_s=timeout_s))
    return report, _tests_collected_nothing(report)
