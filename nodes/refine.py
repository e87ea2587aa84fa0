"""refine: the next attempt, from the actual failures and the review's findings.

The refiner (:func:`roles.fix.fix_code`) sees the task, the current code, the failing
tests' trimmed tracebacks and the reviewer's recommendations. Tests are kept (they were
written from the task). With ``arbitrate_tests``, failing one-claim tests an
independent reference contradicts are set aside first (:mod:`roles.arbiter`). With
``resample_repeats``, code the loop already tried is asked for again with sampling.
With ``stop_on_task_tests``, code that passes every test the task gives, and fails
only tests the model wrote, is kept and the run stops after it.
When the tests themselves could not run (a syntax error, nothing collected), nothing is
known against the code yet: only the tests are written again, told why the last ones
failed.
"""

from __future__ import annotations

import time

from langchain_core.runnables import RunnableConfig
from langgraph.runtime import Runtime

from analysis.interface import reconcile_tests
from analysis.testcases import remove_tests, test_function_name
from graph.config import Settings
from graph.state import AgentState, DisputedTest
from nodes.common import call_context, node_timing
from roles.arbiter import find_disputed_tests
from roles.candidates import first_new, only_own_tests_fail
from roles.code import write_code
from roles.context import NO_CODE, CallContext, ModelProvider
from roles.fix import describe_problems, fix_code
from roles.tests import write_tests
from sandbox.report import ValidationReport

__all__ = ["refine"]


def _last_code(state: AgentState) -> str:
    if state.get("code"):
        return state["code"]
    for attempt in reversed(state.get("attempts", [])):
        if attempt["code"]:
            return attempt["code"]
    return ""


def _rewrite_tests(state: AgentState, ctx: CallContext) -> tuple[str, str, str]:
    code = state["code"]
    tests = write_tests(
        ctx,
        task=state["task"],
        code=code,
        user_tests=state.get("user_tests"),
        previous_error=state["validation"]["error"],
    )
    return code, tests, f"tests rewritten, {tests.count('def test_')} tests"


def _rewrite_code(
    state: AgentState, ctx: CallContext, validation: ValidationReport, tests: str
) -> tuple[str, str, str]:
    task, last = state["task"], _last_code(state)
    problems = describe_problems(validation, state.get("review"), details=ctx.settings.failure_details)

    def ask_refiner(overrides: dict[str, object] | None = None) -> str | None:
        return fix_code(ctx, task=task, code=last, problems=problems, overrides=overrides)

    def ask_generator(overrides: dict[str, object]) -> str | None:
        return write_code(
            ctx,
            task=task,
            entry_point=state.get("entry_point"),
            user_tests=state.get("user_tests"),
            overrides=overrides,
        )

    code = ask_refiner()
    note = ""
    if ctx.settings.resample_repeats:
        tried = [a["code"] for a in state.get("attempts", [])] + [last]
        code, asks = first_new(code, tried, (ask_refiner, ask_generator), seed=state.get("iteration", 0) + 1)
        note = f", {asks} sampled re-ask(s) after a repeat" if asks else ""
    if not code:
        return "", tests, NO_CODE
    if not tests.strip():  # the first attempt had no code to write tests for
        tests = write_tests(ctx, task=task, code=code, user_tests=state.get("user_tests"))
        return code, tests, f"new code, {len(code.splitlines())} lines{note}, tests written"
    return code, reconcile_tests(tests, code), f"new code, {len(code.splitlines())} lines{note}"


def refine(state: AgentState, config: RunnableConfig, runtime: Runtime[Settings], *, model: ModelProvider) -> dict:
    """Write the next attempt from the current one's problems."""
    started = time.perf_counter()
    ctx = call_context(model, config, runtime)
    iteration = state.get("iteration", 0) + 1
    disputed: list[DisputedTest] = []
    settled = False
    if state.get("tests_need_rewrite") and state.get("code"):
        code, tests, summary = _rewrite_tests(state, ctx)
    else:
        validation, tests = state["validation"], state.get("tests", "")
        if ctx.settings.arbitrate_tests and validation["failures"] and state.get("code"):
            disputed = find_disputed_tests(
                ctx, task=state["task"], code=state["code"], tests=tests, failures=validation["failures"],
                iteration=iteration,
            )  # fmt: skip
        names = {d["test"] for d in disputed}
        if names:
            tests = remove_tests(tests, names)
            remaining = [f for f in validation["failures"] if test_function_name(f["test"]) not in names]
            validation = {**validation, "failures": remaining}
        if names and not validation["failures"] and "def test" in tests:
            # Every failure was a disputed claim: the code stands, re-validate without them.
            code, summary = state["code"], f"set aside {len(names)} disputed test(s), code kept"
        elif ctx.settings.stop_on_task_tests and only_own_tests_fail(validation, tests, state.get("user_tests")):
            # The task's own tests pass; only the model's tests disagree: the code stands, and this is the end.
            code, settled = state["code"], True
            summary = f"task's own tests pass, {len(validation['failures'])} self-written test(s) disagree: code kept"
            summary += f", set aside {len(names)} disputed test(s)" if names else ""
        else:
            code, tests, summary = _rewrite_code(state, ctx, validation, tests)
            if names:
                summary += f", set aside {len(names)} disputed test(s)"
    return {
        "disputed_tests": disputed,
        "iteration": iteration,
        "code": code,
        "tests": tests,
        "generation_error": None if code else NO_CODE,
        "tests_need_rewrite": False,
        "settled": settled,
        "node_timings": [node_timing("refine", iteration, started, summary, ctx.usage)],
    }
