"""refine: the next attempt, from the actual failures and the review's findings.

The refiner sees the task, the current code, the failing tests' trimmed tracebacks
and the reviewer's recommendations — the real errors, which beat a separate
reflection step. Tests are kept (they were written from the task). With
``resample_repeats``, code the loop already tried is asked for again with sampling. When the tests
themselves could not run (a syntax error, nothing collected), nothing is known
against the code yet: only the tests are written again, told why the last ones failed.
"""

from __future__ import annotations

import time

from langchain_core.runnables import RunnableConfig

from analysis.interface import reconcile_tests, strip_demo_code
from analysis.parsing import extract_code
from analysis.testcases import remove_tests, test_function_name
from graph.config import Settings
from graph.state import AgentState, DisputedTest, ReviewReport
from nodes.arbiter import find_disputed_tests
from nodes.candidates import first_new
from nodes.common import NO_CODE, ModelProvider, Usage, call_model, node_timing
from nodes.generate import write_code, write_tests
from sandbox import SandboxLimits
from sandbox.report import ValidationReport

__all__ = ["describe_problems", "refine"]

MAX_FAILURES = 3
MAX_TRACEBACK_CHARS = 700


def describe_problems(validation: ValidationReport, review: ReviewReport | None, *, details: bool = True) -> str:
    """Turn a validation and a review into the short problem list the refiner reads.

    Without ``details`` the refiner learns only how many tests failed, not which or how
    (a lever the benchmark measures: what the real failures are worth).
    """
    lines: list[str] = []
    if not details and not validation["passed"]:
        ran = validation["passed_count"] + validation["failed_count"] + validation["errored_count"]
        lines.append(f"- {ran - validation['passed_count']} of {ran} tests failed.")
        validation = {**validation, "error": None, "failures": []}
    if validation["error"] and not validation["failures"]:
        lines.append(f"- The tests could not pass: {validation['error']}")
    for failure in validation["failures"][:MAX_FAILURES]:
        trace = failure["traceback"].strip()[-MAX_TRACEBACK_CHARS:]
        lines.append(f"- Test `{failure['test']}` failed: {failure['message']}\n```\n{trace}\n```")
    hidden = len(validation["failures"]) - MAX_FAILURES
    if hidden > 0:
        lines.append(f"- {hidden} more test(s) failed the same way or similarly.")
    if review:
        lines.extend(f"- Review: {rec}" for rec in review["recommendations"][:5])
    return "\n".join(lines) or "- The review asks for clearer, simpler code."


def _last_code(state: AgentState) -> str:
    if state.get("code"):
        return state["code"]
    for attempt in reversed(state.get("attempts", [])):
        if attempt["code"]:
            return attempt["code"]
    return ""


def _rewrite_tests(
    state: AgentState, config: RunnableConfig, model: ModelProvider, usage: Usage, settings: Settings
) -> tuple[str, str, str]:
    code = state["code"]
    tests = write_tests(
        model,
        task=state["task"],
        code=code,
        user_tests=state.get("user_tests"),
        config=config,
        usage=usage,
        previous_error=state["validation"]["error"],
        use_examples=settings.task_examples,
        show_code=settings.tester_sees_code,
    )
    return code, tests, f"tests rewritten, {tests.count('def test_')} tests"


def _rewrite_code(
    state: AgentState,
    config: RunnableConfig,
    model: ModelProvider,
    usage: Usage,
    validation: ValidationReport,
    tests: str,
    settings: Settings,
) -> tuple[str, str, str]:
    def ask_refiner(overrides: dict[str, object] | None = None) -> str | None:
        reply = call_model(
            model,
            "refiner",
            system="refiner_system",
            user_prompt="refiner_user",
            slots={
                "task": state["task"],
                "code": _last_code(state).strip() or "# (no code yet)",
                "problems": describe_problems(validation, state.get("review"), details=settings.failure_details),
            },
            config=config,
            usage=usage,
            overrides=overrides,
        )
        code = extract_code(reply)
        return strip_demo_code(code) if code else None

    def ask_generator(overrides: dict[str, object]) -> str | None:
        return write_code(
            model,
            task=state["task"],
            entry_point=state.get("entry_point"),
            user_tests=state.get("user_tests"),
            config=config,
            usage=usage,
            overrides=overrides,
        )

    code = ask_refiner()
    note = ""
    if settings.resample_repeats:
        tried = [a["code"] for a in state.get("attempts", [])] + [_last_code(state)]
        code, asks = first_new(code, tried, (ask_refiner, ask_generator), seed=state.get("iteration", 0) + 1)
        note = f", {asks} sampled re-ask(s) after a repeat" if asks else ""
    if not code:
        return "", tests, NO_CODE
    if not tests.strip():  # the first attempt had no code to write tests for
        tests = write_tests(
            model,
            task=state["task"],
            code=code,
            user_tests=state.get("user_tests"),
            config=config,
            usage=usage,
            use_examples=settings.task_examples,
            show_code=settings.tester_sees_code,
        )
        return code, tests, f"new code, {len(code.splitlines())} lines{note}, tests written"
    return code, reconcile_tests(tests, code), f"new code, {len(code.splitlines())} lines{note}"


def refine(state: AgentState, config: RunnableConfig, *, model: ModelProvider, settings: Settings) -> dict:
    """Write the next attempt from the current one's problems."""
    started = time.perf_counter()
    settings = settings.merged(config)
    iteration = state.get("iteration", 0) + 1
    usage = Usage()
    disputed: list[DisputedTest] = []
    if state.get("tests_need_rewrite") and state.get("code"):
        code, tests, summary = _rewrite_tests(state, config, model, usage, settings)
    else:
        validation, tests = state["validation"], state.get("tests", "")
        if settings.arbitrate_tests and validation["failures"] and state.get("code"):
            disputed = find_disputed_tests(
                model, task=state["task"], code=state["code"], tests=tests, failures=validation["failures"],
                iteration=iteration, config=config, usage=usage,
                limits=SandboxLimits(wall_timeout_s=settings.test_timeout_s),
            )  # fmt: skip
        names = {d["test"] for d in disputed}
        if names:
            tests = remove_tests(tests, names)
            remaining = [f for f in validation["failures"] if test_function_name(f["test"]) not in names]
            validation = {**validation, "failures": remaining}
        if names and not validation["failures"] and "def test" in tests:
            # Every failure was a disputed claim: the code stands, re-validate without them.
            code, summary = state["code"], f"set aside {len(names)} disputed test(s), code kept"
        else:
            code, tests, summary = _rewrite_code(state, config, model, usage, validation, tests, settings)
            if names:
                summary += f", set aside {len(names)} disputed test(s)"
    return {
        "disputed_tests": disputed,
        "iteration": iteration,
        "code": code,
        "tests": tests,
        "generation_error": None if code else NO_CODE,
        "tests_need_rewrite": False,
        "node_timings": [node_timing("refine", iteration, started, summary, usage)],
    }
