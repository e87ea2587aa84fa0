"""The code loop as a LangGraph state machine: state, configuration, routers, builder."""

from graph.builder import GRAPH_NAME, build_graph, graph_builder
from graph.config import Settings
from graph.routers import route_after_review
from graph.state import AgentOutput, AgentState, InvalidTaskError, TaskInput, check_task_input

__all__ = [
    "GRAPH_NAME",
    "AgentOutput",
    "AgentState",
    "InvalidTaskError",
    "Settings",
    "TaskInput",
    "build_graph",
    "check_task_input",
    "graph_builder",
    "route_after_review",
]
