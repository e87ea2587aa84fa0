"""``starcoder-agents worker``: a Celery worker that runs the LangGraph API's runs.

Each worker loads the model once, opens the shared PostgreSQL checkpointer, and takes
run ids from the queue one at a time per thread of its pool. For each run it:

1. claims the run's record (:meth:`service.runstore.PostgresRunStore.claim`): a run
   that has ended or was cancelled is skipped; one held by a live worker, or queued
   behind an earlier run of its thread, is waited for;
2. runs it (:func:`service.runs.execute_run`), publishing events to Redis, renewing
   its lease, and stopping when a cancel arrives (pub/sub, or the flag seen at a
   renewal);
3. continues from the run's last checkpoint when the run was started before (a
   worker died: its message came back) or PostgreSQL went away for a while;
4. records how it ended, only while it still holds the run, then acknowledges the
   message (``acks_late``).

The graph runs on one asyncio loop per worker process, in a thread of its own; the
pool's threads hand runs to it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Future
from contextlib import AsyncExitStack
from typing import Any, Literal, TypeVar

import psycopg
import psycopg_pool
from langgraph.graph.state import CompiledStateGraph

from graph import Settings, build_graph
from graph.checkpoint import open_async_checkpointer
from roles.context import ModelProvider
from service.events import RedisRunEvents
from service.jobs import RUN_TASK, QueueSettings, celery_app
from service.lgschemas import RunCreate, RunRecord
from service.runs import RunOutcome, execute_run
from service.runstore import Claim, PostgresRunStore, open_run_store

__all__ = ["WorkerRuntime", "resume_point", "run_worker"]

logger = logging.getLogger(__name__)
T = TypeVar("T")

CLAIM_RETRY_S = 0.5
# How long a run waits for PostgreSQL to come back before it gives up (status error).
DATABASE_OUTAGE_S = 120.0
INFRASTRUCTURE_ERRORS: tuple[type[BaseException], ...] = (psycopg.OperationalError, psycopg_pool.PoolTimeout)


async def resume_point(graph: CompiledStateGraph, thread_id: str, run_id: str) -> Literal["start", "resume", "done"]:
    """Where a run started before stands: not checkpointed yet, part way, or finished.

    Checkpoints carry their run's id in their metadata; the thread's latest one says
    whether this run got that far and whether it has steps left. Steps left are all the
    checkpoint's tasks, those whose writes were saved included: ``snapshot.next`` leaves
    those out, so a run cut off after its step's writes but before the next checkpoint
    would look finished by ``next`` alone, and never run its remaining nodes.
    """
    snapshot = await graph.aget_state({"configurable": {"thread_id": thread_id}})
    if snapshot.created_at is None or (snapshot.metadata or {}).get("run_id") != run_id:
        return "start"
    return "resume" if snapshot.tasks else "done"


class WorkerRuntime:
    """The worker's loop, checkpointer, run store, events and the runs it holds."""

    def __init__(
        self,
        model: ModelProvider,
        *,
        checkpointer_url: str,
        queue: QueueSettings,
        settings: Settings | None = None,
        name: str | None = None,
    ) -> None:
        self.model = model
        self.settings = settings or Settings()
        self.queue = queue
        self.checkpointer_url = checkpointer_url
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.loop = asyncio.new_event_loop()
        self.running: dict[str, asyncio.Task[RunOutcome]] = {}
        self._stack = AsyncExitStack()
        self._graph: CompiledStateGraph | None = None
        self._store: PostgresRunStore | None = None
        self._events: RedisRunEvents | None = None

    # Life cycle.

    def start(self) -> None:
        """Start the loop thread and open the connections (raises when they cannot open)."""
        threading.Thread(target=self.loop.run_forever, name="runs loop", daemon=True).start()
        self._call(self._open()).result(timeout=60)
        logger.info("worker %s ready on queue %r", self.name, self.queue.queue)

    def stop(self) -> None:
        """Close the connections and stop the loop."""
        self._call(self._stack.aclose()).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)

    def _call(self, coro: Any) -> Future[Any]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    async def _open(self) -> None:
        saver = await self._stack.enter_async_context(open_async_checkpointer(self.checkpointer_url))
        self._graph = build_graph(self.model, settings=self.settings, checkpointer=saver)
        self._store = await self._stack.enter_async_context(open_run_store(self.checkpointer_url))
        self._events = RedisRunEvents(self.queue.redis_url, prefix=self.queue.queue)
        self._stack.push_async_callback(self._events.close)
        listener = asyncio.create_task(self._listen_for_cancels(), name="cancel listener")
        self._stack.callback(listener.cancel)

    @property
    def graph(self) -> CompiledStateGraph:
        assert self._graph is not None, "the worker has not started"
        return self._graph

    @property
    def store(self) -> PostgresRunStore:
        assert self._store is not None, "the worker has not started"
        return self._store

    @property
    def events(self) -> RedisRunEvents:
        assert self._events is not None, "the worker has not started"
        return self._events

    async def _listen_for_cancels(self) -> None:
        while True:
            try:
                async for run_id in self.events.cancelled_ids():
                    if (task := self.running.get(run_id)) is not None:
                        logger.info("run %s: cancel received", run_id)
                        task.cancel()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis went away: listen again (renewals see cancels meanwhile)
                logger.warning("cancel listener: %s; listening again", exc)
                await asyncio.sleep(1)

    # Runs.

    def process(self, run_id: str) -> None:
        """Run ``run_id`` to its end (called from a pool thread; blocks until done)."""
        self._call(self._process(run_id)).result()

    async def _through_outage(self, call: Callable[[], Awaitable[T]]) -> T:
        """``call()``, again each second while PostgreSQL is away (up to :data:`DATABASE_OUTAGE_S`).

        The message stays unacknowledged meanwhile: a task that failed here would be
        acknowledged, and its run lost.
        """
        deadline = time.monotonic() + DATABASE_OUTAGE_S
        while True:
            try:
                return await call()
            except INFRASTRUCTURE_ERRORS as exc:
                if time.monotonic() > deadline:
                    raise
                logger.warning("database unavailable (%s); trying again", exc)
                await asyncio.sleep(1)

    async def _claim(self, run_id: str) -> Claim:
        claim = await self._through_outage(lambda: self.store.claim(run_id, self.name, self.queue.lease_s))
        while claim.kind == "wait":
            await asyncio.sleep(CLAIM_RETRY_S)
            claim = await self._through_outage(lambda: self.store.claim(run_id, self.name, self.queue.lease_s))
        return claim

    async def _process(self, run_id: str) -> None:
        claim = await self._claim(run_id)
        if claim.kind == "skip" or claim.record is None:
            logger.info("run %s: nothing to do (ended or cancelled)", run_id)
            await self.events.end(run_id)
            return
        record, body = claim.record, RunCreate.model_validate(claim.body or {})
        if claim.attempts > 1:
            logger.warning("run %s: attempt %d, continuing from its last checkpoint", run_id, claim.attempts)
        outcome = await self._run_through_outages(record, body, retried=claim.attempts > 1)
        if outcome is None:
            logger.warning("run %s: another worker holds it now; leaving it", run_id)
            return
        if await self._through_outage(lambda: self.store.finish(run_id, self.name, outcome.status, outcome.error)):
            await self.events.end(run_id)

    async def _run_through_outages(self, record: RunRecord, body: RunCreate, *, retried: bool) -> RunOutcome | None:
        """Run, continuing from the last checkpoint after a database outage; None if the lease was lost."""
        deadline = time.monotonic() + DATABASE_OUTAGE_S
        while True:
            try:
                point = await resume_point(self.graph, record["thread_id"], record["run_id"]) if retried else "start"
                if point == "done":
                    return RunOutcome("success")
                return await self._run_held(record, body, resume=point == "resume")
            except INFRASTRUCTURE_ERRORS as exc:
                if time.monotonic() > deadline:
                    return RunOutcome("error", {"error": type(exc).__name__, "message": str(exc)[:500]})
                logger.warning("run %s: database unavailable (%s); continuing when it is back", record["run_id"], exc)
                await asyncio.sleep(1)
                retried = True

    async def _run_held(self, record: RunRecord, body: RunCreate, *, resume: bool) -> RunOutcome | None:
        run_id = record["run_id"]

        async def publish(event: str, data: str) -> None:
            await self.events.publish(run_id, event, data)

        task = asyncio.create_task(
            execute_run(self.graph, record, body, publish, resume=resume, reraise=INFRASTRUCTURE_ERRORS)
        )
        self.running[run_id] = task
        lease = asyncio.create_task(self._keep_lease(run_id, task))
        try:
            return await task
        except asyncio.CancelledError:
            if lease.done() and lease.result() == "lost":
                return None
            return RunOutcome("interrupted")
        finally:
            lease.cancel()
            self.running.pop(run_id, None)

    async def _keep_lease(self, run_id: str, task: asyncio.Task[Any]) -> str:
        """Renew the lease while ``task`` runs; cancel it on a cancel request or a lost lease."""
        while True:
            await asyncio.sleep(self.queue.lease_s / 3)
            try:
                held, cancel = await self.store.renew(run_id, self.name, self.queue.lease_s)
            except INFRASTRUCTURE_ERRORS as exc:
                logger.warning("run %s: lease not renewed: %s", run_id, exc)
                continue
            if not held or cancel:
                task.cancel()
                return "lost" if not held else "cancelled"


def run_worker(
    model: ModelProvider,
    *,
    checkpointer_url: str,
    queue: QueueSettings | None = None,
    settings: Settings | None = None,
    concurrency: int = 1,
    name: str | None = None,
    extra_args: Sequence[str] = (),
) -> None:
    """Serve runs from the queue with ``model`` until stopped (SIGTERM waits for the runs in hand)."""
    queue = queue or QueueSettings()
    if not queue.enabled:
        raise ValueError("a worker needs a broker: set STARCODER_BROKER_URL (or --broker)")
    runtime = WorkerRuntime(model, checkpointer_url=checkpointer_url, queue=queue, settings=settings, name=name)
    runtime.start()
    app = celery_app(queue)
    app.task(name=RUN_TASK, acks_late=True, reject_on_worker_lost=True)(runtime.process)
    argv = ["worker", "--pool=threads", f"--concurrency={concurrency}", "--loglevel=INFO", "-Q", queue.queue]
    argv += ["--without-gossip", "--without-mingle", f"--hostname={runtime.name}@%h", *extra_args]
    try:
        app.worker_main(argv)
    finally:
        runtime.stop()
