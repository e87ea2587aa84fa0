"""Build the code loop as a LangGraph state machine.

    generate -> validate -> review --(passed and good enough, or budget spent)--> finalize
                   ^                  \\--(otherwise)--> refine --/

``build_graph`` takes the model provider and the settings by injection and returns
a compiled graph; pass a checkpointer to save every step under a ``thread_id``.
"""

from __future__ import annotations

from functools import partial

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from graph.config import Settings
from graph.routers import route_after_review
from graph.state import AgentOutput, AgentState, TaskInput
from nodes import finalize, generate, refine, review, validate
from nodes.common import ModelProvider

__all__ = ["GRAPH_NAME", "build_graph", "graph_builder"]

GRAPH_NAME = "starcoder-agents"


def graph_builder(model: ModelProvider, settings: Settings | None = None) -> StateGraph:
    """Return the uncompiled graph, with the model and settings bound into its nodes."""
    settings = settings or Settings()
    builder = StateGraph(AgentState, input_schema=TaskInput, output_schema=AgentOutput)
    builder.add_node("generate", partial(generate, model=model, settings=settings))
    builder.add_node("validate", partial(validate, settings=settings))
    builder.add_node("review", partial(review, model=model, settings=settings))
    builder.add_node("refine", partial(refine, model=model, settings=settings))
    builder.add_node("finalize", partial(finalize, settings=settings))
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
) -> CompiledStateGraph:
    """Compile the code loop; every step is checkpointed when a checkpointer is given."""
    return graph_builder(model, settings).compile(checkpointer=checkpointer, name=GRAPH_NAME)
