"""The HTTP server: FastAPI + LangServe routes and their wiring, and nothing that holds logic.

Routes (each LangServe path has ``invoke``, ``batch``, ``stream``, ``stream_log``,
``stream_events``, ``input_schema``, ``output_schema``, ``config_schema`` and
``playground/``):

- ``/agent`` — the whole graph; ``config.configurable.thread_id`` picks the thread.
- ``/agents/{generate,refine,validate,review,pep8,coverage,complexity}`` — single agents.
- ``/threads/{id}/state``, ``/threads/{id}/history``, ``POST /threads/{id}/resume``,
  ``POST /threads/{id}/replay`` — a thread's checkpoints.
- ``/lg/...`` — the LangGraph Server API (assistants, threads, runs) for ``RemoteGraph``
  and ``langgraph_sdk`` (see :mod:`service.lgapi`).
- ``GET /health``, ``GET /stats``, ``GET /graph?format=mermaid|ascii|png``.

The logic lives in :mod:`service`: the served graph, the single agents, one run at a
time per thread, the limits, rate limits and API keys, the refusal to serve a public
address without a key, the counters; and in :mod:`graph.checkpoint`, the checkpointer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Annotated

import uvicorn
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from langgraph.checkpoint.base import BaseCheckpointSaver
from langserve import add_routes
from starlette.concurrency import run_in_threadpool

from graph import InvalidTaskError, ModelProvider, Settings, build_graph
from graph.checkpoint import checkpointer_kind, open_async_checkpointer
from graph.picture import GraphPictureError, PictureFormat, draw_graph
from service.agent_routes import AGENT_NAMES, agent_runnables
from service.brokerruns import BrokerRuns
from service.exposure import check_exposure, warn_if_insecure
from service.graph_route import ThreadedAgent, agent_config_modifier, model_check_modifier
from service.info import (
    Health,
    model_info,
    package_version,
    sandbox_tier,
)
from service.jobs import QueueSettings
from service.lgapi import is_rated_request, is_served_run_request, lg_routes
from service.limits import ServiceLimits, api_keys_from_env
from service.localruns import LocalRuns
from service.middleware import (
    ApiKeyMiddleware,
    BodyLimitMiddleware,
    ErrorResponseMiddleware,
    RunLimitMiddleware,
    RunSlots,
)
from service.ratelimit import RateLimitMiddleware
from service.stats import RunStats, StatsSnapshot
from service.thread_claims import ThreadClaimMiddleware, ThreadClaims
from service.threads import thread_routes

__all__ = ["create_app", "serve"]

logger = logging.getLogger(__name__)

# Open connections uvicorn accepts before it answers 503 (each one costs memory).
MAX_CONNECTIONS = 64


def create_app(
    model: ModelProvider,
    *,
    checkpointer: str | BaseCheckpointSaver | None = None,
    settings: Settings | None = None,
    api_keys: Sequence[str] | None = None,
    limits: ServiceLimits | None = None,
    host: str = "127.0.0.1",
    insecure: bool = False,
    queue: QueueSettings | None = None,
) -> FastAPI:
    """Build the app around an already loaded ``model``, to be served on ``host``.

    ``checkpointer``: an async checkpointer, or what to open at start-up (``None`` for
    the default SQLite file, ``"memory"``, a SQLite path, a ``postgres://`` URL).
    ``api_keys`` (default: the comma-separated ``$STARCODER_API_KEY``): when given,
    every route demands one of them. Raises ``service.exposure.InsecureServerError``
    for a public ``host`` without keys, unless ``insecure`` accepts the risk.
    ``queue`` (default: from ``$STARCODER_BROKER_URL`` and friends): with a broker, the
    ``/lg`` runs go to workers (``starcoder-agents worker``), which needs a PostgreSQL
    ``checkpointer`` URL they share; without one, they run in this process.
    """
    settings = settings or Settings()
    limits = limits or ServiceLimits()
    api_keys = tuple(api_keys) if api_keys is not None else api_keys_from_env()
    exposure = check_exposure(host, api_key_set=bool(api_keys), insecure=insecure)
    queue = queue or QueueSettings()
    stats = RunStats()
    slots = RunSlots()
    claims = ThreadClaims()  # one run at a time per thread, whichever route runs it
    gate = asyncio.Semaphore(limits.max_running)  # the run slots, shared by both APIs
    graph = build_graph(model, settings=settings)  # the checkpointer is attached at start-up
    agent = ThreadedAgent.wrap(graph, callbacks=[stats], max_concurrency=limits.max_running)
    runs: LocalRuns | BrokerRuns = (
        BrokerRuns(queue, checkpointer)
        if queue.enabled
        else LocalRuns(
            graph,
            claims=claims,
            slots=slots,
            gate=gate,
            max_running=limits.max_running,
            max_queued=limits.max_queued,
            callbacks=[stats],
        )
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            saver = await stack.enter_async_context(open_async_checkpointer(checkpointer))
            # LangServe needs the graph (for its schemas) when the routes are added; an
            # async checkpointer can only open inside the server's event loop, so it is
            # attached to the compiled graph here, before the first request.
            graph.checkpointer = saver
            await stack.enter_async_context(runs.opened())
            app.state.checkpointer_kind = checkpointer_kind(saver)
            # Detected once: the tier does not change while the server runs.
            app.state.sandbox_tier = await run_in_threadpool(sandbox_tier)
            logger.info("serving model %s with %s checkpoints", model.name, app.state.checkpointer_kind)
            warn_if_insecure(exposure)
            yield

    app = FastAPI(
        title="starcoder-agents",
        version=package_version(),
        description="Turns a programming task in plain words into tested, reviewed Python code.",
        lifespan=lifespan,
    )

    add_routes(app, agent, path="/agent", per_req_config_modifier=agent_config_modifier(model.name, claims))
    for name, runnable in agent_runnables(model, settings, stats=stats, max_concurrency=limits.max_running).items():
        modifier = model_check_modifier(model.name, runnable.InputType)
        add_routes(app, runnable, path=f"/agents/{name}", per_req_config_modifier=modifier)
    app.include_router(thread_routes(graph, agent, claims))
    app.include_router(lg_routes(graph, runs, model.name))

    @app.get("/health", tags=["server"])
    async def health(request: Request) -> Health:
        """Whether the server is up, who may use it, which model and sandbox tier it runs, its load.

        ``auth``: what a client needs (``insecure`` is true when anyone who reaches a
        public address can run code here); ``runs_refused``: runs answered 429 because
        the server was busy; ``runs_rate_limited``: runs answered 429 because their
        client had spent its rate; ``runs_abandoned``: runs whose client left while they
        waited for a slot (they never started).
        """
        return Health(
            status="ok",
            version=package_version(),
            auth=exposure.auth,
            insecure=exposure.insecure,
            model=model_info(model),
            sandbox=request.app.state.sandbox_tier,
            checkpointer=getattr(request.app.state, "checkpointer_kind", "not open"),
            runs_running=slots.running,
            runs_queued=slots.queued,
            runs_refused=slots.rejected,
            runs_rate_limited=slots.rate_limited,
            runs_abandoned=slots.abandoned,
        )

    @app.get("/stats", tags=["server"])
    async def run_stats() -> StatsSnapshot:
        """Runs, pass rate, mean iterations, per-node latency and tokens of finished runs."""
        return stats.snapshot()

    @app.get("/graph", tags=["server"], response_model=None)
    async def graph_picture(
        format: Annotated[PictureFormat, Query(description="Picture format.")] = "mermaid",
    ) -> Response:
        """The graph as Mermaid text, ASCII art, or a PNG image; drawn offline."""
        try:
            picture = await run_in_threadpool(draw_graph, graph, format)
        except GraphPictureError as exc:
            raise HTTPException(501, str(exc)) from exc
        if isinstance(picture, bytes):
            return Response(picture, media_type="image/png")
        return PlainTextResponse(picture)

    @app.get("/", tags=["server"])
    async def index() -> dict[str, object]:
        """Where things are."""
        return {
            "playground": "/agent/playground/",
            "agent": "/agent/invoke",
            "agents": [f"/agents/{name}/playground/" for name in AGENT_NAMES],
            "threads": "/threads/{thread_id}/state",
            "langgraph_api": "/lg (RemoteGraph and langgraph_sdk base URL)",
            "docs": "/docs",
        }

    @app.exception_handler(InvalidTaskError)
    async def invalid_task(request: Request, exc: InvalidTaskError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    # The last added is the outermost: the key, then the client's rate, before a body is read.
    app.add_middleware(ErrorResponseMiddleware)
    app.add_middleware(ThreadClaimMiddleware, claims=claims)
    app.add_middleware(
        RunLimitMiddleware,
        max_running=limits.max_running,
        max_queued=limits.max_queued,
        queue_timeout_s=limits.queue_timeout_s,
        slots=slots,
        is_run=is_served_run_request,
        gate=gate,
    )
    app.add_middleware(
        BodyLimitMiddleware,
        max_body_bytes=limits.max_body_bytes,
        max_batch_size=limits.max_batch_size,
    )
    app.add_middleware(
        RateLimitMiddleware,
        per_minute=limits.rate_per_minute,
        burst=limits.rate_burst,
        slots=slots,
        is_run=is_rated_request,
    )
    if api_keys:
        app.add_middleware(ApiKeyMiddleware, api_keys=api_keys)
    return app


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    model: str | None = None,
    checkpointer: str | None = None,
    insecure: bool = False,
    broker: str | None = None,
) -> None:
    """Load ``model`` once, open the checkpointer, and serve until interrupted.

    ``broker`` (default ``$STARCODER_BROKER_URL``): send the ``/lg`` runs to workers.

    Raises ``service.exposure.InsecureServerError`` (before loading anything) for a
    public ``host`` without an API key unless ``insecure``; ``llms.ModelLoadError``
    when the model cannot load; the server exits when the checkpointer cannot open.
    """
    from llms import load_model

    check_exposure(host, api_key_set=bool(api_keys_from_env()), insecure=insecure)
    loaded = load_model(model)
    logger.info("loaded model %s (%s)", loaded.name, getattr(loaded, "engine", "?"))
    queue = QueueSettings(broker_url=broker) if broker else None
    app = create_app(loaded, checkpointer=checkpointer, host=host, insecure=insecure, queue=queue)
    uvicorn.run(app, host=host, port=port, limit_concurrency=MAX_CONNECTIONS, log_level="info")
