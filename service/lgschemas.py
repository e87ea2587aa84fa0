"""The shapes of the LangGraph Server API subset served here, as the official clients send them.

Request bodies are the ones ``langgraph_sdk`` posts (it drops ``None`` fields before
sending); records are the ``Thread``, ``Run`` and ``Assistant`` dicts of
``langgraph_sdk.schema``. Options this server does not offer (webhooks, delayed runs,
``command`` resumes, the ``rollback`` strategy, the ``events`` stream mode) are refused
with 422 rather than silently ignored.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from typing_extensions import TypedDict

__all__ = [
    "AssistantRecord",
    "AssistantSearch",
    "HistoryRequest",
    "MultitaskStrategy",
    "RunCreate",
    "RunRecord",
    "RunStatus",
    "StateRequest",
    "StreamMode",
    "ThreadCreate",
    "ThreadRecord",
    "TERMINAL_STATUSES",
]

RunStatus = Literal["pending", "running", "error", "success", "timeout", "interrupted"]
TERMINAL_STATUSES = frozenset({"error", "success", "timeout", "interrupted"})
MultitaskStrategy = Literal["reject", "enqueue", "interrupt"]
# What a client may ask for; ``messages-tuple`` is what ``RemoteGraph`` sends for "messages".
StreamMode = Literal["values", "updates", "messages", "messages-tuple", "custom", "debug", "tasks", "checkpoints"]
_UNSUPPORTED_STREAM_MODES = {"events": "'events' is not served here; use 'messages' for tokens"}


class _Body(BaseModel):
    """A request body: fields the clients send but that change nothing here are ignored."""

    model_config = ConfigDict(extra="ignore")


class RunCreate(_Body):
    """``POST /threads/{id}/runs[/stream|/wait]`` and ``POST /runs[/stream|/wait]``."""

    assistant_id: str = Field(min_length=1, max_length=128)
    input: dict[str, Any] | None = Field(default=None, description="The task; null continues the thread.")
    config: dict[str, Any] | None = Field(
        default=None,
        description="'configurable' may choose the run's settings (see graph.config.REQUEST_FIELDS); "
        "its thread and checkpoint keys are the server's.",
    )
    context: dict[str, Any] | None = Field(
        default=None, description="The run's settings (see graph.config.REQUEST_FIELDS); they win over 'config'."
    )
    metadata: dict[str, Any] | None = None
    stream_mode: StreamMode | list[StreamMode] = "values"
    stream_subgraphs: bool = False
    interrupt_before: Literal["*"] | list[str] | None = None
    interrupt_after: Literal["*"] | list[str] | None = None
    checkpoint_id: str | None = Field(default=None, max_length=128)
    checkpoint: dict[str, Any] | None = None
    multitask_strategy: MultitaskStrategy | Literal["rollback"] = "reject"
    if_not_exists: Literal["create", "reject"] = "reject"
    on_disconnect: Literal["cancel", "continue"] | None = None
    on_completion: Literal["delete", "keep"] | None = None
    # Offered by the LangGraph Platform, refused here (see the validators).
    command: dict[str, Any] | None = None
    webhook: str | None = None
    after_seconds: float | None = None

    @field_validator("stream_mode", mode="before")
    @classmethod
    def _served_modes(cls, value: object) -> object:
        for mode in value if isinstance(value, list) else [value]:
            if mode in _UNSUPPORTED_STREAM_MODES:
                raise ValueError(_UNSUPPORTED_STREAM_MODES[str(mode)])
        return value

    @field_validator("multitask_strategy")
    @classmethod
    def _no_rollback(cls, value: str) -> str:
        if value == "rollback":
            raise ValueError("'rollback' is not offered here; use 'reject', 'enqueue' or 'interrupt'")
        return value

    @field_validator("command", "webhook", "after_seconds")
    @classmethod
    def _not_offered(cls, value: object) -> object:
        if value is not None:
            raise ValueError("not offered by this server (no command resumes, webhooks or delayed runs)")
        return value

    def modes(self) -> list[str]:
        """The requested stream modes, in order, without repeats."""
        modes = self.stream_mode if isinstance(self.stream_mode, list) else [self.stream_mode]
        return list(dict.fromkeys(modes))

    def start_checkpoint(self) -> str | None:
        """The checkpoint to fork from, given as ``checkpoint_id`` or ``checkpoint.checkpoint_id``."""
        nested = (self.checkpoint or {}).get("checkpoint_id")
        return self.checkpoint_id or (str(nested) if nested else None)


class ThreadCreate(_Body):
    """``POST /threads``."""

    thread_id: str | None = None
    metadata: dict[str, Any] | None = None
    if_exists: Literal["raise", "do_nothing"] = "raise"


class HistoryRequest(_Body):
    """``POST /threads/{id}/history``; the metadata filter is not offered (never passed to the checkpointer)."""

    limit: int = Field(default=10, ge=1, le=1000)
    before: str | dict[str, Any] | None = None

    def before_checkpoint(self) -> str | None:
        """The checkpoint id the history must start before, in either shape the clients send."""
        if isinstance(self.before, str):
            return self.before or None
        if isinstance(self.before, dict):
            inner = self.before.get("configurable", self.before)
            found = inner.get("checkpoint_id") if isinstance(inner, dict) else None
            return str(found) if found else None
        return None


class StateRequest(_Body):
    """``POST /threads/{id}/state/checkpoint``: a checkpoint named by its config."""

    checkpoint: dict[str, Any] = Field(default_factory=dict)
    subgraphs: bool = False

    def checkpoint_id(self) -> str | None:
        """The checkpoint id named, if any."""
        found = self.checkpoint.get("checkpoint_id")
        return str(found) if found else None


class AssistantSearch(_Body):
    """``POST /assistants/search``."""

    graph_id: str | None = None
    name: str | None = None
    limit: int = Field(default=10, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)


class ThreadRecord(TypedDict):
    """A thread as ``langgraph_sdk.schema.Thread`` describes it."""

    thread_id: str
    created_at: str
    updated_at: str
    metadata: dict[str, Any]
    status: Literal["idle", "busy", "interrupted", "error"]
    values: dict[str, Any]
    interrupts: dict[str, Any]


class RunRecord(TypedDict):
    """A run as ``langgraph_sdk.schema.Run`` describes it."""

    run_id: str
    thread_id: str
    assistant_id: str
    created_at: str
    updated_at: str
    status: RunStatus
    metadata: dict[str, Any]
    multitask_strategy: MultitaskStrategy


class AssistantRecord(TypedDict):
    """The one assistant of the served graph, as ``langgraph_sdk.schema.Assistant``."""

    assistant_id: str
    graph_id: str
    config: dict[str, Any]
    context: dict[str, Any]
    created_at: str
    updated_at: str
    metadata: dict[str, Any]
    version: int
    name: str
    description: str | None
