"""Probe inputs: the calls a test file makes to one function, and their near neighbours.

Two programs that pass the same tests can still differ; probing both with the tests' own
inputs and with inputs a step away from them (a number one more or less, a list with one
element changed) is a cheap way to find where they part (:mod:`roles.rivals`). Only calls
whose arguments are all Python literals are used, so a probe is plain data, written back
as source with ``repr``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from itertools import zip_longest
from typing import Any

from analysis.parsing import parse_python

__all__ = ["MAX_PROBES", "argument_lists", "neighbours", "probes"]

MAX_PROBES = 40


def _literal_arguments(call: ast.Call) -> tuple[Any, ...] | None:
    if call.keywords or any(isinstance(arg, ast.Starred) for arg in call.args):
        return None
    try:
        return tuple(ast.literal_eval(arg) for arg in call.args)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None


def argument_lists(tests: str, name: str, *, within: str = "") -> list[tuple[Any, ...]]:
    """The literal argument tuples of every call to ``name`` in ``tests``, first seen first.

    ``within``: only calls inside test functions whose names start with it.
    """
    try:
        tree = parse_python(tests)
    except (SyntaxError, ValueError):
        return []
    scopes: list[ast.AST] = [tree]
    if within:
        scopes = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith(within)]
    calls = [
        node
        for scope in scopes
        for node in ast.walk(scope)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == name
    ]
    found: list[tuple[Any, ...]] = []
    for call in sorted(calls, key=lambda call: (call.lineno, call.col_offset)):  # in the order written
        args = _literal_arguments(call)
        if args is not None and args not in found:
            found.append(args)
    return found


def _variants(value: Any) -> Iterator[Any]:
    """Values a step away from ``value``, of the same type."""
    if isinstance(value, bool):
        yield not value
    elif isinstance(value, int):
        yield from (value + 1, value - 1, -value)
    elif isinstance(value, float):
        yield from (value + 0.5, -value, value * 2)
    elif isinstance(value, str):
        yield from (value[::-1], value.swapcase(), value + value[-1:], value[1:])
    elif isinstance(value, (list, tuple)):
        kind = type(value)
        if value:
            yield kind(value[::-1])
            yield kind(value[1:])
            for index, item in enumerate(value[:3]):
                for other in _variants(item):
                    yield kind([*value[:index], other, *value[index + 1 :]])
                    break
            yield kind([*value, value[0]])
            if all(isinstance(item, int) and not isinstance(item, bool) for item in value):
                yield kind(-item for item in value)


def neighbours(args: tuple[Any, ...]) -> Iterator[tuple[Any, ...]]:
    """Argument tuples that differ from ``args`` in one argument, by one step."""
    for index, value in enumerate(args):
        for other in _variants(value):
            yield (*args[:index], other, *args[index + 1 :])


def _round_trips(args: tuple[Any, ...]) -> bool:
    try:
        return ast.literal_eval(repr(args)) == args
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False


def probes(tests: str, name: str, limit: int = MAX_PROBES) -> list[tuple[Any, ...]]:
    """The tests' own argument tuples for ``name``, then their neighbours, at most ``limit``, no repeats."""
    given = argument_lists(tests, name)
    steps = zip_longest(*(list(neighbours(args)) for args in given))  # each call's first step, then second...
    chosen: list[tuple[Any, ...]] = []
    for args in [*given, *(other for step in steps for other in step if other is not None)]:
        if len(chosen) >= limit:
            break
        if args not in chosen and _round_trips(args) and len(repr(args)) <= 2000:
            chosen.append(args)
    return chosen
