"""What every local engine offers: a stream of text pieces ending in one :class:`Completion`.

An engine takes chat messages and a role's settings, generates until the role's stop
rule closes (or end of sequence, or the token budget), and yields the text as it grows.
:class:`AnswerTracker` is the shared bookkeeping: it applies the stop rule to the text so
far, holds back a half-decoded character, and hands out only the new part.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from llms.presets import RoleSettings
from llms.prompting import ChatMessage
from llms.stopping import stop_finder

__all__ = ["AnswerTracker", "Completion", "Engine", "FinishReason"]

FinishReason = Literal["stop_rule", "eos", "length"]


@dataclass(frozen=True)
class Completion:
    """One finished generation."""

    text: str
    input_tokens: int
    output_tokens: int
    seconds: float
    finish_reason: FinishReason


class Engine(Protocol):
    """A loaded model that generates text for chat messages."""

    engine: str
    device: str
    dtype: str
    source: str

    def stream(self, messages: Sequence[ChatMessage], settings: RoleSettings) -> Iterator[str | Completion]:
        """Yield text pieces as they are generated, then one :class:`Completion`."""
        ...


class AnswerTracker:
    """Follows the generated text, cuts it where the stop rule says, hands out new text."""

    def __init__(self, settings: RoleSettings, opening: str = "") -> None:
        self._finder = stop_finder(settings.stop)
        self.opening = opening
        self.text = opening
        self._emitted = 0
        self.done = False

    def update(self, generated: str) -> str:
        """Take the whole generated text so far; return the part not handed out yet."""
        text = self.opening + generated
        if text.endswith("\ufffd"):  # a character split across tokens: wait for the rest
            text = text[:-1]
        if self._finder is not None:
            end = self._finder(text)
            if end is not None:
                text = text[:end]
                self.done = True
        self.text = text
        delta = text[self._emitted :]
        self._emitted = len(text)
        return delta

    def first_piece(self) -> str:
        """Return the answer opening that the prompt already holds (hand it out first)."""
        self._emitted = len(self.opening)
        return self.opening
