"""Runs of the LangGraph Server API: how one executes, and what it streams.

:func:`execute_run` drives the compiled graph for one run and publishes each chunk as
a named event, in the encoding the LangGraph clients read: ``values`` and ``updates``
as they come, ``messages`` (``messages-tuple``: ``[chunk, metadata]``) or
``messages/metadata`` + ``messages/partial`` (``messages``: the message so far), and a
last ``error`` event when the run fails. The same function runs inside the API
process (:mod:`service.localruns`) and inside a worker behind a broker, so a run
streams the same wherever it runs.

A run gets the settings its request chose, as a run of ``/agent`` does: the
:data:`graph.config.REQUEST_FIELDS` found in ``config.configurable``, and the run's
``context`` (whose choices win); the graph resolves them once, as the run starts
(:class:`graph.builder.LoopGraph`). Nothing else of the request's ``configurable``
reaches the graph: the thread and the checkpoint are the server's to name. The request
travels whole with the run (to a worker, in the run's record), so a run on a worker,
or started again there, gets the same settings.

Every checkpoint is written before the next step (``durability="sync"``) and carries
the run id in its metadata, so a run that is started again after its process died
(see :mod:`service.worker`) continues from its last checkpoint instead of starting over.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from langchain_core.messages import BaseMessageChunk
from langgraph.graph.state import CompiledStateGraph
from pydantic import BaseModel

from graph.config import REQUEST_FIELDS
from graph.state import check_task_input
from service.lgschemas import RunCreate, RunRecord, RunStatus

__all__ = [
    "Publish",
    "RunOutcome",
    "encode_event",
    "execute_run",
    "new_run_record",
    "now_iso",
    "request_configurable",
    "to_json",
]

logger = logging.getLogger(__name__)

Publish = Callable[[str, str], Awaitable[None]]  # event name, JSON text


def now_iso() -> str:
    """The current time as the ISO 8601 text the clients parse."""
    return datetime.now(UTC).isoformat()


def _json_default(value: object) -> object:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return repr(value)  # a callback or another live object in metadata: name it, never fail the stream


def to_json(value: object) -> str:
    """``value`` as JSON text; objects JSON cannot hold become their ``repr``."""
    return json.dumps(value, default=_json_default, ensure_ascii=False)


def new_run_record(thread_id: str, body: RunCreate, assistant_id: str) -> RunRecord:
    """A fresh ``pending`` run record for ``body`` on ``thread_id``."""
    stamp = now_iso()
    return RunRecord(
        run_id=str(uuid.uuid4()),
        thread_id=thread_id,
        assistant_id=assistant_id,
        created_at=stamp,
        updated_at=stamp,
        status="pending",
        metadata=dict(body.metadata or {}),
        multitask_strategy="reject" if body.multitask_strategy == "rollback" else body.multitask_strategy,
    )


def request_configurable(body: RunCreate) -> dict[str, Any]:
    """The settings ``body`` chose in ``config.configurable``: only those a request may set.

    ``thread_id``, checkpoint keys, ``results_dir`` and anything else in there are left
    out (a ``configurable`` that is not an object chooses nothing; the request check
    refuses it before a run starts).
    """
    configurable = (body.config or {}).get("configurable")
    if not isinstance(configurable, dict):
        return {}
    return {name: configurable[name] for name in REQUEST_FIELDS if configurable.get(name) is not None}


@dataclasses.dataclass
class _MessageStream:
    """Per-run memory for the ``messages`` mode: the text of each message so far."""

    partial: dict[str, Any] = dataclasses.field(default_factory=dict)

    def events(self, message: Any, metadata: dict[str, Any]) -> Iterator[tuple[str, Any]]:
        key = str(getattr(message, "id", None) or id(message))
        if key not in self.partial:
            self.partial[key] = message
            yield "messages/metadata", {key: {"metadata": metadata}}
        elif isinstance(message, BaseMessageChunk) and isinstance(self.partial[key], BaseMessageChunk):
            self.partial[key] = self.partial[key] + message
        else:
            self.partial[key] = message
        yield "messages/partial", [self.partial[key]]


def encode_event(
    mode: str, chunk: Any, requested: Sequence[str], messages: _MessageStream | None = None
) -> Iterator[tuple[str, Any]]:
    """The client events for one ``(mode, chunk)`` of ``graph.astream``, for the ``requested`` modes."""
    if mode != "messages":
        if mode in requested:
            yield mode, chunk
        return
    message, metadata = chunk
    if "messages-tuple" in requested:
        yield "messages", [message, metadata]
    if "messages" in requested:
        yield from (messages or _MessageStream()).events(message, metadata)


def _graph_modes(requested: Sequence[str]) -> list[str]:
    """The modes to ask ``graph.astream`` for: both message encodings come from its ``messages``."""
    native = ["messages" if mode == "messages-tuple" else mode for mode in requested]
    return list(dict.fromkeys(native))


@dataclasses.dataclass(frozen=True)
class RunOutcome:
    """How a run ended: its status and, for an error, what went wrong."""

    status: RunStatus
    error: dict[str, str] | None = None


async def execute_run(
    graph: CompiledStateGraph,
    run: RunRecord,
    body: RunCreate,
    publish: Publish,
    *,
    callbacks: Sequence[Any] = (),
    resume: bool = False,
    reraise: tuple[type[BaseException], ...] = (),
) -> RunOutcome:
    """Run ``body`` on ``run``'s thread through ``graph``, with the settings it chose, publishing each event.

    A failure of the run is its outcome (``error``, with a last ``error`` event);
    only cancellation and the ``reraise`` exceptions (the infrastructure failing, not
    the run) propagate. ``resume``: the run checkpointed before and continues from its
    last checkpoint.
    """
    configurable: dict[str, Any] = {**request_configurable(body), "thread_id": run["thread_id"]}
    checkpoint_id = body.start_checkpoint()
    if checkpoint_id and not resume:
        configurable["checkpoint_id"] = checkpoint_id
    config: dict[str, Any] = {
        "configurable": configurable,
        "metadata": {"run_id": run["run_id"], "assistant_id": run["assistant_id"]},
        "callbacks": list(callbacks),
    }
    payload = None if resume or body.input is None else check_task_input(body.input)
    requested = body.modes()
    messages = _MessageStream()
    try:
        async for mode, chunk in graph.astream(  # type: ignore[call-overload]  # modes are checked by RunCreate
            payload,
            config,
            context=body.context,
            stream_mode=_graph_modes(requested),
            interrupt_before=body.interrupt_before,
            interrupt_after=body.interrupt_after,
            durability="sync",
        ):
            for event, data in encode_event(mode, chunk, requested, messages):
                await publish(event, to_json(data))
    except reraise:
        raise
    except Exception as exc:  # the run's failure is its result, streamed to the client
        logger.warning("run %s failed: %s: %s", run["run_id"], type(exc).__name__, exc)
        error = {"error": type(exc).__name__, "message": str(exc)[:2000]}
        await publish("error", to_json(error))
        return RunOutcome("error", error)
    return RunOutcome("success")
