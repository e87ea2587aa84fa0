"""Run the compiled graph for one task: stream node updates, resume, collect the output.

This is the orchestration the command line and notebooks share; the HTTP server
hands the compiled graph to LangServe instead.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from langgraph.graph.state import CompiledStateGraph

from graph.state import AgentOutput, NodeTiming, check_task_input

__all__ = ["OUTPUT_KEYS", "new_thread_id", "run_task"]

OUTPUT_KEYS = tuple(AgentOutput.__annotations__)


def new_thread_id() -> str:
    """A fresh thread id for a run that was not given one."""
    return uuid.uuid4().hex


def run_task(
    app: CompiledStateGraph,
    task_input: dict[str, Any] | None,
    *,
    thread_id: str,
    on_node: Callable[[str, NodeTiming], None] | None = None,
    configurable: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run (or with ``task_input=None``, resume) a thread to its end and return its output.

    ``on_node`` is called once per finished node with that node's timing record.
    Raises :class:`graph.state.InvalidTaskError` before starting on bad input.
    """
    payload = check_task_input(task_input) if task_input is not None else None
    config = {"configurable": {**(configurable or {}), "thread_id": thread_id}}
    for chunk in app.stream(payload, config, stream_mode="updates"):
        for node, update in chunk.items():
            for timing in (update or {}).get("node_timings", []):
                if on_node is not None:
                    on_node(node, timing)
    values = app.get_state(config).values
    output = {key: values[key] for key in OUTPUT_KEYS if key in values}
    output["thread_id"] = thread_id
    return output
