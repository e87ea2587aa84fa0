"""What the nodes share: the model provider they are given, and timed model calls."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal, Protocol

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables import Runnable, RunnableConfig

import prompts

__all__ = ["NO_CODE", "ModelProvider", "Role", "Usage", "call_model", "node_timing"]

NO_CODE = "the model's reply held no Python code block"

Role = Literal["generator", "tester", "reviewer", "refiner"]


class ModelProvider(Protocol):
    """Gives each role its chat model. The real one lives in ``llms``; tests script one."""

    name: str

    def for_role(self, role: Role) -> Runnable[list[BaseMessage], AIMessage]:
        """Return the chat model (with the role's settings bound) for ``role``."""
        ...


@dataclass
class Usage:
    """What a node's model calls (and sandbox runs) cost, accumulated across calls."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    model_seconds: float = 0.0
    sandbox_seconds: float = 0.0
    models: set[str] = field(default_factory=set)


def call_model(
    model: ModelProvider,
    role: Role,
    *,
    system: str,
    user_prompt: str,
    slots: dict[str, object],
    config: RunnableConfig | None,
    usage: Usage,
    overrides: dict[str, object] | None = None,
) -> str:
    """Render the role's prompts, call its model, record the cost, return the reply text.

    ``overrides`` are per-call generation settings (``temperature``, ``seed``...) bound
    onto the role's model for this call only.
    """
    messages: list[BaseMessage] = [
        SystemMessage(prompts.render(system, **slots)),
        HumanMessage(prompts.render(user_prompt, **slots)),
    ]
    started = time.perf_counter()
    runnable = model.for_role(role)
    if overrides:
        runnable = runnable.bind(**overrides)
    reply = runnable.invoke(messages, config)
    usage.model_seconds += time.perf_counter() - started
    usage.calls += 1
    meta = getattr(reply, "usage_metadata", None) or {}
    usage.input_tokens += int(meta.get("input_tokens", 0))
    usage.output_tokens += int(meta.get("output_tokens", 0))
    answered_by = (getattr(reply, "response_metadata", None) or {}).get("model_name")
    if answered_by:
        usage.models.add(str(answered_by))
    content = reply.content if isinstance(reply, BaseMessage) else reply
    return content if isinstance(content, str) else str(content)


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
