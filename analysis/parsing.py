"""Pull fenced code blocks and review verdicts out of free-form model replies.

Small models format their answers loosely: a fence without a language, a reply cut
off before the closing fence, prose around the block, a JSON object with a trailing
comma. Every function here tolerates that and returns ``None`` (or an empty value)
rather than raising, so a malformed reply becomes a failed attempt with a reason.
"""

from __future__ import annotations

import ast
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

__all__ = [
    "ReviewVerdict",
    "extract_code",
    "first_json_object",
    "parse_expression",
    "parse_python",
    "parse_review",
    "parser_alone",
    "parses",
    "same_program",
    "trim_to_parseable",
]

_FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})[ \t]*([\w+.-]*)[^\n]*$", re.MULTILINE)
_CODE_LANGS = {"", "python", "py", "python3", "pycon"}


def _fenced_blocks(text: str) -> list[tuple[str, str, bool]]:
    """Return ``(language, body, closed)`` for each fenced block, in order."""
    blocks: list[tuple[str, str, bool]] = []
    pos = 0
    while True:
        opening = _FENCE.search(text, pos)
        if opening is None:
            return blocks
        fence, lang = opening.group(1), opening.group(2).lower()
        body_start = opening.end() + 1
        closing = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$", re.MULTILINE)
        end = closing.search(text, body_start)
        if end is None:
            blocks.append((lang, text[body_start:], False))
            return blocks
        blocks.append((lang, text[body_start : end.start()], True))
        pos = end.end()


_PARSER = threading.RLock()


@contextmanager
def parser_alone() -> Iterator[None]:
    """Hold the process's one Python parser: no other thread parses until the block ends.

    CPython 3.11 builds syntax trees with interpreter-wide state, so two threads parsing
    at once can fail with ``SystemError: AST constructor recursion depth mismatch``
    (python/cpython#106905); graph runs share a process (the server runs them in
    threads). Every parse of the project goes through here (:func:`parse_python`), and a
    library that parses (radon) runs inside it.
    """
    with _PARSER:
        yield


def parse_python(source: str, filename: str = "<unknown>") -> ast.Module:
    """``ast.parse(source)``, one thread at a time (see :func:`parser_alone`)."""
    with _PARSER:
        return ast.parse(source, filename)


def parse_expression(source: str) -> ast.expr:
    """The expression ``source`` as a syntax tree, one thread at a time (see :func:`parser_alone`)."""
    with _PARSER:
        return ast.parse(source, mode="eval").body


def parses(code: str) -> bool:
    """True when ``code`` is syntactically valid Python."""
    try:
        parse_python(code)
    except (SyntaxError, ValueError):
        return False
    return True


def same_program(a: str, b: str) -> bool:
    """True when two pieces of code parse to the same program (layout and comments aside)."""
    try:
        return ast.dump(parse_python(a)) == ast.dump(parse_python(b))
    except SyntaxError:
        return a.strip() == b.strip()


def trim_to_parseable(code: str) -> str | None:
    """Drop trailing lines of a module cut off mid-statement until the rest parses.

    A reply that ran out of tokens usually ends inside a string or a call; everything
    before that line is still good code. Returns ``None`` when no prefix parses.
    """
    lines = code.rstrip().splitlines()
    while lines:
        candidate = "\n".join(lines).rstrip() + "\n"
        if parses(candidate) and candidate.strip():
            return candidate
        lines.pop()
    return None


def extract_code(text: str) -> str | None:
    """Return the Python code in a model reply, or ``None`` when there is none.

    Preference order: closed Python-looking fenced blocks (the longest that parses,
    else the longest), then an unclosed trailing block (a reply cut off by the token
    budget, trimmed back to its last complete statement), then the whole reply when
    it parses as Python and defines something.
    """
    blocks = [(body, closed) for lang, body, closed in _fenced_blocks(text) if lang in _CODE_LANGS]
    blocks = [
        (body if closed or parses(body) else (trim_to_parseable(body) or body), closed) for body, closed in blocks
    ]
    candidates = [body.strip("\n") for body, _ in blocks if body.strip()]
    if candidates:
        parsing = [c for c in candidates if parses(c)]
        return max(parsing or candidates, key=len) + "\n"
    stripped = text.strip()
    if stripped and parses(stripped):
        tree = parse_python(stripped)
        if any(isinstance(n, ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef) for n in tree.body):
            return stripped + "\n"
    return None


@dataclass(frozen=True)
class ReviewVerdict:
    """What a model's review said: a 0-10 score (None if unreadable) and advice."""

    score: float | None
    summary: str = ""
    recommendations: list[str] = field(default_factory=list)


_SCORE_PATTERNS = (
    re.compile(r'"?score"?\s*[:=]\s*"?(\d+(?:\.\d+)?)', re.IGNORECASE),
    re.compile(r"(\d+(?:\.\d+)?)\s*/\s*10\b"),
)


def first_json_object(text: str) -> dict | None:
    """Decode the first ``{...}`` object in ``text``, forgiving trailing commas."""
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", text):
        chunk = text[match.start() :]
        for candidate in (chunk, re.sub(r",\s*([}\]])", r"\1", chunk)):
            try:
                obj, _ = decoder.raw_decode(candidate)
            except json.JSONDecodeError:
                continue
            if isinstance(obj, dict):
                return obj
    return None


def _clamp_score(value: object) -> float | None:
    try:
        score = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    if score != score:  # NaN
        return None
    return max(0.0, min(10.0, score))


def _as_text_list(value: object) -> list[str]:
    if isinstance(value, str):
        return [value.strip()] if value.strip() else []
    if isinstance(value, list):
        return [str(item).strip() for item in value if str(item).strip()]
    return []


def parse_review(text: str) -> ReviewVerdict:
    """Read a reviewer reply: a JSON object if there is one, else score-like prose."""
    obj = first_json_object(text)
    if obj is not None and "score" in obj:
        return ReviewVerdict(
            score=_clamp_score(obj.get("score")),
            summary=str(obj.get("summary", "")).strip(),
            recommendations=_as_text_list(obj.get("recommendations", []))[:5],
        )
    score = None
    for pattern in _SCORE_PATTERNS:
        match = pattern.search(text)
        if match:
            score = _clamp_score(match.group(1))
            break
    bullets = re.findall(r"^\s*(?:[-*•]|\d+[.)])\s+(.+)$", text, re.MULTILINE)
    return ReviewVerdict(score=score, summary="", recommendations=[b.strip() for b in bullets][:5])
