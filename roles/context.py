"""What every role call shares: the model provider, the run's settings and config, and its cost.

:func:`call_model` is the one way a role asks its model. The prompt pair comes from the
role's name (role ``refiner``: ``prompts/refiner_system.md`` and ``refiner_user.md``)
unless the call names another pair (the generator asks for code in several forms).
The role names are :data:`llms.presets.Role`, defined once, with the models.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.config import get_executor_for_config

import prompts

if TYPE_CHECKING:  # types only: importing a role loads neither the graph nor the model layer
    from graph.config import Settings
    from llms.presets import Role

__all__ = [
    "NO_CODE",
    "CallContext",
    "ModelProvider",
    "PromptPair",
    "Ask",
    "Usage",
    "ask_together",
    "call_model",
    "call_together",
    "decodes_together",
    "prompt_names",
    "role_messages",
]

NO_CODE = "the model's reply held no Python code block"

PromptPair = tuple[str, str]
"""A system prompt's name and a user prompt's name, as files of ``prompts/``."""


class ModelProvider(Protocol):
    """Gives each role its chat model. The real one lives in ``llms``; tests script one.

    A provider whose model decodes calls made at once as one batch says so with a true
    ``decodes_together`` attribute (see :func:`call_together`); without it, calls run
    one after another.
    """

    name: str

    def for_role(self, role: Role) -> Runnable[list[BaseMessage], AIMessage]:
        """Return the chat model (with the role's settings bound) for ``role``."""
        ...


@dataclass
class Usage:
    """What a step's model calls (and sandbox runs) cost, accumulated across calls."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    model_seconds: float = 0.0
    sandbox_seconds: float = 0.0
    models: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class CallContext:
    """What a role needs besides its inputs.

    Attributes:
        model: The provider of each role's chat model.
        settings: The run's options (:class:`graph.config.Settings`).
        config: The runnable config of the run, passed on to the model (its callbacks
            stream tokens); ``None`` outside a run.
        usage: Where the calls' cost is added up; read it after the calls.
    """

    model: ModelProvider
    settings: Settings
    config: RunnableConfig | None = None
    usage: Usage = field(default_factory=Usage)


def prompt_names(role: Role) -> PromptPair:
    """The role's own prompt pair: ``<role>_system`` and ``<role>_user``."""
    return f"{role}_system", f"{role}_user"


def role_messages(role: Role, slots: Mapping[str, object], prompt: PromptPair | None = None) -> list[BaseMessage]:
    """The system and user messages of ``prompt`` (default: the role's own pair), slots filled."""
    system, user = prompt or prompt_names(role)
    return [SystemMessage(prompts.render(system, **slots)), HumanMessage(prompts.render(user, **slots))]


def call_model(
    ctx: CallContext,
    role: Role,
    slots: Mapping[str, object],
    *,
    prompt: PromptPair | None = None,
    overrides: dict[str, object] | None = None,
) -> str:
    """Render the role's prompts, call its model, record the cost, return the reply text.

    ``prompt`` names another prompt pair than the role's own. ``overrides`` are per-call
    generation settings (``temperature``, ``seed``...) bound onto the role's model for
    this call only.
    """
    messages = role_messages(role, slots, prompt)
    started = time.perf_counter()
    runnable = ctx.model.for_role(role)
    if overrides:
        runnable = runnable.bind(**overrides)
    reply = runnable.invoke(messages, ctx.config)
    usage = ctx.usage
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


T = TypeVar("T")


def decodes_together(ctx: CallContext) -> bool:
    """Whether the run's model decodes calls made at once as one batch (llama.cpp, a batching server)."""
    return bool(getattr(ctx.model, "decodes_together", False))


def call_together(ctx: CallContext, calls: Sequence[Callable[[CallContext], T]]) -> list[T]:
    """Make ``calls`` at once, so that a model which decodes them together shares one decode.

    Each call gets ``ctx`` with a usage of its own; they are added to ``ctx.usage`` after,
    with the group's wall time as its model time (the calls overlap). Results come back
    in the order of ``calls``. With a model that does not decode calls together, they run
    one after another on ``ctx`` itself.
    """
    if len(calls) < 2 or not decodes_together(ctx):
        return [call(ctx) for call in calls]
    own = [dataclasses.replace(ctx, usage=Usage()) for _ in calls]
    started = time.perf_counter()
    with get_executor_for_config(ctx.config) as executor:
        results = list(executor.map(lambda call, call_ctx: call(call_ctx), list(calls), own))
    usage = ctx.usage
    usage.model_seconds += time.perf_counter() - started
    for part in (call_ctx.usage for call_ctx in own):
        usage.calls += part.calls
        usage.input_tokens += part.input_tokens
        usage.output_tokens += part.output_tokens
        usage.sandbox_seconds += part.sandbox_seconds
        usage.models |= part.models
    return results


@dataclass(frozen=True)
class Ask(Generic[T]):
    """One role call in two halves, so that several can be made at once (:func:`ask_together`).

    ``ask`` calls the model and returns its reply (it may run in a worker thread, so it
    only calls the model); ``read`` turns the reply into the role's result, in the
    caller's thread (parsing code is not safe in several threads at once on every
    Python: CPython 3.11's ``ast.parse`` can raise ``SystemError``).
    """

    ask: Callable[[CallContext], str]
    read: Callable[[str], T]


def ask_together(ctx: CallContext, asks: Sequence[Ask[Any]]) -> list[Any]:
    """Make the calls of ``asks`` at once (:func:`call_together`), then read each reply in order."""
    replies = call_together(ctx, [a.ask for a in asks])
    return [a.read(reply) for a, reply in zip(asks, replies, strict=True)]
