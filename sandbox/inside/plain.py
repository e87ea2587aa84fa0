"""Plain data across the line between the code under test and the process judging it.

Values cross as JSON. Only the built-in types of plain data cross as themselves, and
only when their type is exactly that type (a subclass of ``int`` with its own
``__eq__`` is not plain data): ``None``, ``bool``, ``int``, ``float``, ``complex``,
``str``, ``bytes``, ``list``, ``tuple``, ``set``, ``frozenset`` and ``dict``. Anything
else crosses as a *handle*: an opaque reference to an object that stays in the code's
process. The judging side decodes JSON into fresh built-in objects, so every
comparison it makes runs built-in code, never the code under test's.

JSON forms (``encode`` on the code's side, ``decode`` on the judge's side):

- ``null``, ``true``/``false``, numbers, strings and arrays are None, bool, int/float,
  str and list;
- objects are tagged: ``{"t": [...]}`` tuple, ``{"s": [...]}`` set, ``{"fs": [...]}``
  frozenset, ``{"d": [[k, v], ...]}`` dict, ``{"b": "<base64>"}`` bytes,
  ``{"c": [re, im]}`` complex, ``{"f": "nan"|"inf"|"-inf"}`` a float that JSON lacks,
  ``{"h": N, "type": "...", "repr": "..."}`` a handle, ``{"exc": "Name", "base": "..."}``
  an exception class of the code's own, ``{"cb": N}`` a function of the tests that the
  code may call back (the call runs on the judging side, on plain data).

This module imports only the standard library; both sides load it from the harness
folder.
"""

from __future__ import annotations

import base64
import builtins
import math
from collections.abc import Callable
from typing import Any

MAX_DEPTH = 100
REPR_CHARS = 200

_SCALARS = (type(None), bool, int, str)
_TAGGED_SEQUENCES: dict[type, str] = {tuple: "t", set: "s", frozenset: "fs"}


class NotPlainData(TypeError):
    """A value the judge was sent, or wants to send, is not plain data."""


# -- the code's side ---------------------------------------------------------------------


def encode(value: Any, as_handle: Callable[[Any], dict[str, Any]], depth: int = 0) -> Any:
    """``value`` as JSON-ready data; ``as_handle`` turns a non-plain object into a handle."""
    kind = type(value)
    if depth > MAX_DEPTH:
        return as_handle(value)
    if kind in _SCALARS:
        return value
    if kind is float:
        return value if math.isfinite(value) else {"f": repr(value)}
    if kind is complex:
        return {"c": [encode(value.real, as_handle), encode(value.imag, as_handle)]}
    if kind is bytes:
        return {"b": base64.b64encode(value).decode("ascii")}
    if kind is list:
        return [encode(item, as_handle, depth + 1) for item in value]
    if kind in _TAGGED_SEQUENCES:
        return {_TAGGED_SEQUENCES[kind]: [encode(item, as_handle, depth + 1) for item in value]}
    if kind is dict:
        pairs = [[encode(k, as_handle, depth + 1), encode(v, as_handle, depth + 1)] for k, v in value.items()]
        return {"d": pairs}
    return as_handle(value)


def short_repr(value: Any) -> str:
    """A bounded ``repr`` that never raises (the object's ``__repr__`` is the code's)."""
    try:
        text = repr(value)
    except BaseException:  # noqa: BLE001 - anything the code's __repr__ throws
        text = f"<{type(value).__name__} object>"
    return text if len(text) <= REPR_CHARS else text[: REPR_CHARS - 3] + "..."


# -- the judge's side --------------------------------------------------------------------


def decode(data: Any, make_handle: Callable[[dict[str, Any]], Any], depth: int = 0) -> Any:
    """Fresh built-in objects from JSON data; handles become ``make_handle(data)``."""
    if depth > MAX_DEPTH + 2:
        raise NotPlainData("the value is nested too deeply")
    kind = type(data)
    if kind in (type(None), bool, int, str):
        return data
    if kind is float:
        return data
    if kind is list:
        return [decode(item, make_handle, depth + 1) for item in data]
    if kind is not dict or len(data) == 0:
        raise NotPlainData(f"unreadable value from the code's process: {short_repr(data)}")
    return _decode_tagged(data, make_handle, depth)


def _decode_tagged(data: dict[str, Any], make_handle: Callable[[dict[str, Any]], Any], depth: int) -> Any:
    def items(key: str) -> list[Any]:
        raw = data[key]
        if type(raw) is not list:
            raise NotPlainData(f"unreadable {key!r} value from the code's process")
        return [decode(item, make_handle, depth + 1) for item in raw]

    if "t" in data:
        return tuple(items("t"))
    if "s" in data:
        return set(items("s"))
    if "fs" in data:
        return frozenset(items("fs"))
    if "d" in data:
        pairs = items("d")
        if any(type(pair) is not list or len(pair) != 2 for pair in pairs):
            raise NotPlainData("unreadable dict from the code's process")
        return {key: value for key, value in pairs}
    if "b" in data and type(data["b"]) is str:
        return base64.b64decode(data["b"].encode("ascii"), validate=True)
    if "c" in data:
        real, imag = items("c")
        if type(real) is not float and type(real) is not int:
            raise NotPlainData("unreadable complex number from the code's process")
        return complex(real, imag)
    if "f" in data and data["f"] in ("nan", "inf", "-inf"):
        return float(data["f"])
    if "h" in data or "exc" in data or "cb" in data:
        return make_handle(data)
    raise NotPlainData(f"unreadable value from the code's process: {short_repr(data)}")


def builtin_exception(name: object) -> type[BaseException] | None:
    """The built-in exception class called ``name``, if there is one."""
    found = getattr(builtins, name, None) if isinstance(name, str) else None
    if isinstance(found, type) and issubclass(found, BaseException):
        return found
    return None
