"""review: PEP 8 (ruff), complexity (radon), coverage (from validate) and a model's review.

The static measures always run. The model's review runs when the tests pass (or
when ``Settings.review_failing`` asks for it): for failing code the failures are
the better guide and the model call would only cost time. The work is
:func:`roles.review.review_code`; the attempt is recorded here, with both its
validation and its review.
"""

from __future__ import annotations

import time

from langchain_core.runnables import RunnableConfig
from langgraph.runtime import Runtime

from graph.config import Settings
from graph.state import AgentState, Attempt
from nodes.common import call_context, node_timing
from roles.context import ModelProvider
from roles.review import review_code

__all__ = ["review"]


def review(state: AgentState, config: RunnableConfig, runtime: Runtime[Settings], *, model: ModelProvider) -> dict:
    """Review the current attempt and record it."""
    started = time.perf_counter()
    ctx = call_context(model, config, runtime)
    iteration = state.get("iteration", 0)
    validation = state["validation"]
    report = review_code(
        ctx,
        task=state["task"],
        code=state.get("code", ""),
        validation=validation,
        ask_model=validation["passed"] or ctx.settings.review_failing,
    )
    attempt = Attempt(
        iteration=iteration,
        code=state.get("code", ""),
        tests=state.get("tests", ""),
        generation_error=state.get("generation_error"),
        validation=validation,
        review=report,
        disputed_tests=state.get("disputed_tests", []),
    )
    model_part = f", model {report['model_score']:.0f}/10" if report["model_score"] is not None else ""
    summary = f"score {report['score']:.1f}/10{model_part}, PEP 8 findings {report['pep8_count']}"
    return {
        "review": report,
        "attempts": [attempt],
        "node_timings": [node_timing("review", iteration, started, summary, ctx.usage)],
    }
