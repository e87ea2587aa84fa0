"""validate: syntax check, then the attempt's tests in the sandbox, with coverage.

Deterministic — no model here. Generated code never runs in this process: the
tests run through :func:`sandbox.run_tests`, which isolates them and counts results
from the report file the test runner writes.
"""

from __future__ import annotations

import ast
import time

from langchain_core.runnables import RunnableConfig

from graph.config import Settings
from graph.state import AgentState
from nodes.common import NO_CODE, node_timing
from sandbox import SandboxLimits, run_tests
from sandbox.report import ValidationReport

__all__ = ["failed_before_running", "validate"]


def failed_before_running(error: str) -> ValidationReport:
    """A report for an attempt that could not be run at all, saying why."""
    return ValidationReport(
        passed=False, passed_count=0, failed_count=0, errored_count=0, skipped_count=0,
        timed_out=False, coverage=None, duration_s=0.0, error=error, failures=[],
        in_process_tests=[], isolation="none", stdout_tail="", stderr_tail="",
    )  # fmt: skip


def _syntax_error(source: str, what: str) -> str | None:
    try:
        ast.parse(source)
    except SyntaxError as exc:
        return f"syntax error in the {what}: line {exc.lineno}: {exc.msg}"
    except ValueError as exc:  # e.g. null bytes
        return f"the {what} cannot be parsed: {exc}"
    return None


def _tests_collected_nothing(report: ValidationReport) -> bool:
    ran = report["passed_count"] + report["failed_count"] + report["errored_count"]
    return ran == 0 and not (report["error"] or "").startswith("import failed")


def check_attempt(code: str, tests: str, settings: Settings) -> tuple[ValidationReport, bool]:
    """Validate one attempt; return its report and whether the tests must be rewritten."""
    if not code.strip():
        return failed_before_running(NO_CODE), False
    if error := _syntax_error(code, "code"):
        return failed_before_running(error), False
    if not tests.strip():
        return failed_before_running("no tests were written for this code"), True
    if error := _syntax_error(tests, "tests"):
        return failed_before_running(error), True
    report = run_tests(code, tests, limits=SandboxLimits(wall_timeout_s=settings.test_timeout_s))
    return report, _tests_collected_nothing(report)


def validate(state: AgentState, config: RunnableConfig, *, settings: Settings) -> dict:
    """Run the current attempt's tests and report the outcome."""
    started = time.perf_counter()
    settings = settings.merged(config)
    iteration = state.get("iteration", 0)
    report, rewrite = check_attempt(state.get("code", ""), state.get("tests", ""), settings)
    if report["passed"]:
        summary = f"tests passed {report['passed_count']}/{report['passed_count']}"
    else:
        total = report["passed_count"] + report["failed_count"] + report["errored_count"]
        summary = f"tests passed {report['passed_count']}/{total}: {report['error'] or 'failed'}"
    return {
        "validation": report,
        "tests_need_rewrite": rewrite,
        "node_timings": [
            node_timing("validate", iteration, started, summary[:160], sandbox_seconds=report["duration_s"])
        ],
    }
