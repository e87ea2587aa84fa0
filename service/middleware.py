"""ASGI middleware that keeps clients from hurting the server.

- :class:`ApiKeyMiddleware`: every route (the playground included) needs a key, sent
  as ``X-API-Key``, ``Authorization: Bearer KEY``, or HTTP Basic with KEY as the
  password (what a browser offers after the 401 challenge, so the playground works).
  With several keys (one per client), it records which one matched, so that
  :mod:`service.ratelimit` gives each key its own bucket (:func:`client_of`).
- :class:`BodyLimitMiddleware`: counts body bytes as they arrive (chunked bodies
  included) and answers 413 past the limit; answers 422 for a body that is not JSON,
  and 413 for a batch with too many inputs, before any route sees them.
- :class:`RunLimitMiddleware`: a bounded number of runs at once and a bounded queue
  behind them; past both a request gets 429 at once rather than memory growing.
- :class:`ErrorResponseMiddleware`: turns an exception a run raised into a 500 JSON
  answer and keeps the connection usable (Starlette would re-raise it and uvicorn
  would then drop the kept-alive connection under the client's next request).

All are plain ASGI (not ``BaseHTTPMiddleware``) so streamed responses pass through
untouched and the limits hold for a whole stream, not just its first byte. The
middleware that frees a run's claim on its thread is
:class:`service.thread_claims.ThreadClaimMiddleware`, with the rest of that rule.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "RUN_ENDPOINTS",
    "ApiKeyMiddleware",
    "BodyLimitMiddleware",
    "ErrorResponseMiddleware",
    "RunLimitMiddleware",
    "RunSlots",
    "client_of",
    "is_run_request",
]

logger = logging.getLogger(__name__)

# The last path segment of every POST that starts work (LangServe's endpoints, and
# the thread routes that continue a run).
RUN_ENDPOINTS = frozenset({"invoke", "batch", "stream", "stream_log", "stream_events", "resume", "replay"})
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
CLIENT_STATE_KEY = "starcoder_client"


async def send_error(send: Send, status: int, detail: str, headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
    """Answer with ``{"detail": ...}`` JSON, the shape FastAPI uses for its own errors."""
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def client_of(scope: Scope) -> str:
    """Who sent the request: the API key that matched (``key #N``), else the client address."""
    matched = scope.get("state", {}).get(CLIENT_STATE_KEY)
    if matched:
        return str(matched)
    client = scope.get("client")
    return f"address {client[0]}" if client else "address unknown"


def is_run_request(scope: Scope) -> bool:
    """True for a POST that starts or continues a run (any LangServe endpoint, resume, replay)."""
    if scope.get("method") != "POST":
        return False
    return scope.get("path", "").rstrip("/").rsplit("/", 1)[-1] in RUN_ENDPOINTS


class ApiKeyMiddleware:
    """Demand one of the API keys on every HTTP request."""

    def __init__(self, app: ASGIApp, *, api_keys: Sequence[str]) -> None:
        if not api_keys or not all(api_keys):
            raise ValueError("an empty API key would let everyone in")
        self.app = app
        self._keys = [key.encode() for key in api_keys]

    def _presented(self, scope: Scope) -> list[str]:
        keys = []
        if header := _header(scope, b"x-api-key"):
            keys.append(header.strip())
        auth = (_header(scope, b"authorization") or "").strip()
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer":
            keys.append(value.strip())
        elif scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return keys
            keys.extend(k for k in (password, user) if k)
        return keys

    def _matching(self, scope: Scope) -> int | None:
        """The number (from 1) of the configured key a presented key matches, or None."""
        presented = [k.encode() for k in self._presented(scope)]
        for number, key in enumerate(self._keys, start=1):
            if any(hmac.compare_digest(p, key) for p in presented):
                return number
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on only when one of the presented keys matches."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        number = self._matching(scope)
        if number is not None:
            scope.setdefault("state", {})[CLIENT_STATE_KEY] = f"key #{number}"
            await self.app(scope, receive, send)
            return
        await send_error(
            send,
            401,
            "an API key is required: send it as 'X-API-Key: KEY' or 'Authorization: Bearer KEY'",
            [(b"www-authenticate", b'Basic realm="starcoder-agents", charset="UTF-8"')],
        )


class _TooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """Read the body with a byte limit, check it is JSON, then replay it to the app."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, max_batch_size: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_batch_size = max_batch_size

    async def _read_body(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ConnectionAbortedError
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise _TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _check_json(self, scope: Scope, body: bytes) -> tuple[int, str] | None:
        """Return the status and message for an unacceptable body, or None."""
        try:
            data = json.loads(body)
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:200]
            return 422, f"the request body is not valid JSON: {reason}"
        if scope.get("path", "").rstrip("/").endswith("/batch") and isinstance(data, dict):
            inputs = data.get("inputs")
            if isinstance(inputs, list) and len(inputs) > self.max_batch_size:
                limit = self.max_batch_size
                return 413, f"a batch may hold at most {limit} inputs; this one has {len(inputs)}"
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse oversized or non-JSON bodies; hand the buffered body on otherwise."""
        if scope["type"] != "http" or scope.get("method") not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        too_large = f"the request body is larger than the limit of {self.max_body_bytes} bytes"
        declared = _header(scope, b"content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                await send_error(send, 400, "the Content-Length header is not a number")
                return
            if int(declared) > self.max_body_bytes:
                await send_error(send, 413, too_large, [(b"connection", b"close")])
                return
        try:
            body = await self._read_body(receive)
        except _TooLarge:
            await send_error(send, 413, too_large, [(b"connection", b"close")])
            return
        except ConnectionAbortedError:
            return
        if body.strip():
            problem = self._check_json(scope, body)
            if problem is not None:
                await send_error(send, *problem)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


@dataclass
class RunSlots:
    """Counts of runs executing and waiting, refused (429) for being busy or rate limited, and abandoned."""

    running: int = 0
    queued: int = 0
    rejected: int = 0
    abandoned: int = 0
    rate_limited: int = 0


class RunLimitMiddleware:
    """Let at most ``max_running`` runs execute and ``max_queued`` wait; refuse the rest (429)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_running: int,
        max_queued: int,
        queue_timeout_s: float,
        slots: RunSlots,
        is_run: Callable[[Scope], bool] = is_run_request,
        gate: asyncio.Semaphore | None = None,
    ) -> None:
        self.app = app
        self.max_running = max_running
        self.max_queued = max_queued
        self.queue_timeout_s = queue_timeout_s
        self.slots = slots
        self.is_run = is_run
        # Shared (``gate``) with other runners of the same process, so the slots are one set.
        self._free = gate or asyncio.Semaphore(max_running)

    async def _refuse(self, send: Send, why: str) -> None:
        self.slots.rejected += 1
        logger.warning("refused a run: %s", why)
        await send_error(send, 429, f"the server is busy: {why}; try again later", [(b"retry-after", b"5")])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Wait for a slot (bounded), run, and free the slot when the response has ended.

        A client that disconnects while its run waits for a slot gives up its place:
        the run never starts.
        """
        if scope["type"] != "http" or not self.is_run(scope):
            await self.app(scope, receive, send)
            return
        if self._free.locked() and self.slots.queued >= self.max_queued:
            await self._refuse(send, f"{self.max_running} runs are executing and {self.slots.queued} waiting")
            return
        # The whole body is read first, so that what arrives next can only be the disconnect.
        buffered: list[Message] = []
        while not buffered or buffered[-1].get("more_body"):
            buffered.append(await receive())
            if buffered[-1]["type"] == "http.disconnect":
                return
        self.slots.queued += 1
        try:
            outcome = await self._wait_for_slot(receive)
        finally:
            self.slots.queued -= 1
        if outcome == "timeout":
            await self._refuse(send, f"no run slot came free within {self.queue_timeout_s:.0f}s")
            return
        if outcome == "gone":
            self.slots.abandoned += 1
            logger.info("a client left while its run was queued; the run did not start")
            return

        async def replay() -> Message:
            return buffered.pop(0) if buffered else await receive()

        self.slots.running += 1
        try:
            await self.app(scope, replay, send)
        finally:
            self.slots.running -= 1
            self._free.release()

    async def _wait_for_slot(self, receive: Receive) -> str:
        """``"slot"`` once a slot is held, ``"gone"`` if the client left first, else ``"timeout"``."""
        acquire = asyncio.ensure_future(self._free.acquire())
        gone = asyncio.ensure_future(receive())
        done, _ = await asyncio.wait({acquire, gone}, timeout=self.queue_timeout_s, return_when=asyncio.FIRST_COMPLETED)
        # After the whole body, the only message a client can send is its disconnect.
        if acquire in done and gone not in done:
            gone.cancel()
            return "slot"
        for task in (acquire, gone):
            task.cancel()
        await asyncio.gather(acquire, gone, return_exceptions=True)
        if acquire.done() and not acquire.cancelled():
            self._free.release()  # won at the last moment: give it back
        return "gone" if gone in done else "timeout"


class ErrorResponseMiddleware:
    """Answer 500 with ``{"detail": ...}`` when the app raises before it has responded."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app; log an escaping exception and answer it if nothing was sent yet."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            logger.exception("%s %s failed", scope.get("method"), scope.get("path"))
            if started:
                raise
            detail = f"the server failed to complete the request: {type(exc).__name__}: {str(exc)[:200]}"
            await send_error(send, 500, detail)
