"""The process that runs the code under test, and nothing else: it answers calls as data.

Started by the judging process (the pytest run, see ``remote.py``) as
``python -I callee.py CODE_DIR MODULE``. It measures coverage of the module, imports
it, then answers requests, one JSON line each, on the pipes it was started with: the
judging side asks for an attribute, a call, an item, the next value of an iterator...
and gets back plain data (see ``plain.py``) or a handle to an object that stays here.

Everything here can be rewritten by the code under test, which runs in this process.
That is the point: nothing this process says can decide a test, because the judging
side only ever compares the plain data it decodes, with built-in code, in its own
process. Before the module is imported, the protocol pipes move to new descriptors and
the standard streams point elsewhere, so ``print`` cannot garble the protocol.
"""

from __future__ import annotations

import builtins
import io
import json
import os
import sys
import traceback
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from plain import decode, encode, short_repr  # noqa: E402 - after the path is set

TRACEBACK_CHARS = 1500


class Callee:
    """The module, the objects handed out as handles, and the coverage measurement."""

    def __init__(self, code_dir: str, module: str, requests: Any, replies: Any) -> None:
        """Remember where the module is and the protocol's pipes; nothing is imported yet."""
        self.requests = requests
        self.replies = replies
        self.path = os.path.join(code_dir, f"{module}.py")
        self.code_dir = code_dir
        self.module_name = module
        self.objects: dict[int, Any] = {}
        self.keys: dict[int, int] = {}  # id() of an object handed out -> its handle
        self.coverage: Any = None

    # handles -------------------------------------------------------------------------

    def as_handle(self, value: Any) -> dict[str, Any]:
        """A reference to ``value``, which stays here; the same object, the same handle."""
        key = self.keys.get(id(value))
        if key is None:
            key = self.keys[id(value)] = len(self.objects) + 1
            self.objects[key] = value
        if isinstance(value, type) and issubclass(value, BaseException):
            return {"exc": value.__name__, "base": _builtin_base(value), "h": key}
        return {"h": key, "type": type(value).__name__[:80], "repr": short_repr(value)}

    def send(self, message: dict[str, Any]) -> None:
        self.replies.write(json.dumps(message).encode("utf-8") + b"\n")

    def lookup(self, data: dict[str, Any]) -> Any:
        """The object a reference names: a handle, a function of the tests, or a module attribute."""
        if "cb" in data:
            return self.callback(int(data["cb"]))
        found = self.objects[int(data["h"])]
        return getattr(found, str(data["name"])) if "name" in data else found

    def callback(self, key: int) -> Any:
        """A stand-in for a function of the tests: calling it asks the judging side to."""

        def call_back(*args: Any, **kwargs: Any) -> Any:
            self.send({"callback": key, "args": encode(list(args), self.as_handle),
                       "kwargs": encode(kwargs, self.as_handle)})  # fmt: skip
            reply = json.loads(self.requests.readline() or b"{}")
            if "raise" in reply:
                raised = reply["raise"]
                cls = getattr(builtins, str(raised.get("type")), None)
                cls = cls if isinstance(cls, type) and issubclass(cls, Exception) else RuntimeError
                raise cls(str(raised.get("message", "")))
            return decode(reply.get("value"), self.lookup)

        return call_back

    def value(self, result: Any) -> dict[str, Any]:
        return {"value": encode(result, self.as_handle)}

    # start and end -------------------------------------------------------------------

    def start(self) -> dict[str, Any]:
        """Measure coverage and import the module; say whether the import worked."""
        try:
            import coverage

            self.coverage = coverage.Coverage(data_file=None, include=[self.path], config_file=False)
            self.coverage.start()
        except Exception:  # noqa: BLE001 - coverage is a review hint, never a verdict
            self.coverage = None
        sys.path.insert(0, self.code_dir)
        try:
            import importlib

            self.objects[0] = importlib.import_module(self.module_name)
        except BaseException as exc:  # noqa: BLE001 - SystemExit at import included
            return {"import_error": self.describe(exc)}
        return {"ready": True}

    def coverage_percent(self) -> float | None:
        if self.coverage is None or 0 not in self.objects:
            return None
        try:
            self.coverage.stop()
            return round(float(self.coverage.report(file=io.StringIO(), include=[self.path])), 2)
        except Exception:  # noqa: BLE001 - no data, or a module that broke coverage
            return None

    def describe(self, exc: BaseException) -> dict[str, Any]:
        tb = exc.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
            tb = tb.tb_next  # this file's own frames say nothing about the code
        frames = [
            f"{os.path.basename(f.filename)}:{f.lineno}: in {f.name}\n    {(f.line or '').strip()}"
            for f in traceback.extract_tb(tb)[-6:]
        ]
        text = "\n".join(frames)
        return {
            "type": type(exc).__name__,
            "builtin": type(exc).__module__ == "builtins",
            "base": _builtin_base(type(exc)),
            "message": _message(exc),
            "args": encode(list(exc.args), self.as_handle),
            "traceback": text[-TRACEBACK_CHARS:],
        }

    # requests ------------------------------------------------------------------------

    def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request["op"]
        if op == "finish":
            return {"value": self.coverage_percent()}
        try:
            target = self.lookup(request["ref"]) if "ref" in request else self.objects[0]
            args = decode(request.get("args", []), self.lookup)
            kwargs = decode(request.get("kwargs", {"d": []}), self.lookup)
            result = self.perform(op, target, request, args, kwargs)
        except BaseException as exc:  # noqa: BLE001 - the code's exceptions go back as data
            return {"raise": self.describe(exc)}
        answer = self.value(result)
        mutable = [i for i, arg in enumerate(args) if type(arg) in (list, dict, set)]
        if mutable:  # in-place changes to arguments go back too
            answer["args_after"] = {str(i): encode(args[i], self.as_handle) for i in mutable}
        return answer

    @staticmethod
    def perform(op: str, target: Any, request: dict[str, Any], args: list[Any], kwargs: dict[str, Any]) -> Any:
        if op == "getattr":
            return getattr(target, str(request["name"]))
        if op == "setattr":
            setattr(target, str(request["name"]), args[0])
            return None
        if op == "call":
            return target(*args, **kwargs)
        if op == "getitem":
            return target[args[0]]
        if op == "setitem":
            target[args[0]] = args[1]
            return None
        if op == "delitem":
            del target[args[0]]
            return None
        if op == "len":
            return len(target)
        if op == "iter":
            return iter(target)
        if op == "next":
            return next(target)
        if op == "str":
            return str(target)
        if op == "repr":
            return repr(target)
        raise ValueError(f"unknown operation {op!r}")


def _builtin_base(cls: type) -> str:
    return next((b.__name__ for b in cls.__mro__ if b.__module__ == "builtins"), "Exception")


def _message(exc: BaseException) -> str:
    try:
        return str(exc)[:500]
    except BaseException:  # noqa: BLE001 - the code's own __str__
        return short_repr(exc)


def _protocol_streams() -> tuple[Any, Any]:
    """Move the pipes to private descriptors; stdin reads nothing, stdout goes to stderr."""
    requests = os.fdopen(os.dup(0), "rb")
    replies = os.fdopen(os.dup(1), "wb", buffering=0)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    return requests, replies


def main(argv: list[str]) -> int:
    """Serve requests until the judging side closes the pipe."""
    requests, replies = _protocol_streams()
    callee = Callee(argv[1], argv[2], requests, replies)
    callee.send(callee.start())
    while line := requests.readline():
        try:
            callee.send(callee.answer(json.loads(line)))
        except BaseException as exc:  # noqa: BLE001 - a broken request, or a value that won't encode
            message = f"could not answer: {short_repr(exc)}"
            callee.send({"raise": {"type": "RuntimeError", "message": message, "args": [], "traceback": ""}})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
