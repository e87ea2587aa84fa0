"""One run at a time per thread.

Two runs on one thread at once would interleave their checkpoints: each would read
the other's half-written state and the thread's history would no longer be one run
after another. So a run claims its thread when it starts and frees it when its
response has ended; a second run on a busy thread is refused with 409 at once (a
double-clicked Start, a retry that did not wait) rather than queued behind it.

``/agent`` runs claim their thread in the request's config hook and
:class:`service.middleware.ThreadIdHeaderMiddleware` frees it when the response
(a stream included) has ended; ``/threads/{id}/resume`` and ``/replay`` hold it
around the run with :meth:`BusyThreads.holding`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import HTTPException

__all__ = ["CLAIMED_STATE_KEY", "BusyThreads"]

# Where a request's claimed thread ids are kept (in ``request.state``) until it ends.
CLAIMED_STATE_KEY = "starcoder_claimed_threads"


class BusyThreads:
    """Thread ids with a run in progress in this server process.

    Only touched from the event loop, so a plain set needs no lock.
    """

    def __init__(self) -> None:
        self._busy: set[str] = set()

    def __contains__(self, thread_id: object) -> bool:
        return thread_id in self._busy

    def claim(self, thread_id: str) -> None:
        """Mark ``thread_id`` busy; 409 when a run on it is already in progress."""
        if thread_id in self._busy:
            raise HTTPException(
                409,
                f"thread {thread_id!r} already has a run in progress; wait for it to end "
                "(GET /threads/{id}/state) or use another thread id",
            )
        self._busy.add(thread_id)

    def release(self, thread_id: str) -> None:
        """Free ``thread_id`` (a no-op when it was not claimed)."""
        self._busy.discard(thread_id)

    def claim_for_request(self, state: Any, thread_id: str) -> None:
        """Claim ``thread_id`` for the request whose ``request.state`` is ``state``.

        The claim is freed by :meth:`release_request` when the response has ended.
        """
        self.claim(thread_id)
        claimed = getattr(state, CLAIMED_STATE_KEY, None)
        if claimed is None:
            claimed = []
            setattr(state, CLAIMED_STATE_KEY, claimed)
        claimed.append(thread_id)

    def release_request(self, scope_state: dict[str, Any]) -> None:
        """Free every thread the request (its ``scope["state"]``) claimed."""
        for thread_id in scope_state.pop(CLAIMED_STATE_KEY, None) or ():
            self.release(thread_id)

    @contextmanager
    def holding(self, thread_id: str) -> Iterator[None]:
        """Hold ``thread_id`` for the duration of the block (409 when busy)."""
        self.claim(thread_id)
        try:
            yield
        finally:
            self.release(thread_id)
