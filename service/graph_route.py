"""The whole graph as one served runnable, with threads and a checked input.

LangServe validates ``config.configurable`` against the runnable's ``config_specs`` and
silently drops keys it does not declare, so :class:`ThreadedAgent` declares
``thread_id``. A request naming another model than the loaded one (in its input or
its config) is refused with 422 rather than silently served by the loaded one. Each
run without a thread id gets a fresh one — per batch item, too,
so the items of one batch never share a thread.

:class:`TaskRequest` is the input schema LangServe validates and the playground draws
its form from; its validator applies :func:`graph.state.check_task_input`, so an
empty or oversized task is a 422 with the reason, before any run starts.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Self

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from langchain_core.runnables import Runnable, RunnableBinding, RunnableConfig
from langchain_core.runnables.utils import ConfigurableFieldSpec
from pydantic import BaseModel, Field, ValidationError, model_validator

from graph.runtime import new_thread_id
from graph.state import MAX_TASK_CHARS, check_task_input
from service.schemas import FormModel, OptionalInt, OptionalNumber, OptionalText
from service.thread_claims import ThreadClaims

__all__ = [
    "THREAD_ID_SPEC",
    "TaskRequest",
    "ThreadedAgent",
    "agent_config_modifier",
    "check_model_choice",
    "check_thread_id",
    "model_check_modifier",
]

THREAD_ID_SPEC = ConfigurableFieldSpec(
    id="thread_id",
    annotation=str,
    name="Thread ID",
    description="Checkpoint thread of the run (empty: a new one); reuse it to read or resume it.",
    default="",
)
_THREAD_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
PerRequestModifier = Callable[[dict[str, Any], Request], Awaitable[dict[str, Any]]]


class TaskRequest(FormModel):
    """A programming task in plain words, with optional hints and options."""

    task: str = Field(
        description=f"What the code must do, in plain words (at most {MAX_TASK_CHARS} characters).",
    )
    entry_point: OptionalText = Field(default=None, description="Name of the main function, if it matters.")
    user_tests: OptionalText = Field(default=None, description="pytest code the result must also pass.")
    max_iterations: OptionalInt = Field(
        default=None, ge=0, le=10, description="Refinements allowed after the first attempt."
    )
    min_score: OptionalNumber = Field(
        default=None,
        ge=0,
        le=10,
        description="Review score (0-10) a passing attempt needs to stop early.",
    )
    model: OptionalText = Field(
        default=None, description="Optional: the model to use; only the loaded model is served."
    )

    @model_validator(mode="after")
    def _a_task_that_can_start_a_run(self) -> Self:
        check_task_input(self.model_dump(exclude_none=True, exclude={"model"}))
        return self


def _fill_thread_id(config: RunnableConfig) -> RunnableConfig:
    if (config.get("configurable") or {}).get("thread_id"):
        return {}
    return {"configurable": {"thread_id": new_thread_id()}}


class ThreadedAgent(RunnableBinding):
    """The compiled graph, declaring ``thread_id`` and ``model`` as configurable fields.

    Build it with :meth:`wrap`; every call without a thread id gets a fresh one.
    """

    @classmethod
    def wrap(
        cls,
        graph: Runnable,
        *,
        callbacks: Sequence[Any] = (),
        max_concurrency: int | None = None,
    ) -> ThreadedAgent:
        """Wrap ``graph``; ``callbacks`` see every run, ``max_concurrency`` bounds a batch."""
        config: RunnableConfig = {}
        if callbacks:
            config["callbacks"] = list(callbacks)
        if max_concurrency is not None:
            config["max_concurrency"] = max_concurrency
        return cls(
            bound=graph,
            config=config,
            config_factories=[_fill_thread_id],
            custom_input_type=TaskRequest,
        )

    @property
    def config_specs(self) -> list[ConfigurableFieldSpec]:
        """The graph's own specs (less the checkpoint keys a client must not set) and ours."""
        hidden = {THREAD_ID_SPEC.id, "checkpoint_id", "checkpoint_ns", "checkpoint_map"}
        return [*(s for s in self.bound.config_specs if s.id not in hidden), THREAD_ID_SPEC]


