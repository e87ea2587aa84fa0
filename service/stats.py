"""Counters of what the server has done, fed by a callback on every graph run.

:class:`RunStats` is a LangChain callback handler: it notes when a run of the graph
starts, and when it ends reads the run's output (``passed``, ``iterations``,
``node_timings``) into running totals. Callbacks fire from worker threads as well as
the event loop, so every update holds a lock. ``snapshot()`` is what ``GET /stats``
returns.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from typing_extensions import TypedDict

__all__ = ["NodeStats", "RunStats", "StatsSnapshot"]


class NodeStats(TypedDict):
    """Totals for one node across finished runs."""

    calls: int
    mean_seconds: float
    max_seconds: float
    total_seconds: float
    model_calls: int
    input_tokens: int
    output_tokens: int


class StatsSnapshot(TypedDict):
    """What ``GET /stats`` returns."""

    uptime_s: float
    runs_started: int
    runs_finished: int
    runs_failed: int
    runs_in_progress: int
    passed: int
    pass_rate: float | None
    mean_iterations: float | None
    mean_run_seconds: float | None
    input_tokens: int
    output_tokens: int
    nodes: dict[str, NodeStats]
    agent_calls: dict[str, int]


class _NodeTotals:
    __slots__ = ("calls", "input_tokens", "max_seconds", "model_calls", "output_tokens", "seconds")

    def __init__(self) -> None:
        self.calls = 0
        self.seconds = 0.0
        self.max_seconds = 0.0
        self.model_calls = 0
        self.input_tokens = 0
        self.output_tokens = 0


class RunStats(BaseCallbackHandler):
    """Aggregate finished runs of the graph; thread-safe.

    Attach it to the graph only (LangServe renames the root run, so runs are
    recognised as root chains, not by name).
    """

    raise_error = False  # a bookkeeping bug must never fail a run
    run_inline = True  # cheap updates: keep start and end in order, off the thread pool

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._started_at = time.monotonic()
        self._open: dict[UUID, float] = {}
        self._runs_started = 0
        self._runs_finished = 0
        self._runs_failed = 0
        self._passed = 0
        self._iterations = 0
        self._run_seconds = 0.0
        self._nodes: dict[str, _NodeTotals] = defaultdict(_NodeTotals)
        self._agent_calls: dict[str, int] = defaultdict(int)

    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """Note the start of a graph run (a root run: its nodes are child chains)."""
        if parent_run_id is not None:
            return
        with self._lock:
            self._open[run_id] = time.monotonic()
            self._runs_started += 1

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """Fold a finished graph run's output into the totals."""
        with self._lock:
            started = self._open.pop(run_id, None)
            if started is None:
                return
            self._runs_finished += 1
            self._run_seconds += time.monotonic() - started
            if not isinstance(outputs, dict):
                return
            self._passed += bool(outputs.get("passed"))
            self._iterations += int(outputs.get("iterations") or 0)
            for timing in outputs.get("node_timings") or []:
                node = self._nodes[str(timing.get("node", "?"))]
                seconds = float(timing.get("seconds", 0.0))
                node.calls += 1
                node.seconds += seconds
                node.max_seconds = max(node.max_seconds, seconds)
                node.model_calls += int(timing.get("model_calls", 0))
                node.input_tokens += int(timing.get("input_tokens", 0))
                node.output_tokens += int(timing.get("output_tokens", 0))

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """Count a graph run that raised."""
        with self._lock:
            if self._open.pop(run_id, None) is not None:
                self._runs_failed += 1

    def count_agent_call(self, agent: str) -> None:
        """Count one call of a single-agent endpoint."""
        with self._lock:
            self._agent_calls[agent] += 1

    def snapshot(self) -> StatsSnapshot:
        """A consistent copy of the totals."""
        with self._lock:
            finished = self._runs_finished
            nodes = {
                name: NodeStats(
                    calls=t.calls,
                    mean_seconds=round(t.seconds / t.calls, 3) if t.calls else 0.0,
                    max_seconds=round(t.max_seconds, 3),
                    total_seconds=round(t.seconds, 3),
                    model_calls=t.model_calls,
                    input_tokens=t.input_tokens,
                    output_tokens=t.output_tokens,
                )
                for name, t in self._nodes.items()
            }
            return StatsSnapshot(
                uptime_s=round(time.monotonic() - self._started_at, 1),
                runs_started=self._runs_started,
                runs_finished=finished,
                runs_failed=self._runs_failed,
                runs_in_progress=len(self._open),
                passed=self._passed,
                pass_rate=round(self._passed / finished, 3) if finished else None,
                mean_iterations=round(self._iterations / finished, 3) if finished else None,
                mean_run_seconds=round(self._run_seconds / finished, 3) if finished else None,
                input_tokens=sum(n["input_tokens"] for n in nodes.values()),
                output_tokens=sum(n["output_tokens"] for n in nodes.values()),
                nodes=nodes,
                agent_calls=dict(self._agent_calls),
            )
