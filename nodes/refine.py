"""refine: new code from the actual failures and the review's findings.

The refiner sees the task, the current code, the failing tests' trimmed tracebacks
and the reviewer's recommendations — the real errors, which beat a separate
reflection step. Tests are kept (they were written from the task), unless they
could not run at all, in which case they are written again from the task.
"""

from __future__ import annotations

import time

from langchain_core.runnables import RunnableConfig

from analysis.interface import reconcile_tests
from analysis.parsing import extract_code
from graph.config import Settings
from graph.state import AgentState, ReviewReport
from nodes.common import ModelProvider, Usage, call_model, node_timing
from nodes.generate import NO_CODE, write_tests
from sandbox.report import ValidationReport

__all__ = ["describe_problems", "refine"]

MAX_FAILURES = 3
MAX_TRACEBACK_CHARS = 700


def describe_problems(validation: ValidationReport, review: ReviewReport | None) -> str:
    """Turn a validation and a review into the short problem list the refiner reads."""
    lines: list[str] = []
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


def refine(state: AgentState, config: RunnableConfig, *, model: ModelProvider, settings: Settings) -> dict:
    """Write the next attempt from the current one's problems."""
    started = time.perf_counter()
    iteration = state.get("iteration", 0) + 1
    usage = Usage()
    current = _last_code(state)
    reply = call_model(
        model,
        "refiner",
        system="refiner_system",
        user_prompt="refiner_user",
        slots={
            "task": state["task"],
            "code": current.strip() or "# (no code yet)",
            "problems": describe_problems(state["validation"], state.get("review")),
        },
        config=config,
        usage=usage,
    )
    code = extract_code(reply)
    tests = state.get("tests", "")
    rewrote = False
    if code and (state.get("tests_need_rewrite") or not tests.strip()):
        tests = write_tests(
            model, task=state["task"], code=code, user_tests=state.get("user_tests"), config=config, usage=usage
        )
        rewrote = True
    elif code:
        tests = reconcile_tests(tests, code)
    summary = (f"new code, {len(code.splitlines())} lines" + (", tests rewritten" if rewrote else "")) if code else NO_CODE
    return {
        "iteration": iteration,
        "code": code or "",
        "tests": tests,
        "generation_error": None if code else NO_CODE,
        "tests_need_rewrite": False,
        "node_timings": [node_timing("refine", iteration, started, summary, usage)],
    }
