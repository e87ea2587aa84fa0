"""The LangGraph Server API subset the official clients use, served under ``/lg``.

``RemoteGraph("starcoder-agents", url="http://HOST:PORT/lg")`` and
``langgraph_sdk.get_client(url="http://HOST:PORT/lg")`` work against it: the clients
join their paths to the base URL, so the prefix keeps these routes apart from the
older ``/threads/{id}/state|history|resume|replay`` routes, whose shapes differ.

- Assistants: ``GET /assistants/{id}``, ``POST /assistants/search``,
  ``GET /assistants/{id}/graph`` — one assistant, the graph (``starcoder-agents``,
  or its UUID).
- Threads: ``POST /threads``, ``GET /threads/{id}``, ``GET /threads/{id}/state``
  (and ``/state/{checkpoint_id}``), ``POST /threads/{id}/history``.
- Runs: ``POST /threads/{id}/runs`` (background), ``.../runs/stream`` (SSE),
  ``.../runs/wait``; ``GET .../runs``, ``GET .../runs/{run_id}``, ``.../join``,
  ``GET .../runs/{run_id}/stream``, ``POST .../cancel``; and the thread-less
  ``POST /runs``, ``/runs/stream``, ``/runs/wait``, which make a thread for the run.

A run takes the settings its request chose, as on ``/agent``: the settable fields
(:data:`graph.config.REQUEST_FIELDS`) in ``config.configurable`` or in ``context``
(which wins), within their bounds; anything out of bounds, or a ``context`` key a
request may not set (``results_dir``), is a 422 before any run starts.

Unknown assistants, threads and runs are 404; a second run on a busy thread follows
its ``multitask_strategy`` (see :mod:`service.thread_claims`). Where runs execute is the
backend's business: in this process (:class:`service.localruns.LocalRuns`), or on
workers behind a broker.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any, Protocol

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response, StreamingResponse
from langchain_core.runnables import RunnableConfig
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import StateSnapshot
from pydantic import ValidationError
from starlette.types import Scope

from graph.builder import GRAPH_NAME, LoopGraph
from graph.config import REQUEST_FIELDS, Settings, resolve_settings
from graph.runtime import new_thread_id
from service.graph_route import TaskRequest, check_model_choice, check_thread_id
from service.lgschemas import (
    AssistantRecord,
    AssistantSearch,
    HistoryRequest,
    RunCreate,
    RunRecord,
    RunStatus,
    StateRequest,
    ThreadCreate,
    ThreadRecord,
)
from service.middleware import is_run_request
from service.runs import RunOutcome, to_json

__all__ = [
    "API_PREFIX",
    "ASSISTANT_ID",
    "RunBackend",
    "is_api_run_request",
    "is_rated_request",
    "is_served_run_request",
    "lg_routes",
]

API_PREFIX = "/lg"
ASSISTANT_ID = str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{GRAPH_NAME}.assistant"))
_RUN_STARTS = ("/runs", "/runs/stream", "/runs/wait")


def is_api_run_request(scope: Scope) -> bool:
    """True for a POST under :data:`API_PREFIX` that starts a run."""
    path = scope.get("path", "").rstrip("/")
    return scope.get("method") == "POST" and path.startswith(API_PREFIX + "/") and path.endswith(_RUN_STARTS)


def is_served_run_request(scope: Scope) -> bool:
    """A LangServe or thread-route run (held in a run slot by the middleware); not these routes."""
    return is_run_request(scope) and not scope.get("path", "").startswith(API_PREFIX + "/")


def is_rated_request(scope: Scope) -> bool:
    """Every request that starts a run, on either API: what a client's rate limit counts."""
    return is_run_request(scope) or is_api_run_request(scope)


class RunBackend(Protocol):
    """Where threads and runs are recorded and executed (this process, or workers)."""

    async def create_thread(self, thread_id: str, metadata: dict[str, Any]) -> tuple[dict[str, Any], bool]: ...
    async def thread_meta(self, thread_id: str) -> dict[str, Any] | None: ...
    async def active_runs(self, thread_id: str) -> list[RunRecord]: ...
    async def last_status(self, thread_id: str) -> RunStatus | None: ...
    async def submit(self, thread_id: str, body: RunCreate, assistant_id: str) -> RunRecord: ...
    async def get_run(self, thread_id: str, run_id: str) -> RunRecord | None: ...
    async def list_runs(self, thread_id: str, *, limit: int, offset: int, status: str | None) -> list[RunRecord]: ...
    def follow(self, run_id: str) -> AsyncIterator[tuple[str, str]]: ...
    async def wait(self, run_id: str) -> RunOutcome: ...
    async def cancel(self, run_id: str) -> None: ...
    def cancel_soon(self, run_id: str) -> None: ...


