"""LangChain chat models over the engines: one role's settings bound, tokens streamed.

:class:`EngineChatModel` is a thin ``BaseChatModel`` around a local engine rather than
``ChatHuggingFace(llm=HuggingFacePipeline(...))``: that pair cannot stop at a role's
stop rule while generating (a pipeline takes only fixed stop strings, and a fence opens
and closes with the same string), its ``ainvoke``/``astream`` raise on local pipelines,
and its ``batch`` runs calls one by one, where the engine here batches them in one
``generate``. The same adapter serves the transformers and the llama.cpp engines, so
both share the prompts, stop rules and metadata.

:class:`StopRuleChatModel` gives any other chat model (a remote endpoint) the same
stop rules by reading its token stream and closing it once the answer is complete.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel, generate_from_stream
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import ConfigDict, Field

from llms.engines.base import AnswerTracker, Completion, Engine
from llms.presets import RoleSettings
from llms.prompting import to_chat_messages

__all__ = ["EngineChatModel", "StopRuleChatModel"]

_OVERRIDABLE = ("max_new_tokens", "temperature", "top_p", "seed")


def _settings_with(settings: RoleSettings, kwargs: dict[str, Any]) -> RoleSettings:
    """Apply per-call overrides (``max_new_tokens``, ``max_tokens``, ``temperature``, ``stop_rule``...)."""
    changes = {k: kwargs[k] for k in _OVERRIDABLE if kwargs.get(k) is not None}
    if kwargs.get("max_tokens") is not None:
        changes["max_new_tokens"] = int(kwargs["max_tokens"])
    if "stop_rule" in kwargs:  # None turns the role's early stop off (for measuring it)
        changes["stop"] = kwargs["stop_rule"]
    return replace(settings, **changes) if changes else settings


def _usage(input_tokens: int, output_tokens: int) -> UsageMetadata:
    return UsageMetadata(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=input_tokens + output_tokens,
    )


def _cut_at_stop_strings(text: str, stop: list[str] | None) -> str:
    for marker in stop or ():
        index = text.find(marker)
        if index >= 0:
            text = text[:index]
    return text


class EngineChatModel(BaseChatModel):
    """A chat model over a local engine with one role's generation settings."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    engine: Any = Field(exclude=True)
    """The :class:`~llms.engines.base.Engine` that generates."""
    settings: RoleSettings
    model_name: str

    @property
    def _llm_type(self) -> str:
        return f"starcoder-agents-{self.engine.engine}"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name, "engine": self.engine.engine, **vars(self.settings)}

    def _metadata(self, done: Completion) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "engine": self.engine.engine,
            "generation_seconds": round(done.seconds, 4),
            "tokens_per_s": round(done.output_tokens / done.seconds, 2) if done.seconds else 0.0,
            "finish_reason": done.finish_reason,
        }

    def _run(self, messages: list[BaseMessage], kwargs: dict[str, Any]) -> Iterator[str | Completion]:
        engine: Engine = self.engine
        return engine.stream(to_chat_messages(messages), _settings_with(self.settings, kwargs))

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        done: Completion | None = None
        for event in self._run(messages, kwargs):
            if isinstance(event, Completion):
                done = event
        if done is None:  # pragma: no cover - every engine ends with a Completion
            raise RuntimeError(f"{self.model_name}: the engine ended without a result")
        message = AIMessage(
            content=_cut_at_stop_strings(done.text, stop),
            usage_metadata=_usage(done.input_tokens, done.output_tokens),
            response_metadata=self._metadata(done),
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for event in self._run(messages, kwargs):
            if isinstance(event, Completion):
                # Usage and metadata ride only on the last chunk: merging chunks adds
                # usage and concatenates metadata strings.
                last = AIMessageChunk(
                    content="",
                    usage_metadata=_usage(event.input_tokens, event.output_tokens),
                    response_metadata=self._metadata(event),
                    chunk_position="last",
                )
                yield ChatGenerationChunk(message=last)
                return
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=event))
            if run_manager:
                run_manager.on_llm_new_token(event, chunk=chunk)
            yield chunk


class StopRuleChatModel(BaseChatModel):
    """Applies a role's stop rule to another chat model by cutting its token stream short."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    inner: BaseChatModel
    settings: RoleSettings
    model_name: str
    engine_name: str = "endpoint"

    @property
    def _llm_type(self) -> str:
        return f"starcoder-agents-{self.engine_name}"

    def _inner_kwargs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        settings = _settings_with(self.settings, kwargs)
        kwargs = {"max_tokens": settings.max_new_tokens, "temperature": settings.temperature}
        if settings.temperature > 0 and settings.seed is not None:
            kwargs["seed"] = settings.seed
        return kwargs

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        tracker = AnswerTracker(self.settings)
        generated = ""
        pieces = 0
        usage: UsageMetadata | None = None
        started = time.perf_counter()
        stream = self.inner.stream(messages, stop=stop, **self._inner_kwargs(kwargs))
        finish = "eos"
        try:
            for chunk in stream:
                if isinstance(chunk, AIMessageChunk) and chunk.usage_metadata:
                    usage = chunk.usage_metadata
                text = chunk.content if isinstance(chunk.content, str) else chunk.text
                if not text:
                    continue
                pieces += 1
                generated += text
                piece = tracker.update(generated)
                if piece:
                    out = ChatGenerationChunk(message=AIMessageChunk(content=piece))
                    if run_manager:
                        run_manager.on_llm_new_token(piece, chunk=out)
                    yield out
                if tracker.done:
                    finish = "stop_rule"
                    break
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()  # drops the HTTP stream: the server stops generating
        seconds = time.perf_counter() - started
        output_tokens = (usage["output_tokens"] if usage else 0) or pieces
        input_tokens = usage["input_tokens"] if usage else 0
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content="",
                usage_metadata=_usage(input_tokens, output_tokens),
                response_metadata={
                    "model_name": self.model_name,
                    "engine": self.engine_name,
                    "generation_seconds": round(seconds, 4),
                    "tokens_per_s": round(output_tokens / seconds, 2) if seconds else 0.0,
                    "finish_reason": finish,
                },
                chunk_position="last",
            )
        )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return generate_from_stream(self._stream(messages, stop=stop, run_manager=None, **kwargs))
