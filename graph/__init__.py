"""The code loop as a LangGraph state machine: state, configuration, routers, builder.

``ModelProvider`` is what :func:`build_graph` needs to be given (defined in :mod:`roles.context`).
"""

from graph.builder import GRAPH_NAME, build_graph, graph_builder
from graph.config import Settings
from graph.routers import route_after_review
from graph.state import AgentOutput, AgentState, InvalidTaskError, TaskInput, check_task_input
from roles.context import ModelProvider

__all__ = [
    "GRAPH_NAME",
    "AgentOutput",
    "AgentState",
    "InvalidTaskError",
    "ModelProvider",
    "Settings",
    "TaskInput",
    "build_graph",
    "check_task_input",
    "graph_builder",
    "route_after_review",
]
