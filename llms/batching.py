"""A small batching queue: requests that arrive together share one ``generate`` call.

Callers :meth:`~BatchingQueue.submit` a job and read its events; one worker thread
takes the first waiting job, waits a short collection window for others (each arrival
keeps it open a little longer), groups the
jobs whose sampling settings match, and hands each group to the engine's batch function
(one padded ``generate``). With a single run in flight this costs one window (20 ms by
default) per call; with several, their calls share the model instead of queueing.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BatchJob", "BatchingQueue"]

logger = logging.getLogger(__name__)

_DONE = object()


@dataclass
class BatchJob:
    """One request in the queue, and the channel its results come back on."""

    payload: Any
    key: Hashable
    """Jobs with equal keys may share a batch."""
    events: queue.Queue[Any] = field(default_factory=queue.Queue)

    def put(self, event: Any) -> None:
        """Send a text piece or the final result to the caller."""
        self.events.put(event)

    def fail(self, error: BaseException) -> None:
        """End the job with an error the caller will raise."""
        self.events.put(error)
        self.events.put(_DONE)

    def finish(self) -> None:
        """End the job."""
        self.events.put(_DONE)

    def results(self) -> Iterator[Any]:
        """Yield the job's events until it ends; raise the error if it failed."""
        while True:
            event = self.events.get()
            if event is _DONE:
                return
            if isinstance(event, BaseException):
                raise event
            yield event


class BatchingQueue:
    """Collects jobs for ``window_s`` and runs them in groups of at most ``max_batch``."""

    def __init__(
        self,
        run_batch: Callable[[list[BatchJob]], None],
        *,
        max_batch: int = 8,
        window_s: float = 0.02,
        name: str = "batching-queue",
    ) -> None:
        self._run_batch = run_batch
        self.max_batch = max(1, max_batch)
        self.window_s = window_s
        self._queue: queue.Queue[BatchJob] = queue.Queue()
        self._worker = threading.Thread(target=self._work, name=name, daemon=True)
        self._started = False
        self._start_lock = threading.Lock()
        self.batch_sizes: list[int] = []
        """The size of every batch run so far (for benchmarks and tests)."""

    def submit(self, job: BatchJob) -> BatchJob:
        """Queue ``job`` and return it; read its :meth:`BatchJob.results`."""
        with self._start_lock:
            if not self._started:
                self._worker.start()
                self._started = True
        self._queue.put(job)
        return job

    def _collect(self) -> list[BatchJob]:
        """The first waiting job and those that follow it, each within ``window_s`` of the one before.

        Calls made at once reach the queue a few milliseconds apart, and a busy machine can
        spread them further: each arrival keeps the window open a little longer (at most
        five windows in all), so they still share a batch.
        """
        jobs = [self._queue.get()]
        now = time.monotonic()
        last_call, deadline = now + 5 * self.window_s, now + self.window_s
        while len(jobs) < self.max_batch:
            remaining = min(deadline, last_call) - time.monotonic()
            try:
                jobs.append(self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait())
            except queue.Empty:
                break
            deadline = time.monotonic() + self.window_s
        return jobs

    def _work(self) -> None:
        while True:
            jobs = self._collect()
            groups: dict[Hashable, list[BatchJob]] = {}
            for job in jobs:
                groups.setdefault(job.key, []).append(job)
            for group in groups.values():
                self.batch_sizes.append(len(group))
                try:
                    self._run_batch(group)
                except BaseException as exc:  # the worker must survive any one batch
                    logger.exception("a generation batch of %d failed", len(group))
                    for job in group:
                        job.fail(exc)
                else:
                    for job in group:
                        job.finish()
