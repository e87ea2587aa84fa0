"""The judging side's view of the code under test: a module whose objects live elsewhere.

In a sandboxed pytest run, ``import solution`` does not load the code. It gives a
stand-in module (:func:`stand_in_module`) whose names are :class:`Remote` references.
Using one (a call, an attribute, an item, iteration) sends a request to the code's own
process (``callee.py``), started on first use; the answer comes back as plain data,
decoded into fresh built-in objects (``plain.py``), or as another reference. So the
tests compare only built-in values with built-in code in this process, and nothing
the code does (patching pytest, an ``__eq__`` that is always true, writing the report,
``os._exit``) can decide a test.

A function the tests pass to the code (a key, a predicate) crosses as a reference: when
the code calls it, the call comes back here and runs on plain data. What cannot cross
is refused loudly: a truth value or comparison of an object of the code's own (only
plain data decides a test), or an argument that is neither plain data nor a function
(an instance of a class of the tests, say). Such an argument marks the test as one
that can only be judged in the code's own process (see :data:`NEEDS_IN_PROCESS`); the
harness runs those again that way and names them in the report as weaker evidence.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import types
from typing import Any, NoReturn

from plain import NotPlainData, builtin_exception, decode, encode

REPLY_CAP_BYTES = 16 * 1024 * 1024

NEEDS_IN_PROCESS: list[str] = []  # why the current test could not be judged out of process


class CodeProcessEnded(RuntimeError):
    """The code's process ended (it crashed, exited, or was killed) before answering."""


class ImportFailed(RuntimeError):
    """The code under test could not be imported in its own process."""


