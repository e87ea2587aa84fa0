"""The conditional edges: pure functions of the state."""

from __future__ import annotations

from typing import Literal

from graph.state import AgentState

__all__ = ["route_after_review"]


def route_after_review(state: AgentState) -> Literal["refine", "finalize"]:
    """Stop when the attempt passes with a good enough review, or when the budget is spent."""
    review = state.get("review")
    if state["validation"]["passed"] and review and review["score"] >= state.get("min_score", 7.0):
        return "finalize"
    if state.get("iteration", 0) >= state.get("max_iterations", 3):
        return "finalize"
    return "refine"
