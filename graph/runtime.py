"""Run the compiled graph for one task in this process: stream node updates, resume, collect the output.

:func:`run_task` is the one runner of in-process runs: the command line
(``starcoder-agents run``), the in-process notebook (``notebooks/graph_in_process``)
and the benchmarks (``benchmarks.tasks``, the ``loop`` row of ``benchmarks.humaneval``)
all run a task through it, so a run starts, reports its nodes and ends the same way
whoever starts it. Open its checkpointer with :func:`graph.checkpoint.open_checkpointer`.

The other ways the graph runs are not in-process runs of one task, and need more than
a finished result:

- the HTTP server hands the compiled graph to LangServe (``/agent``, through
  :class:`service.graph_route.ThreadedAgent`), which drives it through its async API
  for ``invoke``, ``batch``, ``stream`` and ``stream_events``;
- the LangGraph Server API (``/lg``) and its workers drive it through
  :func:`service.runs.execute_run`, which streams every mode a client asks for as
  events and writes each checkpoint before the next step, so a run can move to
  another worker;
- ``notebooks/remote_server`` drives a running server over HTTP;
- the tests of the graph itself (``tests/test_graph.py``) call ``invoke`` directly.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from langchain_core.runnables import RunnableConfig
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
    thread_id: str | None = None,
    on_node: Callable[[str, NodeTiming], None] | None = None,
    configurable: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run (or with ``task_input=None``, resume) a thread to its end and return its output.

    ``thread_id``: the checkpoint thread (default: a fresh one; give the thread of an
    interrupted run to resume it). ``on_node`` is called once per finished node with
    that node's timing record. ``configurable``: per-run settings
    (:class:`graph.config.Settings` fields such as ``max_iterations``), over those
    the graph was built with. The output holds the :class:`graph.state.AgentOutput`
    fields the run reached, and ``thread_id``.
    Raises :class:`graph.state.InvalidTaskError` before starting on bad input.
    """
    payload = check_task_input(task_input) if task_input is not None else None
    thread_id = thread_id or new_thread_id()
    config: RunnableConfig = {"configurable": {**(configurable or {}), "thread_id": thread_id}}
    for chunk in app.stream(payload, config, stream_mode="updates"):
        for node, update in chunk.items():
            for timing in (update or {}).get("node_timings", []):
                if on_node is not None:
                    on_node(node, timing)
    values = app.get_state(config).values
    output = {key: values[key] for key in OUTPUT_KEYS if key in values}
    output["thread_id"] = thread_id
    return output
