"""Routes over a thread's checkpoints: read its state and history, resume it, replay it.

- ``GET  /threads/{thread_id}/state`` — the latest checkpoint: values and next nodes.
- ``GET  /threads/{thread_id}/history`` — checkpoints newest first (``limit``, and
  ``values=true`` to include each one's full values).
- ``POST /threads/{thread_id}/resume`` — continue an interrupted run where it stopped.
- ``POST /threads/{thread_id}/replay`` — run again from an earlier checkpoint
  (``{"checkpoint_id": ...}``); the new steps fork from it, the old ones stay.

A thread runs one run at a time: resuming or replaying a thread while a run on it is in
progress is a 409 (see :mod:`service.thread_claims`). Resuming repeats the node that was
interrupted; nodes are written to be safe to run twice. Ids from a client are checked
and only ever used as lookup keys.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query
from langchain_core.runnables import Runnable, RunnableConfig
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import StateSnapshot
from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import TypedDict

from service.graph_route import check_thread_id
from service.thread_claims import ThreadClaims

__all__ = ["CheckpointSummary", "ReplayRequest", "ThreadState", "thread_routes"]


class ThreadState(TypedDict):
    """A thread's latest checkpoint."""

    thread_id: str
    checkpoint_id: str | None
    created_at: str | None
    step: int | None
    next: list[str]
    finished: bool
    values: dict[str, Any]


class CheckpointSummary(TypedDict, total=False):
    """One checkpoint of a thread's history."""

    checkpoint_id: str
    parent_checkpoint_id: str | None
    created_at: str | None
    step: int | None
    source: str | None
    next: list[str]
    values: dict[str, Any]


class ReplayRequest(BaseModel):
    """Which checkpoint to run again from."""

    model_config = ConfigDict(extra="forbid")

    checkpoint_id: str = Field(min_length=1, max_length=128, description="An id from the thread's history.")


def _checkpoint_id(config: RunnableConfig | None) -> str | None:
    return ((config or {}).get("configurable") or {}).get("checkpoint_id")


def _summary(snapshot: StateSnapshot, with_values: bool) -> CheckpointSummary:
    metadata = snapshot.metadata or {}
    summary = CheckpointSummary(
        checkpoint_id=_checkpoint_id(snapshot.config) or "",
        parent_checkpoint_id=_checkpoint_id(snapshot.parent_config),
        created_at=snapshot.created_at,
        step=metadata.get("step"),
        source=metadata.get("source"),
        next=list(snapshot.next),
    )
    if with_values:
        summary["values"] = dict(snapshot.values)
    return summary


def thread_routes(graph: CompiledStateGraph, runner: Runnable, claims: ThreadClaims) -> APIRouter:
    """Routes over ``graph``'s checkpoints; runs continue through ``runner`` (the served agent).

    Resuming or replaying a thread that has a run in progress (in ``claims``) is a 409.
    """
    router = APIRouter(prefix="/threads", tags=["threads"])

    async def latest(thread_id: str) -> StateSnapshot:
        check_thread_id(thread_id)
        snapshot = await graph.aget_state({"configurable": {"thread_id": thread_id}})
        if snapshot.created_at is None:
            raise HTTPException(404, f"no thread {thread_id!r} here")
        return snapshot

    @router.get("/{thread_id}/state")
    async def thread_state(thread_id: str) -> ThreadState:
        """The thread's latest checkpoint."""
        snapshot = await latest(thread_id)
        return ThreadState(
            thread_id=thread_id,
            checkpoint_id=_checkpoint_id(snapshot.config),
            created_at=snapshot.created_at,
            step=(snapshot.metadata or {}).get("step"),
            next=list(snapshot.next),
            finished=not snapshot.next,
            values=dict(snapshot.values),
        )

    @router.get("/{thread_id}/history")
    async def thread_history(
        thread_id: str,
        limit: int = Query(50, ge=1, le=500, description="Most checkpoints to return, newest first."),
        values: bool = Query(False, description="Include each checkpoint's full values."),
    ) -> list[CheckpointSummary]:
        """The thread's checkpoints, newest first."""
        await latest(thread_id)
        config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
        return [_summary(s, values) async for s in graph.aget_state_history(config, limit=limit)]

    @router.post("/{thread_id}/resume")
    async def resume_thread(thread_id: str) -> dict[str, Any]:
        """Continue the thread from its latest checkpoint; 409 when it already finished."""
        snapshot = await latest(thread_id)
        if not snapshot.next:
            raise HTTPException(409, f"thread {thread_id!r} has finished; replay a checkpoint to run it again")
        with claims.holding(thread_id):
            output = await runner.ainvoke(None, {"configurable": {"thread_id": thread_id}})
        return {"thread_id": thread_id, "resumed_at": list(snapshot.next), "output": output}

    @router.post("/{thread_id}/replay")
    async def replay_thread(thread_id: str, request: ReplayRequest) -> dict[str, Any]:
        """Run the thread again from ``checkpoint_id``; the new steps fork from it."""
        await latest(thread_id)
        config: RunnableConfig = {"configurable": {"thread_id": thread_id, "checkpoint_id": request.checkpoint_id}}
        snapshot = await graph.aget_state(config)
        if snapshot.created_at is None:
            raise HTTPException(404, f"thread {thread_id!r} has no checkpoint {request.checkpoint_id!r}")
        if not snapshot.next:
            raise HTTPException(409, "that checkpoint is the end of a run: nothing is left to replay from it")
        with claims.holding(thread_id):
            output = await runner.ainvoke(None, config)
        return {
            "thread_id": thread_id,
            "replayed_from": request.checkpoint_id,
            "replayed_nodes": list(snapshot.next),
            "output": output,
        }

    return router
