"""Runs of the LangGraph Server API on workers: what an API replica does when a broker is set.

The replica holds no run state: it writes the run's record to PostgreSQL
(:mod:`service.runstore`), sends the run's id to the broker (:mod:`service.jobs`),
and reads progress from Redis (:mod:`service.events`). Any replica can answer for any
run, and any worker can run it (``starcoder-agents worker``, :mod:`service.worker`).

The multitask strategies (see :mod:`service.thread_claims`) hold across replicas: ``reject`` checks and inserts under
the thread's advisory lock; ``enqueue`` relies on workers starting a thread's runs
in order; ``interrupt`` cancels the runs in progress first. The ``max_running`` and
``max_queued`` limits of the API process do not apply to these runs: the number of
workers bounds how many run at once, and the broker holds the queue.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import HTTPException
from starlette.concurrency import run_in_threadpool

from graph.checkpoint import is_postgres_url
from service.events import RedisRunEvents
from service.jobs import RUN_TASK, QueueSettings, celery_app
from service.lgschemas import TERMINAL_STATUSES, RunCreate, RunRecord, RunStatus
from service.runs import RunOutcome, new_run_record
from service.runstore import PostgresRunStore, open_run_store
from service.thread_claims import thread_busy

__all__ = ["BrokerRuns"]

logger = logging.getLogger(__name__)


class BrokerRuns:
    """Threads and runs in PostgreSQL, executed by workers behind the broker."""

    def __init__(self, queue: QueueSettings, checkpointer_url: object) -> None:
        if not (isinstance(checkpointer_url, str) and is_postgres_url(checkpointer_url)):
            raise ValueError("runs on workers need the PostgreSQL checkpointer the workers share: give its URL")
        self.queue = queue
        self.checkpointer_url = checkpointer_url
        self.celery = celery_app(queue)
        self._store: PostgresRunStore | None = None
        self._events: RedisRunEvents | None = None
        self._background: set[asyncio.Task[Any]] = set()

    @asynccontextmanager
    async def opened(self) -> AsyncIterator[BrokerRuns]:
        """Connect to PostgreSQL and Redis for the server's lifetime."""
        async with AsyncExitStack() as stack:
            self._store = await stack.enter_async_context(open_run_store(self.checkpointer_url))
            self._events = RedisRunEvents(self.queue.redis_url, prefix=self.queue.queue)
            stack.push_async_callback(self._events.close)
            logger.info("runs go to workers through queue %r", self.queue.queue)
            yield self

    @property
    def store(self) -> PostgresRunStore:
        """The run records (open once the server has started)."""
        if self._store is None:
            raise RuntimeError("the run store is not open")
        return self._store

    @property
    def events(self) -> RedisRunEvents:
        """The run events (open once the server has started)."""
        if self._events is None:
            raise RuntimeError("the run events are not open")
        return self._events

    async def create_thread(self, thread_id: str, metadata: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Record ``thread_id``."""
        return await self.store.create_thread(thread_id, metadata)

    async def thread_meta(self, thread_id: str) -> dict[str, Any] | None:
        """The record of ``thread_id``."""
        return await self.store.thread_meta(thread_id)

    async def active_runs(self, thread_id: str) -> list[RunRecord]:
        """The thread's runs pending or running, oldest first."""
        return await self.store.list_runs(thread_id, limit=1000, offset=0, status=None, active_only=True)

    async def last_status(self, thread_id: str) -> RunStatus | None:
        """The status of the thread's latest run."""
        runs = await self.store.list_runs(thread_id, limit=1, offset=0, status=None)
        return runs[0]["status"] if runs else None

    async def submit(self, thread_id: str, body: RunCreate, assistant_id: str) -> RunRecord:
        """Record the run and send it to the broker (409 under ``reject``, 503 when the broker is away)."""
        if body.multitask_strategy == "interrupt":
            for run in await self.active_runs(thread_id):
                await self.cancel(run["run_id"])
        record = new_run_record(thread_id, body, assistant_id)
        stored = await self.store.insert_run(
            record, body.model_dump(mode="json"), reject_if_busy=body.multitask_strategy == "reject"
        )
        if not stored:
            raise thread_busy(thread_id, strategies=True)
        try:
            await run_in_threadpool(self.celery.send_task, RUN_TASK, args=[record["run_id"]], queue=self.queue.queue)
        except Exception as exc:  # the broker stayed away through the publish retries
            logger.error("run %s could not be queued: %s", record["run_id"], exc)
            await self.store.fail(record["run_id"], {"error": type(exc).__name__, "message": "the broker is away"})
            await self.events.end(record["run_id"])
            detail = "the run queue cannot be reached; try again shortly"
            raise HTTPException(503, detail, {"Retry-After": "5"}) from exc
        return record

    async def get_run(self, thread_id: str, run_id: str) -> RunRecord | None:
        """The record of ``run_id`` if it belongs to ``thread_id``."""
        record = await self.store.get_run(run_id)
        return record if record is not None and record["thread_id"] == thread_id else None

    async def list_runs(self, thread_id: str, *, limit: int, offset: int, status: str | None) -> list[RunRecord]:
        """The thread's runs, newest first."""
        return await self.store.list_runs(thread_id, limit=limit, offset=offset, status=status)

    async def _is_over(self, run_id: str) -> bool:
        record = await self.store.get_run(run_id)
        return record is None or record["status"] in TERMINAL_STATUSES

    def follow(self, run_id: str) -> AsyncIterator[tuple[str, str]]:
        """The run's events from Redis, from its first, until it ends."""
        return self.events.follow(run_id, is_over=lambda: self._is_over(run_id))

    async def wait(self, run_id: str) -> RunOutcome:
        """Wait for the run to end (its stream's end marker) and say how it ended."""
        if not await self._is_over(run_id):
            async for _ in self.follow(run_id):
                pass
        record = await self.store.get_run(run_id)
        status: RunStatus = record["status"] if record else "error"
        return RunOutcome(status, await self.store.run_error(run_id) if status == "error" else None)

    async def cancel(self, run_id: str) -> None:
        """Stop the run on whichever worker runs it; a run not started yet ends at once."""
        await self.store.request_cancel(run_id)
        await self.events.request_cancel(run_id)
        record = await self.store.get_run(run_id)
        if record is not None and record["status"] == "interrupted":
            await self.events.end(run_id)

    def cancel_soon(self, run_id: str) -> None:
        """Cancel the run from code that cannot wait (a stream whose client left)."""
        task = asyncio.get_running_loop().create_task(self.cancel(run_id))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