class CodeProcess:
    """The one process that runs the code under test; restarted if it dies."""

    def __init__(self, lib_dir: str, code_dir: str, module: str, env: dict[str, str], cwd: str) -> None:
        """Remember how to start it; it starts on first use, once :attr:`allowed` is set."""
        self.argv = [sys.executable, "-I", f"{lib_dir}/callee.py", code_dir, module]
        self.env = env
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None
        self.allowed = False
        self.import_error: dict[str, Any] | None = None

    def ensure(self) -> subprocess.Popen[bytes]:
        """The running process; start it (and import the code) if there is none."""
        if not self.allowed:
            raise RuntimeError(
                "the code under test cannot run while the tests are being collected: call it inside a test function"
            )
        if self.proc is not None and self.proc.poll() is None:
            return self.proc
        self.proc = subprocess.Popen(
            self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=self.env,
            cwd=self.cwd, close_fds=True,
        )  # fmt: skip
        hello = self._read(self.proc, "while importing the code")
        if "import_error" in hello:
            self.import_error = hello["import_error"]
            raise ImportFailed(_exception_text(hello["import_error"]))
        return self.proc

    def request(self, message: dict[str, Any]) -> dict[str, Any]:
        """Send one request and wait for its answer, running the calls back it asks for."""
        proc = self.ensure()
        self._write(proc, message)
        while True:
            reply = self._read(proc, "before answering")
            if "callback" not in reply:
                return reply
            self._write(proc, _run_callback(reply))

    @staticmethod
    def _write(proc: subprocess.Popen[bytes], message: dict[str, Any]) -> None:
        assert proc.stdin is not None
        try:
            proc.stdin.write(json.dumps(message).encode("utf-8") + b"\n")
            proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # the read that follows says how it ended

    def _read(self, proc: subprocess.Popen[bytes], when: str) -> dict[str, Any]:
        assert proc.stdout is not None
        line = proc.stdout.readline(REPLY_CAP_BYTES + 1)
        if not line.endswith(b"\n"):
            self.stop()
            if len(line) > REPLY_CAP_BYTES:
                raise NotPlainData(f"the code's answer is larger than {REPLY_CAP_BYTES} bytes")
            raise CodeProcessEnded(f"the code's process ended {when} ({_ending(proc)})")
        try:
            reply = json.loads(line)
        except ValueError as exc:
            raise NotPlainData(f"the code's process sent an unreadable answer: {exc}") from None
        if not isinstance(reply, dict):
            raise NotPlainData("the code's process sent an unreadable answer")
        return reply

    def finish(self) -> float | None:
        """The coverage the code's process measured (a review hint, never a verdict)."""
        if self.proc is None or self.proc.poll() is not None:
            return None
        try:
            value = self.request({"op": "finish"}).get("value")
        except (CodeProcessEnded, NotPlainData, ImportFailed, RuntimeError):
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return float(value) if 0 <= value <= 100 else None

    def stop(self) -> None:
        """Kill the process, if it runs."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait()


def _ending(proc: subprocess.Popen[bytes]) -> str:
    try:
        code = proc.wait(timeout=1)
    except subprocess.TimeoutExpired:
        proc.kill()
        return "it stopped answering"
    return f"killed by signal {-code}" if code < 0 else f"exit code {code}"


def _exception_text(raised: dict[str, Any]) -> str:
    return f"{raised.get('type', 'Exception')}: {raised.get('message', '')}".rstrip(": ")


PROCESS: CodeProcess | None = None


# -- references to the code's objects ----------------------------------------------------

_REMOTES: dict[int, Remote] = {}
_CALLBACKS: list[Any] = []  # functions of the tests the code may call back, by index
_CODE_EXCEPTIONS: dict[str, type[BaseException]] = {}


def _process() -> CodeProcess:
    if PROCESS is None:
        raise RuntimeError("the code under test is not available in this process")
    return PROCESS


def _outgoing(value: Any) -> dict[str, Any]:
    """How a value the tests pass to the code crosses: a reference, or not at all."""
    if isinstance(value, Remote):
        return object.__getattribute__(value, "_ref")
    if isinstance(value, type) and value in _CODE_EXCEPTIONS.values():
        return {"h": 0, "name": value.__name__}
    if isinstance(value, types.FunctionType | types.BuiltinFunctionType | types.MethodType):
        _CALLBACKS.append(value)
        return {"cb": len(_CALLBACKS) - 1}
    _needs_in_process(
        f"a {type(value).__name__} cannot be passed to the code in its own process "
        "(only plain data, functions and the code's own objects can)"
    )


def _needs_in_process(why: str) -> NoReturn:
    """Fail this test here, marked to be judged again in the code's own process."""
    NEEDS_IN_PROCESS.append(why)
    raise NotPlainData(why)


def _incoming(data: dict[str, Any]) -> Any:
    """A reference (or an exception class) the code's process handed back."""
    if "cb" in data:  # one of the tests' own functions, handed back
        key = int(data["cb"])
        if not 0 <= key < len(_CALLBACKS):
            raise NotPlainData("the code's process referred to an unknown function")
        return _CALLBACKS[key]
    if "exc" in data:
        return _code_exception(str(data["exc"]), data.get("base"))
    key = int(data["h"])
    if key not in _REMOTES:
        _REMOTES[key] = Remote({"h": key}, str(data.get("type", "object")), str(data.get("repr", "")))
    return _REMOTES[key]


def _code_exception(name: str, base: object) -> type[BaseException]:
    """A local class standing for an exception class of the code's own, by name."""
    if name not in _CODE_EXCEPTIONS:
        parent = builtin_exception(base) or Exception
        _CODE_EXCEPTIONS[name] = type(name, (parent,), {"__module__": "solution"})
    return _CODE_EXCEPTIONS[name]


def _run_callback(request: dict[str, Any]) -> dict[str, Any]:
    """Call a function of the tests for the code, on plain data; answer as data."""
    try:
        function = _incoming({"cb": request.get("callback")})
        args = decode(request.get("args", []), _incoming)
        kwargs = decode(request.get("kwargs", {"d": []}), _incoming)
        return {"value": encode(function(*args, **kwargs), _outgoing)}
    except Exception as exc:  # noqa: BLE001 - the tests' function failed: the code sees it raise
        return {"raise": {"type": type(exc).__name__, "message": str(exc)[:500]}}


