"""A test-only app factory: the real server wired to a FAKE model that always answers well.

The server tests start ``python -m uvicorn --factory tests.server_app:create_fake_app``
in a subprocess, so the HTTP layer, LangServe, the sandbox and the checkpointer are all
real; only the model is fake, which keeps a run to a few seconds.

:class:`FakeServingModels` answers every role with the same valid reply (the code of
``add``, its tests, a good review) and streams it word by word, so token events can be
checked. A task containing ``FAIL_ONCE`` makes the reviewer raise the first time it
sees that task, leaving the thread interrupted for the resume tests; a task containing
``SLOW_RUN`` makes the generator take ``SLOW_RUN_S`` seconds, so that a run is still
going when a test cancels it or sends a second one on its thread (``SLOW_REVIEW``: the
reviewer, once the first nodes have finished). With ``STARCODER_TEST_CALL_LOG`` set,
each call appends ``role<TAB>tag`` to that file (the tag: the task's first word that
starts with ``run-``), so that tests across processes can count how often each role
ran for a task.

Environment: ``STARCODER_TEST_CHECKPOINTER`` (``memory``, a SQLite path, a
``postgres://`` URL); ``STARCODER_TEST_HOST`` (the address the app is told it serves
on, default loopback) and ``STARCODER_TEST_INSECURE=1`` (``--insecure``), for the
exposure tests, which still bind loopback so that nothing is really exposed; the
server's own ``STARCODER_*`` limits and API key.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from server import create_app
from tests.fakes import ADD_TESTS, GOOD_CODE, GOOD_REVIEW, fenced, scripted_settings

FAKE_MODEL_NAME = "fake-serving"
FAIL_ONCE_MARKER = "FAIL_ONCE"
SLOW_MARKER = "SLOW_RUN"
SLOW_REVIEW_MARKER = "SLOW_REVIEW"
SLOW_RUN_S = float(os.environ.get("STARCODER_TEST_SLOW_S", "3"))
_REPLIES = {
    "generator": fenced(GOOD_CODE),
    "tester": fenced(ADD_TESTS),
    "reviewer": GOOD_REVIEW,
    "refiner": fenced(GOOD_CODE),
}


def _log_call(role: str, prompt: str) -> None:
    path = os.environ.get("STARCODER_TEST_CALL_LOG")
    if not path:
        return
    run_tag = next((word for word in prompt.split() if word.startswith("run-")), "?")
    with open(path, "a") as log:  # one short line: appends from several processes stay whole
        log.write(f"{role}\t{run_tag}\n")


class FakeServingChatModel(BaseChatModel):
    """A FAKE chat model: one fixed reply per role, streamed a word at a time."""

    role: str
    failed_tasks: set[str]
    lock: Any

    @property
    def _llm_type(self) -> str:
        return "fake-serving"

    def _reply_for(self, messages: list[BaseMessage]) -> str:
        prompt = "\n".join(str(m.content) for m in messages)
        _log_call(self.role, prompt)
        if self.role == "generator" and SLOW_MARKER in prompt:
            time.sleep(SLOW_RUN_S)
        if self.role == "reviewer" and SLOW_REVIEW_MARKER in prompt:
            time.sleep(SLOW_RUN_S)
        if self.role == "reviewer" and FAIL_ONCE_MARKER in prompt:
            with self.lock:
                key = prompt[:2000]
                if key not in self.failed_tasks:
                    self.failed_tasks.add(key)
                    raise RuntimeError("the fake reviewer fails once for this task, as scripted")
        return _REPLIES[self.role]

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        text = self._reply_for(messages)
        words = len(text.split())
        message = AIMessage(
            content=text,
            usage_metadata={"input_tokens": 10, "output_tokens": words, "total_tokens": 10 + words},
            response_metadata={"model_name": FAKE_MODEL_NAME},
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        text = self._reply_for(messages)
        pieces = text.split(" ")
        for i, piece in enumerate(pieces):
            token = piece if i == len(pieces) - 1 else piece + " "
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=token))
            if run_manager is not None:
                run_manager.on_llm_new_token(token, chunk=chunk)
            yield chunk
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content="",
                usage_metadata={
                    "input_tokens": 10,
                    "output_tokens": len(pieces),
                    "total_tokens": 10 + len(pieces),
                },
                response_metadata={"model_name": FAKE_MODEL_NAME},
            )
        )


class FakeServingModels:
    """A FAKE :class:`roles.context.ModelProvider` for server tests."""

    name = FAKE_MODEL_NAME
    engine = "fake"

    def __init__(self) -> None:
        failed: set[str] = set()
        lock = threading.Lock()
        self.models = {role: FakeServingChatModel(role=role, failed_tasks=failed, lock=lock) for role in _REPLIES}

    def for_role(self, role: str) -> FakeServingChatModel:
        return self.models[role]

    def describe(self) -> dict[str, str]:
        return {"name": self.name, "engine": self.engine, "note": "scripted fake for tests"}


def create_fake_app() -> FastAPI:
    """The server app with the fake model (a uvicorn ``--factory``)."""
    settings = scripted_settings(test_timeout_s=60.0)
    return create_app(
        FakeServingModels(),
        checkpointer=os.environ.get("STARCODER_TEST_CHECKPOINTER", "memory"),
        settings=settings,
        host=os.environ.get("STARCODER_TEST_HOST", "127.0.0.1"),
        insecure=os.environ.get("STARCODER_TEST_INSECURE") == "1",
    )