def _json(value: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(to_json(value), status_code=status, media_type="application/json", headers=headers)


def _sse(event: str, data: str) -> bytes:
    return f"event: {event}\ndata: {data}\n\n".encode()


def _checkpoint(config: RunnableConfig | None, thread_id: str) -> dict[str, Any] | None:
    configurable = (config or {}).get("configurable") or {}
    if not configurable.get("checkpoint_id"):
        return None
    return {
        "thread_id": thread_id,
        "checkpoint_ns": configurable.get("checkpoint_ns", ""),
        "checkpoint_id": configurable["checkpoint_id"],
        "checkpoint_map": configurable.get("checkpoint_map"),
    }


def _interrupts(items: Any) -> list[dict[str, Any]]:
    return [{"value": getattr(i, "value", None), "id": str(getattr(i, "id", ""))} for i in items or ()]


def thread_state(snapshot: StateSnapshot, thread_id: str) -> dict[str, Any]:
    """A checkpoint as ``langgraph_sdk.schema.ThreadState``."""
    empty = {"thread_id": thread_id, "checkpoint_ns": "", "checkpoint_id": None, "checkpoint_map": None}
    return {
        "values": dict(snapshot.values or {}),
        "next": list(snapshot.next),
        "checkpoint": _checkpoint(snapshot.config, thread_id) or empty,
        "metadata": dict(snapshot.metadata or {}),
        "created_at": snapshot.created_at,
        "parent_checkpoint": _checkpoint(snapshot.parent_config, thread_id),
        "tasks": [
            {
                "id": task.id,
                "name": task.name,
                "error": repr(task.error) if task.error else None,
                "interrupts": _interrupts(task.interrupts),
                "checkpoint": None,
                "state": None,
                "result": task.result,
            }
            for task in snapshot.tasks
        ],
        "interrupts": _interrupts(snapshot.interrupts),
    }


def assistant_record() -> AssistantRecord:
    """The one assistant: the served graph with its defaults."""
    return AssistantRecord(
        assistant_id=ASSISTANT_ID,
        graph_id=GRAPH_NAME,
        config={},
        context={},
        created_at="2026-01-01T00:00:00+00:00",
        updated_at="2026-01-01T00:00:00+00:00",
        metadata={"created_by": "system"},
        version=1,
        name=GRAPH_NAME,
        description="Turns a programming task in plain words into tested, reviewed Python code.",
    )


def check_assistant(assistant_id: str) -> str:
    """The assistant id for ``assistant_id`` (the graph's name or its UUID), else 404."""
    if assistant_id not in (GRAPH_NAME, ASSISTANT_ID):
        raise HTTPException(404, f"no assistant {assistant_id[:128]!r} here; the one assistant is {GRAPH_NAME!r}")
    return ASSISTANT_ID


def _check_settings(body: RunCreate, base: Settings) -> None:
    """Refuse (422, saying which and why) settings a request may not choose, or out of their bounds.

    The run resolves the same settings again as it starts (:func:`graph.config.resolve_settings`);
    checking them here refuses a bad one before any run is recorded.
    """
    configurable = (body.config or {}).get("configurable")
    if configurable is not None and not isinstance(configurable, dict):
        raise HTTPException(422, "'config.configurable' must be an object")
    refused = sorted(set(body.context or {}) - set(REQUEST_FIELDS))
    if refused:
        names = ", ".join(map(repr, refused))
        raise HTTPException(422, f"context: {names} cannot be set by a request; it may set {', '.join(REQUEST_FIELDS)}")
    sources: tuple[tuple[str, RunnableConfig | None, dict[str, Any] | None], ...] = (
        ("config.configurable", {"configurable": configurable or {}}, None),
        ("context", None, body.context),
    )
    for where, config, context in sources:
        try:
            resolve_settings(config, base, context)
        except ValueError as exc:
            raise HTTPException(422, f"{where}: {exc}") from exc


def _check_input(body: RunCreate, served_model: str, settings: Settings) -> RunCreate:
    """Validate the task and the settings (422 with the reason) and refuse another model than the served one."""
    _check_settings(body, settings)
    configurable = (body.config or {}).get("configurable") or {}
    check_model_choice(served_model, configurable.get("model"))
    if body.input is None:
        return body
    try:
        task = TaskRequest.model_validate(body.input)
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", "input", *e["loc"])} for e in exc.errors()]) from exc
    check_model_choice(served_model, task.model)
    return body.model_copy(update={"input": task.model_dump(exclude_none=True, exclude={"model"})})


class _Api:
    """The route handlers' shared logic over one graph and one run backend."""

    def __init__(self, graph: CompiledStateGraph, runs: RunBackend, served_model: str) -> None:
        self.graph = graph
        self.runs = runs
        self.served_model = served_model
        self.settings = graph.settings if isinstance(graph, LoopGraph) else Settings()

    async def snapshot(self, thread_id: str, checkpoint_id: str | None = None) -> StateSnapshot:
        configurable = {"thread_id": thread_id}
        if checkpoint_id:
            configurable["checkpoint_id"] = checkpoint_id
        return await self.graph.aget_state({"configurable": configurable})

    async def require_thread(self, thread_id: str) -> tuple[dict[str, Any] | None, StateSnapshot]:
        check_thread_id(thread_id)
        meta = await self.runs.thread_meta(thread_id)
        snapshot = await self.snapshot(thread_id)
        if meta is None and snapshot.created_at is None:
            raise HTTPException(404, f"no thread {thread_id!r} here")
        return meta, snapshot

    async def thread_exists(self, thread_id: str) -> bool:
        if await self.runs.thread_meta(thread_id) is not None:
            return True
        return (await self.snapshot(thread_id)).created_at is not None

    async def thread_record(self, thread_id: str) -> ThreadRecord:
        meta, snapshot = await self.require_thread(thread_id)
        meta = meta or {"created_at": snapshot.created_at, "updated_at": snapshot.created_at, "metadata": {}}
        if await self.runs.active_runs(thread_id):
            status = "busy"
        elif await self.runs.last_status(thread_id) == "error":
            status = "error"
        else:
            status = "interrupted" if snapshot.next else "idle"
        return ThreadRecord(
            thread_id=thread_id,
            created_at=meta["created_at"],
            updated_at=meta["updated_at"],
            metadata=meta["metadata"],
            status=status,  # type: ignore[typeddict-item]
            values=dict(snapshot.values or {}),
            interrupts={},
        )

    async def start(self, thread_id: str | None, body: RunCreate) -> RunRecord:
        """Check ``body`` and the thread, then hand the run to the backend."""
        assistant_id = check_assistant(body.assistant_id)
        body = _check_input(body, self.served_model, self.settings)
        if thread_id is None:
            thread_id = new_thread_id()
            await self.runs.create_thread(thread_id, {})
        else:
            check_thread_id(thread_id)
            if not await self.thread_exists(thread_id):
                if body.if_not_exists != "create":
                    raise HTTPException(404, f"no thread {thread_id!r} here (send if_not_exists 'create' to make it)")
                await self.runs.create_thread(thread_id, {})
        if body.input is None and not await self._can_continue(thread_id, body):
            raise HTTPException(422, "'input' is required: the thread has no interrupted run to continue")
        return await self.runs.submit(thread_id, body, assistant_id)

    async def _can_continue(self, thread_id: str, body: RunCreate) -> bool:
        snapshot = await self.snapshot(thread_id, body.start_checkpoint())
        return snapshot.created_at is not None and bool(snapshot.next)

    async def require_run(self, thread_id: str, run_id: str) -> RunRecord:
        check_thread_id(thread_id)
        check_thread_id(run_id)
        record = await self.runs.get_run(thread_id, run_id)
        if record is None:
            raise HTTPException(404, f"no run {run_id!r} on thread {thread_id!r}")
        return record

    async def outcome_body(self, record: RunRecord) -> Response:
        """What ``/wait`` and ``/join`` answer: the thread's values, or ``__error__``."""
        outcome = await self.runs.wait(record["run_id"])
        if outcome.error is not None:
            return _json({"__error__": outcome.error})
        return _json(dict((await self.snapshot(record["thread_id"])).values or {}))

    def stream(self, record: RunRecord, request: Request, *, cancel_on_disconnect: bool) -> StreamingResponse:
        """The run's events as server-sent events, starting with its ``metadata``."""
        run_id = record["run_id"]
        events = self.runs.follow(run_id)

        async def body() -> AsyncIterator[bytes]:
            yield _sse("metadata", to_json({"run_id": run_id, "attempt": 1}))
            ended = False
            try:
                async for event, data in events:
                    yield _sse(event, data)
                ended = True
            finally:
                if not ended and cancel_on_disconnect:
                    self.runs.cancel_soon(run_id)

        location = f"{request.scope.get('root_path', '')}{API_PREFIX}/threads/{record['thread_id']}/runs/{run_id}"
        return StreamingResponse(
            body(),
            media_type="text/event-stream",
            headers={"Content-Location": location, "Cache-Control": "no-store"},
        )


def _assistant_routes(router: APIRouter, api: _Api) -> None:
    @router.get("/assistants/{assistant_id}")
    async def get_assistant(assistant_id: str) -> Response:
        """The assistant (the graph's name or its UUID)."""
        check_assistant(assistant_id)
        return _json(assistant_record())

    @router.post("/assistants/search")
    async def search_assistants(body: AssistantSearch) -> Response:
        """The one assistant, when it matches the filters."""
        matches = body.graph_id in (None, GRAPH_NAME) and body.name in (None, GRAPH_NAME) and body.offset == 0
        return _json([assistant_record()] if matches else [])

    @router.get("/assistants/{assistant_id}/graph")
    async def assistant_graph(assistant_id: str) -> Response:
        """The graph's nodes and edges."""
        check_assistant(assistant_id)
        return _json(api.graph.get_graph().to_json())


def _thread_routes(router: APIRouter, api: _Api) -> None:
    @router.post("/threads")
    async def create_thread(body: ThreadCreate) -> Response:
        """Make a thread (a fresh id unless one is given); 409 if it exists, unless ``if_exists`` says so."""
        thread_id = check_thread_id(body.thread_id) if body.thread_id else new_thread_id()
        if body.thread_id and body.if_exists == "raise" and await api.thread_exists(thread_id):
            raise HTTPException(409, f"thread {thread_id!r} exists")
        await api.runs.create_thread(thread_id, body.metadata or {})
        return _json(await api.thread_record(thread_id))

    @router.get("/threads/{thread_id}")
    async def get_thread(thread_id: str) -> Response:
        """The thread: its status and latest values."""
        return _json(await api.thread_record(thread_id))

    @router.get("/threads/{thread_id}/state")
    async def get_state(thread_id: str) -> Response:
        """The thread's latest checkpoint."""
        _, snapshot = await api.require_thread(thread_id)
        return _json(thread_state(snapshot, thread_id))

    @router.post("/threads/{thread_id}/state/checkpoint")
    async def get_state_of(thread_id: str, body: StateRequest) -> Response:
        """The checkpoint ``body.checkpoint`` names, or the latest when it names none."""
        await api.require_thread(thread_id)
        checkpoint_id = body.checkpoint_id()
        snapshot = await api.snapshot(thread_id, check_thread_id(checkpoint_id) if checkpoint_id else None)
        if snapshot.created_at is None and checkpoint_id:
            raise HTTPException(404, f"thread {thread_id!r} has no checkpoint {checkpoint_id!r}")
        return _json(thread_state(snapshot, thread_id))

    @router.get("/threads/{thread_id}/state/{checkpoint_id}")
    async def get_state_at(thread_id: str, checkpoint_id: str) -> Response:
        """One checkpoint of the thread."""
        await api.require_thread(thread_id)
        snapshot = await api.snapshot(thread_id, check_thread_id(checkpoint_id))
        if snapshot.created_at is None:
            raise HTTPException(404, f"thread {thread_id!r} has no checkpoint {checkpoint_id!r}")
        return _json(thread_state(snapshot, thread_id))

    @router.post("/threads/{thread_id}/history")
    async def get_history(thread_id: str, body: HistoryRequest) -> Response:
        """The thread's checkpoints, newest first."""
        await api.require_thread(thread_id)
        config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
        before = body.before_checkpoint()
        before_config: RunnableConfig | None = (
            {"configurable": {"thread_id": thread_id, "checkpoint_id": before}} if before else None
        )
        states = [
            thread_state(s, thread_id)
            async for s in api.graph.aget_state_history(config, limit=body.limit, before=before_config)
        ]
        return _json(states)


def _run_routes(router: APIRouter, api: _Api) -> None:
    @router.post("/threads/{thread_id}/runs")
    async def create_run(thread_id: str, body: RunCreate) -> Response:
        """Start a run in the background; answers its record at once."""
        record = await api.start(thread_id, body)
        return _json(record, headers={"Content-Location": f"{API_PREFIX}/threads/{thread_id}/runs/{record['run_id']}"})

    @router.post("/threads/{thread_id}/runs/stream")
    async def stream_run(thread_id: str, body: RunCreate, request: Request) -> StreamingResponse:
        """Start a run and stream its events (SSE) in the requested modes."""
        record = await api.start(thread_id, body)
        return api.stream(record, request, cancel_on_disconnect=body.on_disconnect != "continue")

    @router.post("/threads/{thread_id}/runs/wait")
    async def wait_run(thread_id: str, body: RunCreate) -> Response:
        """Start a run and answer the thread's values when it ends."""
        return await api.outcome_body(await api.start(thread_id, body))

    @router.post("/runs")
    async def create_stateless_run(body: RunCreate) -> Response:
        """Start a run on a fresh thread, in the background."""
        record = await api.start(None, body)
        location = f"{API_PREFIX}/threads/{record['thread_id']}/runs/{record['run_id']}"
        return _json(record, headers={"Content-Location": location})

    @router.post("/runs/stream")
    async def stream_stateless_run(body: RunCreate, request: Request) -> StreamingResponse:
        """Start a run on a fresh thread and stream its events."""
        record = await api.start(None, body)
        return api.stream(record, request, cancel_on_disconnect=body.on_disconnect != "continue")

    @router.post("/runs/wait")
    async def wait_stateless_run(body: RunCreate) -> Response:
        """Start a run on a fresh thread and answer its values when it ends."""
        return await api.outcome_body(await api.start(None, body))

    @router.get("/threads/{thread_id}/runs")
    async def list_runs(
        thread_id: str,
        limit: int = Query(10, ge=1, le=1000),
        offset: int = Query(0, ge=0),
        status: RunStatus | None = None,
    ) -> Response:
        """The thread's runs, newest first."""
        await api.require_thread(thread_id)
        return _json(await api.runs.list_runs(thread_id, limit=limit, offset=offset, status=status))

    @router.get("/threads/{thread_id}/runs/{run_id}")
    async def get_run(thread_id: str, run_id: str) -> Response:
        """The run's record."""
        return _json(await api.require_run(thread_id, run_id))

    @router.get("/threads/{thread_id}/runs/{run_id}/join")
    async def join_run(thread_id: str, run_id: str) -> Response:
        """Wait for the run to end; answer the thread's values."""
        return await api.outcome_body(await api.require_run(thread_id, run_id))

    @router.get("/threads/{thread_id}/runs/{run_id}/stream")
    async def join_stream(thread_id: str, run_id: str, request: Request) -> StreamingResponse:
        """The run's events from its first, then live, until it ends."""
        record = await api.require_run(thread_id, run_id)
        return api.stream(record, request, cancel_on_disconnect=False)

    @router.post("/threads/{thread_id}/runs/{run_id}/cancel", status_code=202)
    async def cancel_run(
        thread_id: str,
        run_id: str,
        wait: bool = Query(False),
        action: str = Query("interrupt"),
    ) -> Response:
        """Stop the run wherever it runs; with ``wait``, answer once it has stopped."""
        if action != "interrupt":
            raise HTTPException(422, "only action 'interrupt' is offered: the run stops and its checkpoints stay")
        await api.require_run(thread_id, run_id)
        await api.runs.cancel(run_id)
        if wait:
            await api.runs.wait(run_id)
            return _json(await api.require_run(thread_id, run_id))
        return Response(status_code=202)


def lg_routes(graph: CompiledStateGraph, runs: RunBackend, served_model: str) -> APIRouter:
    """The LangGraph Server API routes over ``graph``, under :data:`API_PREFIX`, with runs in ``runs``."""
    router = APIRouter(prefix=API_PREFIX, tags=["langgraph api"])
    api = _Api(graph, runs, served_model)
    _assistant_routes(router, api)
    _thread_routes(router, api)
    _run_routes(router, api)
    return router
