"""Runs of the LangGraph Server API inside the API process: the embedded default.

With no broker configured, ``starcoder-agents serve`` runs each run as an asyncio task
of its own process, as ``/agent`` does: records and event buffers live in memory and
go with the process. Runs share the ``max_running`` slots and ``max_queued`` places of
the LangServe routes (one semaphore, one set of counters), and their threads with
them through :class:`service.thread_claims.ThreadClaims`, which also applies a
second run's ``multitask_strategy`` (``reject``, ``enqueue``, ``interrupt``), so
``/agent`` and these routes never run one thread twice at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from fastapi import HTTPException
from langgraph.graph.state import CompiledStateGraph

from service.lgschemas import TERMINAL_STATUSES, RunCreate, RunRecord, RunStatus
from service.middleware import RunSlots
from service.runs import RunOutcome, execute_run, new_run_record, now_iso
from service.thread_claims import ThreadClaims

__all__ = ["LocalRuns", "RunChannel", "ThreadMeta"]

logger = logging.getLogger(__name__)

# Finished runs remembered (records and their events); older ones are forgotten first.
KEEP_FINISHED_RUNS = 1000

ThreadMeta = dict[str, Any]  # created_at, updated_at, metadata


class RunChannel:
    """A run's events, kept so that a client joining late sees them all, then live ones."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.closed = False
        self._changed = asyncio.Condition()

    async def publish(self, event: str, data: str) -> None:
        """Add one event and wake the followers."""
        async with self._changed:
            self.events.append((event, data))
            self._changed.notify_all()

    async def close(self) -> None:
        """Mark the run ended; followers stop after the last event."""
        async with self._changed:
            self.closed = True
            self._changed.notify_all()

    def _has_news(self, seen: int) -> bool:
        return seen < len(self.events) or self.closed

    async def follow(self) -> AsyncIterator[tuple[str, str]]:
        """Every event from the first, then new ones as they come, until the run ends."""
        index = 0
        while True:
            async with self._changed:
                await self._changed.wait_for(partial(self._has_news, index))
                pending = self.events[index:]
                ended = self.closed
            for item in pending:
                yield item
            index += len(pending)
            if ended and index >= len(self.events):
                return


