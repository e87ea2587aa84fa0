"""What the nodes share: the run's settings, the role call context, and timing records."""

from __future__ import annotations

import time

from langchain_core.runnables import RunnableConfig
from langgraph.runtime import Runtime

from graph.config import Settings
from roles.context import CallContext, ModelProvider, Usage

__all__ = ["call_context", "node_timing", "run_settings"]


def run_settings(runtime: Runtime[Settings]) -> Settings:
    """The run's settings: resolved once, when the run started (:func:`graph.builder.build_graph`)."""
    if runtime.context is None:
        raise RuntimeError("the graph ran without its settings: compile it with graph.build_graph")
    return runtime.context


def call_context(model: ModelProvider, config: RunnableConfig, runtime: Runtime[Settings]) -> CallContext:
    """A fresh call context for one node's role calls (its own usage record)."""
    return CallContext(model=model, settings=run_settings(runtime), config=config)


def node_timing(
    node: str,
    iteration: int,
    started: float,
    summary: str,
    usage: Usage | None = None,
    sandbox_seconds: float = 0.0,
) -> dict:
    """Build the node's :class:`graph.state.NodeTiming` record."""
    usage = usage or Usage()
    return {
        "node": node,
        "iteration": iteration,
        "seconds": round(time.perf_counter() - started, 3),
        "model_calls": usage.calls,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "model_seconds": round(usage.model_seconds, 3),
        "sandbox_seconds": round(sandbox_seconds + usage.sandbox_seconds, 3),
        "summary": summary,
    }
