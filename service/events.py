"""A run's progress through Redis, so a client on any API replica sees it, whichever worker runs it.

Each run's events go to a Redis stream (``XADD``); a reader blocks on ``XREAD`` and
gets every event from the first, then each new one as it is written — pushed, not
polled — until the end marker. A client that joins late, or through another replica,
or after a worker died and another took the run over, reads the same stream. Streams
expire an hour after their run ends.

Cancellation goes the other way: an API replica publishes the run id on a pub/sub
channel every worker listens to, and the worker running it stops it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

__all__ = ["END_EVENT", "RedisRunEvents"]

logger = logging.getLogger(__name__)

END_EVENT = "__end__"
KEEP_AFTER_END_S = 3600
BLOCK_MS = 5_000  # how long one read waits for events before it checks the run is still on


class RedisRunEvents:
    """Per-run event streams and the cancel channel, under one key prefix (one per deployment)."""

    def __init__(self, url: str, *, prefix: str = "starcoder") -> None:
        self.client = aioredis.Redis.from_url(
            url, decode_responses=True, health_check_interval=10, socket_timeout=BLOCK_MS / 1000 + 10
        )
        self.prefix = prefix

    def _key(self, run_id: str) -> str:
        return f"{self.prefix}:run:{run_id}:events"

    @property
    def cancel_channel(self) -> str:
        """The pub/sub channel cancelled run ids are published on."""
        return f"{self.prefix}:cancel"

    async def publish(self, run_id: str, event: str, data: str) -> None:
        """Append one event; a Redis failure is logged, never fails the run."""
        try:
            await self.client.xadd(self._key(run_id), {"event": event, "data": data})
        except RedisError as exc:
            logger.warning("run %s: event %s not published: %s", run_id, event, exc)

    async def end(self, run_id: str) -> None:
        """Mark the run's stream ended; it expires later."""
        try:
            await self.client.xadd(self._key(run_id), {"event": END_EVENT, "data": "null"})
            await self.client.expire(self._key(run_id), KEEP_AFTER_END_S)
        except RedisError as exc:
            logger.warning("run %s: end marker not published: %s", run_id, exc)

    async def follow(
        self, run_id: str, is_over: Callable[[], Awaitable[bool]] | None = None
    ) -> AsyncIterator[tuple[str, str]]:
        """Every event of the run from its first, then new ones as written, until its end marker.

        ``is_over`` is asked whenever nothing came for a while: a run that ended without
        its marker (or whose stream expired) then ends the reading too.
        """
        key, last = self._key(run_id), "0-0"
        while True:
            reply: list[tuple[str, list[tuple[str, dict[str, str]]]]] = await self.client.xread(
                {key: last}, block=BLOCK_MS, count=100
            )  # type: ignore[assignment]  # redis-py types the reply loosely
            if not reply and is_over is not None and await is_over():
                return
            for _, entries in reply or ():
                for entry_id, fields in entries:
                    last = entry_id
                    if fields.get("event") == END_EVENT:
                        return
                    yield fields.get("event", "?"), fields.get("data", "null")

    async def request_cancel(self, run_id: str) -> None:
        """Tell every worker to stop ``run_id``."""
        await self.client.publish(self.cancel_channel, run_id)

    async def cancelled_ids(self) -> AsyncIterator[str]:
        """Run ids as cancels are published (for a worker), for as long as it listens."""
        async with self.client.pubsub(ignore_subscribe_messages=True) as pubsub:
            await pubsub.subscribe(self.cancel_channel)
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=BLOCK_MS / 1000)
                if message and message.get("type") == "message":
                    yield str(message["data"])

    async def close(self) -> None:
        """Close the connections."""
        await self.client.aclose()
