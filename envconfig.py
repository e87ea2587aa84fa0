"""Reading settings from environment variables: one rule for the whole project.

- A variable that is unset, empty, or only blanks counts as unset: the default applies.
- A yes/no variable must say ``1``/``0``, ``true``/``false``, ``yes``/``no`` or
  ``on``/``off`` (any case); anything else is refused, never read as "no".
- A number that does not parse is refused.

A refused value raises :class:`ValueError` naming the variable and what it holds.
This module imports nothing of the project, so every part (the sandbox, the models,
the graph, the server) can use it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TypeVar

__all__ = ["FALSE_WORDS", "TRUE_WORDS", "env_bool", "env_float", "env_int", "env_str", "env_value", "parse_bool"]

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})

_T = TypeVar("_T", bool, int, float, str)
_N = TypeVar("_N", int, float)


def env_str(name: str, default: str | None = None, *, environ: Mapping[str, str] | None = None) -> str | None:
    """The variable's value with surrounding blanks removed, or ``default`` when unset or empty."""
    raw = (os.environ if environ is None else environ).get(name)
    if raw is None or not raw.strip():
        return default
    return raw.strip()


def parse_bool(name: str, raw: str) -> bool:
    """Read ``raw`` (the value of variable ``name``) as yes or no; refuse anything unclear."""
    value = raw.strip().lower()
    if value in TRUE_WORDS:
        return True
    if value in FALSE_WORDS:
        return False
    raise ValueError(f"{name}={raw!r}: use 1/0, true/false, yes/no or on/off")


def env_bool(name: str, default: bool, *, environ: Mapping[str, str] | None = None) -> bool:
    """A yes/no variable (see :func:`parse_bool`); ``default`` when unset or empty."""
    raw = env_str(name, environ=environ)
    return default if raw is None else parse_bool(name, raw)


def _env_number(name: str, default: _N, kind: type[_N], what: str, environ: Mapping[str, str] | None) -> _N:
    raw = env_str(name, environ=environ)
    if raw is None:
        return default
    try:
        return kind(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r}: expected {what}") from None


def env_int(name: str, default: int, *, environ: Mapping[str, str] | None = None) -> int:
    """A whole-number variable; ``default`` when unset or empty."""
    return _env_number(name, default, int, "a whole number", environ)


def env_float(name: str, default: float, *, environ: Mapping[str, str] | None = None) -> float:
    """A number variable; ``default`` when unset or empty."""
    return _env_number(name, default, float, "a number", environ)


def env_value(name: str, default: _T, *, environ: Mapping[str, str] | None = None) -> _T:
    """The variable read as the type of ``default`` (bool, int, float or str)."""
    if isinstance(default, bool):
        return env_bool(name, default, environ=environ)
    if isinstance(default, int):
        return env_int(name, default, environ=environ)
    if isinstance(default, float):
        return env_float(name, default, environ=environ)
    value = env_str(name, environ=environ)
    return default if value is None else value
