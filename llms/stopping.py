"""Stop rules: where a role's answer is complete, found while the text is still growing.

Each rule is a pure function of the text generated so far that returns the length of
the complete answer (the text up to and including the closing fence or brace), or
``None`` while the answer is still open. The engines call it after every token and stop
generating as soon as it returns a length.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from llms.presets import StopRule

__all__ = ["code_block_end", "json_object_end", "stop_finder"]

_OPEN_FENCE = re.compile(r"(?:^|\n)[ \t]*```[^\n`]*\n")
_CLOSE_FENCE = re.compile(r"\n[ \t]*```")


def code_block_end(text: str) -> int | None:
    """Return the end of the first fenced code block once it is closed."""
    opening = _OPEN_FENCE.search(text)
    if opening is None:
        return None
    # The opening match ends with its newline; the closing search starts on it.
    closing = _CLOSE_FENCE.search(text, opening.end() - 1)
    return closing.end() if closing else None


def json_object_end(text: str) -> int | None:
    """Return the end of the first top-level JSON object once its braces balance."""
    start = text.find("{")
    if start < 0:
        return None
    depth = 0
    in_string = False
    escaped = False
    for index in range(start, len(text)):
        char = text[index]
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return index + 1
    return None


_FINDERS: dict[str, Callable[[str], int | None]] = {
    "code": code_block_end,
    "json": json_object_end,
}


def stop_finder(rule: StopRule | None) -> Callable[[str], int | None] | None:
    """Return the finder for ``rule`` (``None`` for no rule)."""
    return _FINDERS[rule] if rule else None
