"""A scripted stand-in for the model layer, for tests of the graph's logic only.

``FakeScriptedModels`` answers each role from its own list of replies, in order, and
records the prompts it was sent, so a test can check what a node asked for.
``FakeBatchingModels`` stands for a model that decodes calls made at once together: it
answers sampled generator calls by their seed (whatever order the threads reach it in)
and can hold them at a barrier, which only calls made at once can pass
(``FakeMeetingChatModel`` holds every call of a role there).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from graph import Settings


class FakeScriptedChatModel(BaseChatModel):
    """Replies with the next scripted text; raises when the script runs out."""

    role: str
    replies: list[str]
    received: list[list[BaseMessage]] = []
    received_kwargs: list[dict[str, Any]] = []

    @property
    def _llm_type(self) -> str:
        return "fake-scripted"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.received.append(list(messages))
        self.received_kwargs.append(dict(kwargs))
        if not self.replies:
            raise AssertionError(f"the fake {self.role} model was called more often than scripted")
        text = self.replies.pop(0)
        words = len(text.split())
        message = AIMessage(
            content=text,
            usage_metadata={"input_tokens": 10, "output_tokens": words, "total_tokens": 10 + words},
            response_metadata={"model_name": "fake-scripted"},
        )
        return ChatResult(generations=[ChatGeneration(message=message)])


class FakeScriptedModels:
    """A :class:`roles.context.ModelProvider` whose roles answer from scripts."""

    name = "fake-scripted"

    def __init__(self, **scripts: Iterable[str]) -> None:
        self.models = {
            role: FakeScriptedChatModel(role=role, replies=list(scripts.get(role, [])), received=[], received_kwargs=[])
            for role in ("generator", "tester", "reviewer", "refiner", "arbiter")
        }

    def for_role(self, role: str) -> FakeScriptedChatModel:
        return self.models[role]

    def calls(self, role: str) -> int:
        return len(self.models[role].received)


class FakeSeededChatModel(FakeScriptedChatModel):
    """A scripted model whose calls with a ``seed`` answer ``by_seed[seed]``, waiting at ``barrier``."""

    by_seed: dict[int, str] = {}
    barrier: Any = None

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        seed = kwargs.get("seed")
        if seed is None:
            return super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)
        if self.barrier is not None:
            self.barrier.wait()  # raises BrokenBarrierError unless every party arrives at once
        self.received.append(list(messages))
        self.received_kwargs.append(dict(kwargs))
        message = AIMessage(
            content=self.by_seed[seed],
            usage_metadata={"input_tokens": 10, "output_tokens": 7, "total_tokens": 17},
            response_metadata={"model_name": "fake-batching"},
        )
        return ChatResult(generations=[ChatGeneration(message=message)])


class FakeMeetingChatModel(FakeScriptedChatModel):
    """A scripted model whose every call waits at ``barrier`` first: only calls made at once pass it."""

    barrier: Any = None

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.barrier.wait()  # raises BrokenBarrierError unless every party arrives at once
        return super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)


class FakeBatchingModels(FakeScriptedModels):
    """Scripted roles, and a generator that answers sampled calls by seed, made at once (see the module)."""

    name = "fake-batching"
    decodes_together = True

    def __init__(self, by_seed: Mapping[int, str], *, together: int | None = None, **scripts: Iterable[str]) -> None:
        super().__init__(**scripts)
        self.models["generator"] = FakeSeededChatModel(
            role="generator",
            replies=list(scripts.get("generator", [])),
            received=[],
            received_kwargs=[],
            by_seed=dict(by_seed),
            barrier=threading.Barrier(together, timeout=10) if together else None,
        )


def fenced(code: str) -> str:
    """Wrap code the way a chat model replies."""
    return f"Here is the code:\n```python\n{code.strip()}\n```\n"


GOOD_CODE = '''
def add(a, b):
    """Return the sum of a and b."""
    return a + b
'''

BAD_CODE = '''
def add(a, b):
    """Return the sum of a and b."""
    return a - b
'''

ADD_TESTS = """
from solution import add


def test_small():
    assert add(2, 3) == 5


def test_negative():
    assert add(-1, 1) == 0
"""

GOOD_REVIEW = '{"score": 9, "summary": "Correct and clear.", "recommendations": ["Add type hints."]}'


def scripted_settings(**overrides: Any) -> Settings:
    """Settings for a test driven by scripted replies.

    The sampling levers (``candidates``, ``resample_repeats``) ask the model again when
    an attempt fails or repeats, which would need more replies than such a test
    scripts; they are off here unless a test turns them on. They have tests of their
    own, and the real-model tests run the defaults.
    """
    return Settings(**{"candidates": 1, "resample_repeats": False, **overrides})
