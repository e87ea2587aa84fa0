"""Build the code loop as a LangGraph state machine.

    generate -> validate -> review --(passed and good enough, or budget spent)--> finalize
                   ^                  \\--(otherwise)--> refine --/

``build_graph`` takes the model provider and the settings by injection and returns
a compiled graph; pass a checkpointer to save every step under a ``thread_id``.

The graph's LangGraph context schema is :class:`graph.config.Settings`. LangGraph
passes a run's ``context`` to the nodes (``runtime.context``) but does not read it from
``config["configurable"]``, where LangServe, the ``/lg`` API and the command line put a
request's settings. So the compiled graph (:class:`LoopGraph`) resolves each run's
settings once, as the run starts (:func:`graph.config.resolve_settings`): its own
settings, with the request's choices from the config or a given context. It also
declares those choices as configurable fields, so LangServe accepts (and checks) them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from functools import partial
from typing import Any

from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.utils import ConfigurableFieldSpec
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from graph.config import Settings, request_config_specs, resolve_settings
from graph.routers import route_after_review
from graph.state import AgentOutput, AgentState, TaskInput
from nodes import finalize, generate, refine, review, validate
from roles.context import ModelProvider

__all__ = ["GRAPH_NAME", "LoopGraph", "build_graph", "graph_builder"]

GRAPH_NAME = "starcoder-agents"


class LoopGraph(CompiledStateGraph[AgentState, Any, TaskInput, AgentOutput]):
    """The compiled code loop: every run gets its settings once, as it starts.

    ``settings`` are the loop's own (the environment and defaults, or what the program
    chose); a run's ``config["configurable"]`` or ``context`` may change the fields of
    :data:`graph.config.REQUEST_FIELDS`. ``invoke``, ``batch`` and ``stream_events`` all
    run through ``stream`` or ``astream``, so every way of running the graph passes here.
    """

    def __init__(self, *, settings: Settings, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings

    @classmethod
    def from_compiled(
        cls, compiled: CompiledStateGraph[AgentState, Settings, TaskInput, AgentOutput], settings: Settings
    ) -> LoopGraph:
        """The same compiled graph as a :class:`LoopGraph` (built as ``Pregel.copy`` builds a copy)."""
        attrs = {k: v for k, v in compiled.__dict__.items() if k != "__orig_class__"}
        return cls(settings=settings, **attrs)

    def settings_for(
        self, config: RunnableConfig | None, context: Settings | Mapping[str, Any] | None = None
    ) -> Settings:
        """The settings a run with ``config`` (and ``context``) gets."""
        return resolve_settings(config, self.settings, context)

    def stream(  # type: ignore[override]  # the same call, with the context filled in
        self, input: Any, config: RunnableConfig | None = None, *, context: Any = None, **kwargs: Any
    ) -> Iterator[Any]:
        """Run the graph (see ``Pregel.stream``) with the run's settings as its context."""
        return super().stream(input, config, context=self.settings_for(config, context), **kwargs)

    def astream(  # type: ignore[override]  # the same call, with the context filled in
        self, input: Any, config: RunnableConfig | None = None, *, context: Any = None, **kwargs: Any
    ) -> AsyncIterator[Any]:
        """Run the graph (see ``Pregel.astream``) with the run's settings as its context."""
        return super().astream(input, config, context=self.settings_for(config, context), **kwargs)

    @property
    def config_specs(self) -> list[ConfigurableFieldSpec]:
        """LangGraph's own configurable fields and the settings a request may choose."""
        return [*super().config_specs, *request_config_specs()]


def graph_builder(model: ModelProvider) -> StateGraph[AgentState, Settings, TaskInput, AgentOutput]:
    """Return the uncompiled graph, with the model bound into its nodes.

    Its context schema is :class:`graph.config.Settings`: compiled by hand, a run needs
    ``context=Settings(...)``; :func:`build_graph` fills it in for every run.
    """
    builder = StateGraph(AgentState, context_schema=Settings, input_schema=TaskInput, output_schema=AgentOutput)
    builder.add_node("generate", partial(generate, model=model))
    builder.add_node("validate", validate)
    builder.add_node("review", partial(review, model=model))
    builder.add_node("refine", partial(refine, model=model))
    builder.add_node("finalize", finalize)
    builder.add_edge(START, "generate")
    builder.add_edge("generate", "validate")
    builder.add_edge("validate", "review")
    builder.add_conditional_edges("review", route_after_review, ["refine", "finalize"])
    builder.add_edge("refine", "validate")
    builder.add_edge("finalize", END)
    return builder


def build_graph(
    model: ModelProvider,
    *,
    settings: Settings | None = None,
    checkpointer: BaseCheckpointSaver | None = None,
) -> LoopGraph:
    """Compile the code loop; every step is checkpointed when a checkpointer is given."""
    compiled = graph_builder(model).compile(checkpointer=checkpointer, name=GRAPH_NAME)
    return LoopGraph.from_compiled(compiled, settings or Settings())