class LocalRuns:
    """Threads and runs of this process, executed here through ``graph``."""

    def __init__(
        self,
        graph: CompiledStateGraph,
        *,
        claims: ThreadClaims,
        slots: RunSlots,
        gate: asyncio.Semaphore,
        max_running: int,
        max_queued: int,
        callbacks: Sequence[Any] = (),
    ) -> None:
        self.graph = graph
        self.claims = claims
        self.slots = slots
        self.gate = gate
        self.capacity = max_running + max_queued
        self.callbacks = list(callbacks)
        self.threads: dict[str, ThreadMeta] = {}
        self.runs: OrderedDict[str, RunRecord] = OrderedDict()
        self.outcomes: dict[str, RunOutcome] = {}
        self.channels: dict[str, RunChannel] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._started: set[str] = set()

    @asynccontextmanager
    async def opened(self) -> AsyncIterator[LocalRuns]:
        """Nothing to open: everything is in this process."""
        yield self

    # Threads.

    async def create_thread(self, thread_id: str, metadata: dict[str, Any]) -> tuple[ThreadMeta, bool]:
        """Record ``thread_id``; returns its record and whether it is new."""
        if thread_id in self.threads:
            return self.threads[thread_id], False
        stamp = now_iso()
        self.threads[thread_id] = {"created_at": stamp, "updated_at": stamp, "metadata": dict(metadata)}
        return self.threads[thread_id], True

    async def thread_meta(self, thread_id: str) -> ThreadMeta | None:
        """The record of ``thread_id``, if it was created here."""
        return self.threads.get(thread_id)

    async def active_runs(self, thread_id: str) -> list[RunRecord]:
        """Runs of ``thread_id`` pending or running, oldest first."""
        return [r for r in self.runs.values() if r["thread_id"] == thread_id and r["status"] not in TERMINAL_STATUSES]

    async def last_status(self, thread_id: str) -> RunStatus | None:
        """The status of the thread's latest run, if any."""
        runs = [r for r in self.runs.values() if r["thread_id"] == thread_id]
        return runs[-1]["status"] if runs else None

    # Runs.

    async def submit(self, thread_id: str, body: RunCreate, assistant_id: str) -> RunRecord:
        """Start a run of ``body`` on ``thread_id`` under its multitask strategy (409 or 429 when refused)."""
        to_interrupt = self.claims.admit(thread_id, body.multitask_strategy, await self.active_runs(thread_id))
        if self.slots.running + self.slots.queued >= self.capacity:  # runs of both APIs, running or waiting
            self.slots.rejected += 1
            detail = "the server is busy: every run slot and queue place is taken; try again later"
            raise HTTPException(429, detail, {"Retry-After": "5"})
        for run in to_interrupt:
            await self.cancel(run["run_id"])
        record = new_run_record(thread_id, body, assistant_id)
        run_id = record["run_id"]
        self.runs[run_id] = record
        self.channels[run_id] = RunChannel()
        self.slots.queued += 1
        self._tasks[run_id] = asyncio.create_task(self._run(record, body), name=f"run {run_id}")
        self._forget_old_runs()
        return record

    async def get_run(self, thread_id: str, run_id: str) -> RunRecord | None:
        """The record of ``run_id`` if it belongs to ``thread_id``."""
        record = self.runs.get(run_id)
        return record if record is not None and record["thread_id"] == thread_id else None

    async def list_runs(self, thread_id: str, *, limit: int, offset: int, status: str | None) -> list[RunRecord]:
        """The thread's runs, newest first."""
        runs = [r for r in reversed(self.runs.values()) if r["thread_id"] == thread_id]
        if status:
            runs = [r for r in runs if r["status"] == status]
        return runs[offset : offset + limit]

    def follow(self, run_id: str) -> AsyncIterator[tuple[str, str]]:
        """The run's events, from its first, until it ends."""
        return self.channels[run_id].follow()

    async def wait(self, run_id: str) -> RunOutcome:
        """Wait for the run to end and say how it ended."""
        task = self._tasks.get(run_id)
        if task is not None:
            await asyncio.wait({task})
        return self.outcomes.get(run_id) or RunOutcome(self.runs[run_id]["status"])

    async def cancel(self, run_id: str) -> None:
        """Stop the run wherever it is (queued or running); its checkpoints stay."""
        task = self._tasks.get(run_id)
        if task is None or task.done():
            return
        logger.info("cancelling run %s", run_id)
        task.cancel()
        if run_id not in self._started:  # cancelled before its first step: nothing of it ran
            await self._finish(self.runs[run_id], RunOutcome("interrupted"), waiting=True)

    def cancel_soon(self, run_id: str) -> None:
        """Cancel the run from code that cannot wait (a stream whose client left)."""
        task = asyncio.get_running_loop().create_task(self.cancel(run_id))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _set_status(self, record: RunRecord, status: RunStatus) -> None:
        record["status"] = status
        record["updated_at"] = now_iso()
        if record["thread_id"] in self.threads:
            self.threads[record["thread_id"]]["updated_at"] = record["updated_at"]

    async def _run(self, record: RunRecord, body: RunCreate) -> None:
        run_id, thread_id = record["run_id"], record["thread_id"]
        self._started.add(run_id)
        waiting = True
        outcome = RunOutcome("interrupted")
        try:
            async with self.claims.turn(thread_id), self.gate:
                self.slots.queued -= 1
                waiting = False
                outcome = await self._execute(record, body)
        except asyncio.CancelledError:
            logger.info("run %s was cancelled", run_id)
        finally:
            await self._finish(record, outcome, waiting=waiting)

    async def _finish(self, record: RunRecord, outcome: RunOutcome, *, waiting: bool) -> None:
        run_id = record["run_id"]
        if waiting:
            self.slots.queued -= 1
        self.outcomes[run_id] = outcome
        self._set_status(record, outcome.status)
        self._started.discard(run_id)
        self._tasks.pop(run_id, None)
        await self.channels[run_id].close()

    async def _execute(self, record: RunRecord, body: RunCreate) -> RunOutcome:
        thread_id = record["thread_id"]
        if not self.claims.try_claim(thread_id):  # taken through /agent or /threads while this run waited
            return RunOutcome("error", {"error": "Conflict", "message": f"thread {thread_id!r} is busy"})
        self.slots.running += 1
        self._set_status(record, "running")
        try:
            channel = self.channels[record["run_id"]]
            return await execute_run(self.graph, record, body, channel.publish, callbacks=self.callbacks)
        finally:
            self.slots.running -= 1
            self.claims.release(thread_id)

    def _forget_old_runs(self) -> None:
        finished = [rid for rid, r in self.runs.items() if r["status"] in TERMINAL_STATUSES]
        for run_id in finished[: max(0, len(finished) - KEEP_FINISHED_RUNS)]:
            self.runs.pop(run_id, None)
            self.outcomes.pop(run_id, None)
            self.channels.pop(run_id, None)
