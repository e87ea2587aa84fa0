"""Per-client rate limits on runs: a token bucket per API key, or per client address.

Every POST that starts or continues a run (LangServe's endpoints under ``/agent`` and
``/agents/*``, thread resume and replay; see :func:`service.middleware.is_run_request`)
takes one token from its client's bucket; a batch is one request. A bucket holds at
most ``burst`` tokens and refills at ``per_minute`` tokens a minute, so a client may
send ``burst`` runs at once and then ``per_minute`` a minute. An empty bucket answers
429 with ``Retry-After`` (whole seconds, rounded up) and a JSON ``detail``. Reading
(``/health``, ``/stats``, thread state, the playground page) is never limited.

The client is the API key it presented (when keys are configured, each key has its
own bucket; :class:`service.middleware.ApiKeyMiddleware` records which one matched),
else its address as the server sees it (behind a proxy, the proxy's address unless
uvicorn is told to trust its forwarded headers).
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from service.middleware import RunSlots, client_of, is_run_request, send_error

__all__ = ["ClientBuckets", "RateLimitMiddleware", "TokenBucket"]

logger = logging.getLogger(__name__)

# Buckets kept at most; past it the least recently used go (a full bucket is the same
# as none, so forgetting an idle client costs nothing).
MAX_CLIENTS = 10_000


@dataclass
class TokenBucket:
    """Up to ``capacity`` tokens, refilled at ``per_second`` tokens a second."""

    capacity: float
    per_second: float
    tokens: float
    updated: float

    def take(self, now: float) -> float:
        """Take one token: 0.0 when there was one, else the seconds until there is."""
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.per_second)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.per_second


class ClientBuckets:
    """One :class:`TokenBucket` per client, created full on the client's first request."""

    def __init__(
        self,
        *,
        per_minute: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = MAX_CLIENTS,
    ) -> None:
        if per_minute <= 0 or burst < 1:
            raise ValueError("a rate limit needs per_minute > 0 and burst >= 1")
        self.per_minute = per_minute
        self.burst = burst
        self._clock = clock
        self._max_clients = max_clients
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def take(self, client: str) -> float:
        """Take a token for ``client``: 0.0 when allowed, else the seconds to wait."""
        now = self._clock()
        bucket = self._buckets.pop(client, None)
        if bucket is None:
            bucket = TokenBucket(capacity=self.burst, per_second=self.per_minute / 60, tokens=self.burst, updated=now)
        self._buckets[client] = bucket  # most recently used last
        while len(self._buckets) > self._max_clients:
            self._buckets.popitem(last=False)
        return bucket.take(now)


class RateLimitMiddleware:
    """Refuse a client's run with 429 once its bucket is empty; ``per_minute`` 0 turns it off."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        per_minute: float,
        burst: int,
        slots: RunSlots,
        is_run: Callable[[Scope], bool] = is_run_request,
    ) -> None:
        self.app = app
        self.buckets = ClientBuckets(per_minute=per_minute, burst=burst) if per_minute > 0 else None
        self.slots = slots
        self.is_run = is_run

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, unless it is a run and its client has no token left."""
        if self.buckets is None or scope["type"] != "http" or not self.is_run(scope):
            await self.app(scope, receive, send)
            return
        client = client_of(scope)
        wait_s = self.buckets.take(client)
        if wait_s <= 0:
            await self.app(scope, receive, send)
            return
        retry_after = max(1, math.ceil(wait_s))
        self.slots.rate_limited += 1
        logger.warning("rate limited %s for %ds", client, retry_after)
        detail = (
            f"too many runs from this client ({client}): the limit is {self.buckets.per_minute:g} a minute "
            f"after a burst of {self.buckets.burst}; try again in {retry_after}s"
        )
        await send_error(send, 429, detail, [(b"retry-after", str(retry_after).encode())])
