"""The conditional edges: pure functions of the state."""

from __future__ import annotations

from typing import Literal

from graph.state import AgentState, tokens_spent
from sandbox.report import strong_pass

__all__ = ["route_after_review"]


def route_after_review(state: AgentState) -> Literal["refine", "finalize"]:
    """Stop when the attempt passes with a good enough review, or when the budget is spent.

    The threshold and the budget are the run's, settled by ``generate`` (the task's own
    values, else the run's settings: see :mod:`graph.config`). A pass counts only when
    some passing test was judged outside the code's process: a pass resting on
    in-process tests alone is weaker evidence, and refinement goes on. With
    ``Settings.stop_on_task_tests``, refine may settle: the code passes the task's own
    tests and only self-written ones fail, so the attempt it kept is the last. With a
    token budget (``Settings.token_budget``), no new attempt starts once the run's model
    calls have written that many tokens.
    """
    review = state.get("review")
    if state.get("settled"):  # refine kept code that passes every test the task gives
        return "finalize"
    if strong_pass(state["validation"]) and review and review["score"] >= state["min_score"]:
        return "finalize"
    if state.get("iteration", 0) >= state["max_iterations"]:
        return "finalize"
    if 0 < state.get("token_budget", 0) <= tokens_spent(state):
        return "finalize"
    return "refine"
