"""One run at a time per thread: claiming a thread, freeing it, the 409, the multitask strategies.

Two runs on one thread at once would interleave their checkpoints: each would read
the other's half-written state and the thread's history would no longer be one run
after another. So a run claims its thread when it starts and frees it when it has
ended; a second run on a busy thread is refused with 409 at once (a double-clicked
Start, a retry that did not wait) rather than queued behind it, unless it asks to
queue. Every route that runs the graph in this process claims through the one
:class:`ThreadClaims` the server builds, so no two routes run one thread at once:

- ``/agent`` (LangServe) claims in the request's config hook
  (:func:`service.graph_route.agent_config_modifier`, with
  :meth:`ThreadClaims.claim_for_request`); :class:`ThreadClaimMiddleware` frees the
  claim when the response (a stream included) has ended, and reports the thread id
  in an ``X-Thread-Id`` response header.
- ``/threads/{id}/resume`` and ``/replay`` hold the thread around the run
  (:meth:`ThreadClaims.holding`).
- ``/lg`` runs in this process (:mod:`service.localruns`) follow their
  ``multitask_strategy`` when submitted (:meth:`ThreadClaims.admit`): ``reject`` (the
  default, as ``/agent``: 409 at once), ``enqueue`` (the run waits its
  :meth:`ThreadClaims.turn`, in order, behind the thread's earlier runs), or
  ``interrupt`` (the runs in progress are cancelled, their last checkpoint stays, and
  it starts); while it executes, the run holds the thread (:meth:`ThreadClaims.try_claim`).
- ``/lg`` runs on workers (:mod:`service.brokerruns`) follow the same strategies
  across replicas through the run store in PostgreSQL, and answer the same 409
  (:func:`thread_busy`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["ThreadClaimMiddleware", "ThreadClaims", "thread_busy"]

# Where a request keeps (in ``request.state``) the thread ids it claimed, until it ends,
# and the thread id to report in its ``X-Thread-Id`` header.
CLAIMED_STATE_KEY = "starcoder_claimed_threads"
THREAD_ID_STATE_KEY = "starcoder_thread_id"

Run = TypeVar("Run")


def thread_busy(thread_id: str, *, strategies: bool = False) -> HTTPException:
    """The 409 for a run on a thread that already has one.

    ``strategies``: the client could have asked to queue or interrupt instead (``/lg``).
    """
    if strategies:
        advice = "wait for it, or send multitask_strategy 'enqueue' or 'interrupt'"
    else:
        advice = "wait for it to end (GET /threads/{id}/state) or use another thread id"
    return HTTPException(409, f"thread {thread_id!r} already has a run in progress; {advice}")


@dataclass
class _Turns:
    """The runs of one thread waiting for (or holding) its turn, in arrival order."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    waiting: int = 0


class ThreadClaims:
    """Thread ids with a run in progress in this server process, and the runs queued behind them.

    Only touched from the event loop, so plain containers need no lock.
    """

    def __init__(self) -> None:
        self._busy: set[str] = set()
        self._turns: dict[str, _Turns] = {}

    def __contains__(self, thread_id: object) -> bool:
        return thread_id in self._busy

    def try_claim(self, thread_id: str) -> bool:
        """Mark ``thread_id`` busy; False (and nothing claimed) when it already is."""
        if thread_id in self._busy:
            return False
        self._busy.add(thread_id)
        return True

    def claim(self, thread_id: str) -> None:
        """Mark ``thread_id`` busy; 409 when a run on it is already in progress."""
        if not self.try_claim(thread_id):
            raise thread_busy(thread_id)

    def release(self, thread_id: str) -> None:
        """Free ``thread_id`` (a no-op when it was not claimed)."""
        self._busy.discard(thread_id)

    @contextmanager
    def holding(self, thread_id: str) -> Iterator[None]:
        """Hold ``thread_id`` for the duration of the block (409 when busy)."""
        self.claim(thread_id)
        try:
            yield
        finally:
            self.release(thread_id)

    # A request whose run outlives the route's handler (a LangServe stream).

    def claim_for_request(self, state: Any, thread_id: str, *, report: bool = True) -> None:
        """Claim ``thread_id`` for the request whose ``request.state`` is ``state``.

        :class:`ThreadClaimMiddleware` frees the claim when the response has ended and,
        with ``report``, names the thread in the ``X-Thread-Id`` response header.
        """
        self.claim(thread_id)
        claimed = getattr(state, CLAIMED_STATE_KEY, None)
        if claimed is None:
            claimed = []
            setattr(state, CLAIMED_STATE_KEY, claimed)
        claimed.append(thread_id)
        if report:
            setattr(state, THREAD_ID_STATE_KEY, thread_id)

    def release_request(self, scope_state: dict[str, Any]) -> None:
        """Free every thread the request (its ``scope["state"]``) claimed."""
        for thread_id in scope_state.pop(CLAIMED_STATE_KEY, None) or ():
            self.release(thread_id)

    # The multitask strategies of the LangGraph Server API.

    def admit(self, thread_id: str, strategy: str, active: Sequence[Run]) -> list[Run]:
        """Whether a new run may join ``thread_id``, whose ``active`` runs are pending or running.

        Returns the runs to cancel first (``interrupt``: all of them; else none); 409
        under ``reject`` when the thread has runs, and under any strategy when another
        route (``/agent``, ``/threads``) holds the thread: those runs cannot be queued
        behind or interrupted.
        """
        if active and strategy == "reject":
            raise thread_busy(thread_id, strategies=True)
        if thread_id in self and not active:
            raise thread_busy(thread_id, strategies=True)
        return list(active) if strategy == "interrupt" else []

    @asynccontextmanager
    async def turn(self, thread_id: str) -> AsyncIterator[None]:
        """Wait until the runs of ``thread_id`` that came before have ended (first come, first served)."""
        turns = self._turns.setdefault(thread_id, _Turns())
        turns.waiting += 1
        try:
            async with turns.lock:
                yield
        finally:
            turns.waiting -= 1
            if not turns.waiting:
                del self._turns[thread_id]  # nothing waits on it: forget it


class ThreadClaimMiddleware:
    """Free the threads a request's run claimed once its response has ended; report its thread.

    The response of a request whose run was given a thread id carries it in an
    ``X-Thread-Id`` header, so a client that sent none can read the thread back. The
    claims are freed after the response's last byte, a stream's last chunk included.
    """

    def __init__(self, app: ASGIApp, *, claims: ThreadClaims) -> None:
        self.app = app
        self.claims = claims

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; add the header to its response; free its claims at the end."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})

        async def send_with_header(message: Message) -> None:
            thread_id = state.get(THREAD_ID_STATE_KEY)
            if message["type"] == "http.response.start" and thread_id:
                headers = [*message.get("headers", []), (b"x-thread-id", thread_id.encode())]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_header)
        finally:
            self.claims.release_request(state)
