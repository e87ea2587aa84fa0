"""generate: the first attempt — code from the task, then tests from the task alone.

Two model calls (:func:`roles.code.write_code`, then :func:`roles.tests.write_tests`),
and with ``Settings.candidates`` above 1, more sampled code when the first fails its
tests (:func:`roles.candidates.pick_candidate`). With ``Settings.examples_first``, the
candidates are drawn before the tester writes any test, and ranked by the tests the
task itself gives (:func:`roles.tests.task_tests`), when it gives some. The task's budget and threshold are
settled here, once per run: the task's own values, else the run's settings (the token
budget by whether the task's own examples or given tests are among its tests). With
``Settings.tests_with_code``, a stub-shaped task's tests are written from its stub in
the same batch as the first code (:func:`roles.context.ask_together`), not after it.
With ``Settings.tests_with_candidates``, a task that states examples has its first code
checked on them first; when it fails one, the tester's call goes out in the same batch as
the first wave of sampled candidates.
When a sampled candidate replaced the first code, the other samples are probed as its
rivals (:func:`roles.rivals.contest`, with ``Settings.contest_passes``): where one that
answers every example alike parts from it, its pass is contested.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.runtime import Runtime

from analysis.testcases import has_examples
from graph.config import Settings
from graph.state import AgentState, TaskInput, check_task_input
from nodes.common import call_context, node_timing
from roles.candidates import (
    Pick,
    candidate_overrides,
    fails_an_example,
    has_task_tests,
    pick_candidate,
    wave_size,
)
from roles.code import code_ask, code_asks, task_form, write_code, write_codes
from roles.context import NO_CODE, Ask, CallContext, ModelProvider, ask_together
from roles.rivals import contest
from roles.tests import fit_tests, task_tests, tester_ask, write_tests

__all__ = ["generate"]


def generate(state: AgentState, config: RunnableConfig, runtime: Runtime[Settings], *, model: ModelProvider) -> dict:
    """Write the first attempt's code and its tests."""
    started = time.perf_counter()
    ctx = call_context(model, config, runtime)
    task_input = check_task_input({k: v for k, v in state.items() if k in TaskInput.__annotations__})
    task, entry_point, user_tests = task_input["task"], task_input.get("entry_point"), task_input.get("user_tests")
    settings = ctx.settings

    def sample(overrides: list[dict[str, object]]) -> list[str | None]:
        return write_codes(ctx, task=task, entry_point=entry_point, user_tests=user_tests, overrides=overrides)

    drafted: str | None = None  # tests written from the task's stub while the code was
    if settings.tests_with_code and not settings.tester_sees_code and task_form(task, entry_point) == "stub":
        asks: list[Ask[Any]] = [
            code_ask(ctx, task=task, entry_point=entry_point, user_tests=user_tests),
            tester_ask(ctx, task=task, shown=task, user_tests=user_tests),
        ]
        code, drafted = ask_together(ctx, asks)
    else:
        code = write_code(ctx, task=task, entry_point=entry_point, user_tests=user_tests)
    tests: str | None = None  # None: not written yet
    pick = None
    if code and settings.candidates > 1 and settings.examples_first:
        if given := task_tests(task, code, user_tests, examples=settings.task_examples):
            pick = pick_candidate(ctx, code, given, sample=sample, task_tests_only=True)
            code = pick.code
    elif code and drafted is None and _tests_beside_candidates(settings):
        if has_examples(given := task_tests(task, code, user_tests, examples=settings.task_examples)):
            tests, pick = _tests_and_candidates(
                ctx, code, given, task=task, entry_point=entry_point, user_tests=user_tests, sample=sample
            )
            code = pick.code if pick else code
    if tests is None:
        if not code:
            tests = ""
        elif drafted is not None:
            tests = fit_tests(ctx, drafted, task=task, code=code, user_tests=user_tests)
        else:
            tests = write_tests(ctx, task=task, code=code, user_tests=user_tests)
        if code and settings.candidates > 1 and pick is None:
            pick = pick_candidate(ctx, code, tests, sample=sample)
            code = pick.code
    contested = []
    if code and pick and pick.index > 0 and settings.contest_passes:
        contested = contest(ctx, code, pick.codes, tests=tests, entry_point=entry_point)
    picked = f", candidate {pick.index + 1} of {pick.tried} tried" if pick else ""
    picked += f", contested by {len(contested)} rival(s)" if contested else ""
    summary = (
        f"{len((code or '').splitlines())} lines of code, {tests.count('def test_')} tests{picked}" if code else NO_CODE
    )
    return {
        "task": task,
        "entry_point": entry_point,
        "user_tests": user_tests,
        # The task's own values first, then the run's settings (see graph.config).
        "max_iterations": task_input.get("max_iterations", ctx.settings.max_iterations),
        "min_score": task_input.get("min_score", ctx.settings.min_score),
        "token_budget": settings.token_budget_with_examples if has_task_tests(tests) else settings.token_budget,
        "model": ", ".join(sorted(ctx.usage.models)) or model.name,
        "iteration": 0,
        "code": code or "",
        "tests": tests,
        "generation_error": None if code else NO_CODE,
        "tests_need_rewrite": False,
        "settled": False,
        "disputed_tests": [],
        "contested": contested,
        "node_timings": [node_timing("generate", 0, started, summary, ctx.usage)],
    }


def _tests_beside_candidates(settings: Settings) -> bool:
    """Whether the tests may be written in the same batch as the first wave of candidates."""
    return settings.tests_with_candidates and settings.candidates > 1 and settings.candidates_on_example_failure


def _tests_and_candidates(
    ctx: CallContext,
    code: str,
    given: str,
    *,
    task: str,
    entry_point: str | None,
    user_tests: str | None,
    sample: Callable[[list[dict[str, object]]], list[str | None]],
) -> tuple[str, Pick | None]:
    """The tests, and the pick among candidates (``None``: none drawn), with the tester beside the first wave.

    ``given`` holds the task's own tests, examples among them. Code that passes every
    example draws no candidate (``Settings.candidates_on_example_failure``): the tester
    alone is asked. Otherwise its call and the first wave's go out at once, and the wave
    is ranked on the tests as :func:`pick_candidate` ranks any wave.
    """
    if not fails_an_example(ctx, code, given):
        return write_tests(ctx, task=task, code=code, user_tests=user_tests), None
    wave = candidate_overrides(ctx.settings)[: wave_size(ctx)]
    asks = code_asks(ctx, task=task, entry_point=entry_point, user_tests=user_tests, overrides=wave)
    written, *codes = ask_together(ctx, [tester_ask(ctx, task=task, shown=code, user_tests=user_tests), *asks])
    tests = fit_tests(ctx, written, task=task, code=code, user_tests=user_tests)
    return tests, pick_candidate(ctx, code, tests, sample=sample, first_wave=codes)