def _raised(raised: dict[str, Any]) -> BaseException:
    """The exception the code raised, rebuilt here from plain data."""
    name = str(raised.get("type", "Exception"))
    cls = builtin_exception(name) if raised.get("builtin") else None
    cls = cls or _code_exception(name, raised.get("base"))
    try:
        args = decode(raised.get("args", []), _incoming)
        exc = cls(*args)
    except Exception:  # noqa: BLE001 - an exception type with a constructor of its own
        exc = RuntimeError(_exception_text(raised))
    if raised.get("traceback"):
        exc.add_note("raised in the code under test:\n" + str(raised["traceback"]).rstrip())
    return exc


def _ask(op: str, ref: dict[str, Any], *args: Any, kwargs: dict[str, Any] | None = None, **fields: Any) -> Any:
    """Perform ``op`` on the code's object ``ref``; return the decoded result."""
    message = {"op": op, "ref": ref, **fields}
    message["args"] = encode(list(args), _outgoing)
    message["kwargs"] = encode(dict(kwargs or {}), _outgoing)
    reply = _process().request(message)
    if "raise" in reply:
        raise _raised(reply["raise"] if isinstance(reply["raise"], dict) else {})
    _copy_back(args, reply.get("args_after"))
    return decode(reply.get("value"), _incoming)


def _copy_back(args: tuple[Any, ...], after: object) -> None:
    """Apply the code's in-place changes to list, dict and set arguments."""
    if not isinstance(after, dict):
        return
    for index, data in after.items():
        original: Any = args[int(index)] if str(index).isdigit() and int(index) < len(args) else None
        new = decode(data, _incoming)
        if type(original) is list and type(new) is list:
            original[:] = new
        elif type(original) in (dict, set) and type(new) is type(original):
            original.clear()
            original.update(new)