def check_thread_id(thread_id: object) -> str:
    """Return ``thread_id`` if it is safe (letters, digits, ``_.:-``; at most 128), else 422."""
    if not isinstance(thread_id, str) or not _THREAD_ID.match(thread_id):
        raise HTTPException(422, "'thread_id' must be 1-128 characters of letters, digits, '_', '.', ':' or '-'")
    return thread_id


def check_model_choice(served: str, *named: object) -> None:
    """Refuse (422) a request that names a model other than the one this server loaded."""
    for name in named:
        if name in (None, "") or name == served:
            continue
        raise HTTPException(422, f"model {str(name)[:100]!r} is not served here; this server runs {served!r}")


def _named_models(body: object) -> list[object]:
    """Every model a LangServe request body names: in its input(s) and its config(s).

    Read from the raw body because LangServe drops configurable keys the runnable
    does not declare before any hook sees them.
    """
    if not isinstance(body, dict):
        return []
    inputs = body["inputs"] if isinstance(body.get("inputs"), list) else [body.get("input")]
    configs = body["config"] if isinstance(body.get("config"), list) else [body.get("config")]
    named = [item.get("model") for item in inputs if isinstance(item, dict)]
    for config in configs:
        configurable = config.get("configurable") if isinstance(config, dict) else None
        if isinstance(configurable, dict):
            named.append(configurable.get("model"))
    return named


async def _body_of(request: Request) -> object:
    try:
        return await request.json()  # cached by Starlette: LangServe has parsed it already
    except ValueError:
        return None


def _check_batch_inputs(body: object, input_type: type[BaseModel]) -> None:
    """Validate every input of a batch up front (LangServe 0.3.3 answers 500 otherwise)."""
    inputs = body.get("inputs") if isinstance(body, dict) else None
    if not isinstance(inputs, list):
        return
    errors: list[Any] = []
    for index, item in enumerate(inputs):
        try:
            input_type.model_validate(item)
        except ValidationError as exc:
            errors.extend({**error, "loc": ("inputs", index, *error["loc"])} for error in exc.errors())
    if errors:
        raise RequestValidationError(errors)


def model_check_modifier(served: str, input_type: type[BaseModel] | None = None) -> PerRequestModifier:
    """A LangServe ``per_req_config_modifier`` that refuses requests naming another model.

    With ``input_type``, a batch's inputs are validated here too, so a bad item is a
    422 rather than an error in the middle of the batch.
    """

    async def modify(config: dict[str, Any], request: Request) -> dict[str, Any]:
        body = await _body_of(request)
        check_model_choice(served, *_named_models(body))
        if input_type is not None and request.url.path.rstrip("/").endswith("/batch"):
            _check_batch_inputs(body, input_type)
        return config

    return modify


def _shared_batch_config(body: object) -> bool:
    """Whether a batch gives one config (a dict) to more than one input."""
    return (
        isinstance(body, dict)
        and isinstance(body.get("config"), dict)
        and isinstance(body.get("inputs"), list)
        and len(body["inputs"]) > 1
    )


def agent_config_modifier(served: str, claims: ThreadClaims) -> PerRequestModifier:
    """The ``per_req_config_modifier`` of ``/agent``: check the model, settle the thread id.

    The thread id comes from ``config.configurable.thread_id``, else the ``X-Thread-Id``
    header, else a fresh one; it is echoed in the ``X-Thread-Id`` response header.
    A batch without ids is left alone so that each item gets its own thread; one
    thread id shared by several items of a batch is refused (422). The run claims its
    thread in ``claims``: a second run on a thread already running is a 409.
    """
    check_model = model_check_modifier(served, TaskRequest)

    async def modify(config: dict[str, Any], request: Request) -> dict[str, Any]:
        config = await check_model(config, request)
        configurable = dict(config.get("configurable") or {})
        is_batch = request.url.path.rstrip("/").endswith("/batch")
        thread_id = configurable.get("thread_id") or (None if is_batch else request.headers.get("x-thread-id"))
        if thread_id:
            check_thread_id(thread_id)
            if is_batch and _shared_batch_config(await _body_of(request)):
                raise HTTPException(422, "the inputs of a batch cannot share one thread_id; give each its own config")
        elif not is_batch:
            thread_id = new_thread_id()
        if thread_id:
            configurable["thread_id"] = thread_id
            claims.claim_for_request(request.state, thread_id, report=not is_batch)
        return {**config, "configurable": configurable}

    return modify
