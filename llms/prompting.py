"""Messages in, prompt out: chat messages for instruct models, plain text for base models.

Instruction-tuned models get the messages as they are and apply their own chat
template. Base models (StarCoder2, Gemma 270M) only continue text, so the messages
become one completion prompt that ends by opening the answer (a code fence, or the
brace of a JSON object); the engines put that opening back in front of the reply so
the stop rules and the callers see a whole block.
"""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.messages import BaseMessage

from llms.presets import StopRule

__all__ = ["ChatMessage", "completion_prompt", "to_chat_messages"]

ChatMessage = dict[str, str]

_ROLES = {"system": "system", "human": "user", "ai": "assistant", "user": "user"}
_ANSWER_OPENINGS: dict[str, str] = {"code": "```python\n", "json": "{"}


def to_chat_messages(messages: Sequence[BaseMessage]) -> list[ChatMessage]:
    """Turn LangChain messages into ``{"role", "content"}`` dicts for a chat template."""
    out: list[ChatMessage] = []
    for message in messages:
        role = _ROLES.get(message.type, "user")
        content = message.content if isinstance(message.content, str) else message.text
        out.append({"role": role, "content": content})
    return out


def completion_prompt(messages: Sequence[ChatMessage], stop: StopRule | None) -> tuple[str, str]:
    """Return ``(prompt, answer_opening)`` for a base model.

    The prompt ends with the opening of the answer; the opening is returned separately
    so the engine can prepend it to the generated text.
    """
    parts = [m["content"].strip() for m in messages if m["role"] != "assistant"]
    opening = _ANSWER_OPENINGS.get(stop or "", "")
    prompt = "\n\n".join(p for p in parts if p) + "\n\nAnswer:\n" + opening
    return prompt, opening