class Remote:
    """An object that stays in the code's process; using it sends a request there.

    Its equality is identity and it has no truth value: only plain data, compared
    here, decides a test. A test that compares two of the code's objects, or checks a
    type against a class of the code's, is judged again in the code's own process.
    """

    __slots__ = ("_ref", "_type", "_repr")

    def __init__(self, ref: dict[str, Any], type_name: str, repr_text: str) -> None:
        """Wrap the reference ``ref`` (``{"h": N}`` or a module attribute by name)."""
        object.__setattr__(self, "_ref", ref)
        object.__setattr__(self, "_type", type_name)
        object.__setattr__(self, "_repr", repr_text)

    def __getattr__(self, name: str) -> Any:
        """An attribute of the code's object."""
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return _ask("getattr", self._ref, name=name)

    def __setattr__(self, name: str, value: Any) -> None:
        """Set an attribute of the code's object."""
        _ask("setattr", self._ref, value, name=name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the code's object."""
        return _ask("call", self._ref, *args, kwargs=kwargs)

    def __getitem__(self, key: Any) -> Any:
        """An item of the code's object."""
        return _ask("getitem", self._ref, key)

    def __setitem__(self, key: Any, value: Any) -> None:
        """Set an item of the code's object."""
        _ask("setitem", self._ref, key, value)

    def __delitem__(self, key: Any) -> None:
        """Delete an item of the code's object."""
        _ask("delitem", self._ref, key)

    def __len__(self) -> int:
        """The length the code's object reports (an int, or a failure)."""
        value = _ask("len", self._ref)
        if type(value) is not int:
            raise TypeError("len() of the code's object did not give an int")
        return value

    def __iter__(self) -> Any:
        """An iterator over the code's object, itself in the code's process."""
        return _ask("iter", self._ref)

    def __next__(self) -> Any:
        """The next value of the code's iterator."""
        return _ask("next", self._ref)

    def __eq__(self, other: object) -> bool:
        """Identity; two different objects of the code can only be compared in its process."""
        if isinstance(other, Remote) and other is not self:
            _needs_in_process("the test compares two objects of the code's own")
        return self is other

    def __ne__(self, other: object) -> bool:
        """The opposite of :meth:`__eq__`."""
        return not self.__eq__(other)

    __hash__ = object.__hash__

    def __instancecheck__(self, instance: object) -> bool:
        """``isinstance(x, TheCodesClass)`` can only be answered in the code's process."""
        _needs_in_process("the test checks the type of a value against a class of the code's own")

    def __bool__(self) -> bool:
        """Refused: a test's truth must come from plain data, not the code's own objects."""
        raise TypeError(
            f"the code gave a {self._type} object where a truth value is needed; "
            "only plain data (bool, int, str, list, ...) can decide a test"
        )

    def __str__(self) -> str:
        """The code's ``str()`` of its object."""
        value = _ask("str", self._ref)
        return value if type(value) is str else self._repr

    def __repr__(self) -> str:
        """The object's repr as the code gave it when handing it over (or its name)."""
        return self._repr or f"<{self._type} in the code's process>"


def _public_names(tree: ast.Module) -> list[str]:
    """What ``from module import *`` would bind, read from the source without running it."""
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name) and target.id == "__all__":
                    try:
                        return [str(n) for n in ast.literal_eval(node.value)]  # type: ignore[arg-type]
                    except (ValueError, TypeError):
                        pass
                names += [n.id for n in ast.walk(target) if isinstance(n, ast.Name)]
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.append(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names += [(a.asname or a.name).split(".")[0] for a in node.names if a.name != "*"]
    return [n for n in dict.fromkeys(names) if not n.startswith("_")]


def _literal_constants(tree: ast.Module) -> dict[str, ast.expr]:
    """Top-level names bound once, to a literal (``LIMIT = 10``): their value is plain data."""
    found: dict[str, ast.expr] = {}
    bound: dict[str, int] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
            bound[node.id] = bound.get(node.id, 0) + 1
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                ast.literal_eval(node.value)
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                continue
            found[node.targets[0].id] = node.value
    return {name: value for name, value in found.items() if bound.get(name) == 1}


def _exception_classes(tree: ast.Module) -> dict[str, str]:
    """Classes the source derives from an exception class, with their built-in base."""
    found: dict[str, str] = {}
    classes = [node for node in tree.body if isinstance(node, ast.ClassDef)]
    for _ in range(len(classes)):  # bases may be defined later in the file
        for node in classes:
            for base in node.bases:
                name = base.id if isinstance(base, ast.Name) else None
                if name in found:
                    found.setdefault(node.name, found[name])
                elif builtin_exception(name) is not None:
                    found.setdefault(node.name, str(name))
    return found


def stand_in_module(module: str, code_dir: str) -> types.ModuleType:
    """The module the tests import instead of the code: names that refer to the code's.

    The source is parsed, never run, here; a syntax error surfaces as it would on import.
    """
    path = os.path.join(code_dir, f"{module}.py")
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read(), filename=path)
    stand_in = types.ModuleType(module, "the code under test, in a process of its own")
    stand_in.__all__ = _public_names(tree)  # type: ignore[attr-defined]
    stand_in.__file__ = path
    exceptions = _exception_classes(tree)
    literals = _literal_constants(tree)

    def __getattr__(name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        if name in literals:  # a constant written as a literal: read, never run
            return ast.literal_eval(literals[name])
        if name in exceptions:  # so that pytest.raises(TheCodesError) works here
            return _code_exception(name, exceptions[name])
        return Remote({"h": 0, "name": name}, "attribute", name)

    stand_in.__getattr__ = __getattr__  # type: ignore[method-assign]
    return stand_in
