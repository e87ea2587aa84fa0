"""pytest plugin loaded into every sandboxed run, and the only one besides pytest's own.

It does four things:

1. **Keeps the code under test out of this process** (judge mode ``isolated``, the
   default). ``import <module>`` gives a stand-in whose names refer to objects in the
   code's own process (``remote.py``); results cross as plain data. Once collection
   ends, the test file is deleted (its lines stay in ``linecache`` for tracebacks), so
   the code's process, started only then, never sees the tests' expected values. In
   judge mode ``in_process`` (the harness's second pass over tests that passed a
   function or another non-plain value to the code) the module is imported for real,
   and those tests are named in the report as weaker evidence.
2. **Sends the results to the harness on a pipe** that only this process holds (its
   descriptor number in :data:`RESULT_FD_ENV`); the code's process is started without
   it, and this process is made undumpable, so no other process can write the verdict.
   There is no report file to forge.
3. **Closes the plain routes by which the tests could change how pytest reports
   them**: a ``pytest_plugins`` list in the test module, and plugins registered once
   collection has begun. Conftest files are already off (``--noconftest``).
4. Asks the code's process for the coverage it measured (a review hint, never a
   verdict: that process could lie about it).
"""

from __future__ import annotations

import importlib.abc
import json
import linecache
import os
from types import ModuleType
from typing import Any

import pytest

RESULT_FD_ENV = "STARCODER_SANDBOX_RESULT_FD"
JUDGE_ENV = "STARCODER_SANDBOX_JUDGE"  # "isolated" (default) or "in_process"
MODULE_ENV = "STARCODER_SANDBOX_MODULE"
CODE_DIR_ENV = "STARCODER_SANDBOX_CODE_DIR"
_OWN_ENV = (RESULT_FD_ENV, JUDGE_ENV, MODULE_ENV, CODE_DIR_ENV, "PYTHONPATH")
LONGREPR_CHARS = 6000
MAX_TESTS = 500

_tampering: list[str] = []
_collecting = False
_tests: dict[str, dict[str, Any]] = {}
_collect_errors: list[str] = []
_import_problem: str | None = None


def _isolated() -> bool:
    return os.environ.get(JUDGE_ENV, "isolated") != "in_process"


def make_undumpable() -> None:
    """Keep other processes of the same uid from reading this one's memory or descriptors."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 4
    except (OSError, AttributeError):
        pass


def _refuse_test_plugins(config: pytest.Config) -> None:
    manager = config.pluginmanager
    consider_module = manager.consider_module

    def guarded(mod: ModuleType) -> None:
        if getattr(mod, "pytest_plugins", None):
            _tampering.append(f"{mod.__name__} sets pytest_plugins")
            raise pytest.UsageError("pytest_plugins is not allowed in sandboxed tests")
        consider_module(mod)

    manager.consider_module = guarded  # type: ignore[method-assign]


class _StandInFinder(importlib.abc.Loader):
    """Answers ``import <module>`` with the stand-in (a syntax error surfaces there)."""

    def __init__(self, module: str, code_dir: str) -> None:
        self.module = module
        self.code_dir = code_dir

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        import importlib.util

        return importlib.util.spec_from_loader(name, self) if name == self.module else None

    def create_module(self, spec: Any) -> ModuleType:
        import remote

        return remote.stand_in_module(self.module, self.code_dir)

    def exec_module(self, module: ModuleType) -> None:
        return None


def _install_stand_in() -> None:
    """Make ``import <module>`` give the stand-in, and prepare the code's process."""
    import sys

    import remote

    module, code_dir = os.environ[MODULE_ENV], os.environ[CODE_DIR_ENV]
    env = {k: v for k, v in os.environ.items() if k not in _OWN_ENV}
    lib_dir = os.path.dirname(os.path.abspath(__file__))
    remote.PROCESS = remote.CodeProcess(lib_dir, code_dir, module, env, os.getcwd())
    sys.meta_path.insert(0, _StandInFinder(module, code_dir))


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Protect this process, refuse ``pytest_plugins``, and put the stand-in in place."""
    make_undumpable()
    _refuse_test_plugins(config)
    if _isolated():
        _install_stand_in()


@pytest.hookimpl(tryfirst=True)
def pytest_collection(session: pytest.Session) -> None:
    """Mark the start of collection: no plugin may be registered from here on."""
    global _collecting
    _collecting = True


def pytest_plugin_registered(plugin: Any, plugin_name: str, manager: Any) -> None:
    """Record any plugin registered once the tests' own code can run."""
    if _collecting:
        _tampering.append(f"plugin registered during the run: {plugin_name or plugin!r}"[:200])


def _hide_tests(session: pytest.Session) -> None:
    """Delete the collected test files, keeping their lines for tracebacks."""
    for path in {str(item.path) for item in session.items} | set(session.config.args):
        path = path.split("::", 1)[0]
        try:
            with open(path, encoding="utf-8") as handle:
                lines = handle.read().splitlines(keepends=True)
            linecache.cache[path] = (len(lines), None, lines, path)  # no mtime: never re-read
            os.unlink(path)
        except OSError:
            pass


def pytest_collection_finish(session: pytest.Session) -> None:
    """Hide the tests, then start the code's process; an import failure stops the run."""
    global _import_problem
    if not _isolated():
        return
    import remote

    _hide_tests(session)
    assert remote.PROCESS is not None
    remote.PROCESS.allowed = True
    if not session.items:
        return
    try:
        remote.PROCESS.ensure()
    except (remote.ImportFailed, remote.CodeProcessEnded) as exc:
        raised = remote.PROCESS.import_error or {}
        _import_problem = f"import failed: {exc}"
        if raised.get("traceback"):
            _collect_errors.append(str(raised["traceback"]))
        session.items.clear()


def pytest_collectreport(report: pytest.CollectReport) -> None:
    """Keep what kept a test file from being collected."""
    if report.failed:
        _collect_errors.append(str(report.longreprtext)[-LONGREPR_CHARS:])


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_logstart(nodeid: str, location: Any) -> None:
    """Start each test with no crossing problem recorded."""
    if _isolated():
        import remote

        remote.NEEDS_IN_PROCESS.clear()


def _crash_message(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return str(crash.message)
    if isinstance(report.longrepr, tuple) and len(report.longrepr) == 3:
        return str(report.longrepr[2])  # a skip: (path, line, reason)
    return ""


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Record each test's outcome, phase by phase, as the harness will count it."""
    entry = _tests.setdefault(report.nodeid, {"nodeid": report.nodeid, "outcome": "passed"})
    if len(_tests) > MAX_TESTS:
        _tests.pop(report.nodeid)
        return
    if report.failed:
        entry["outcome"] = "failed" if report.when == "call" else "errored"
        entry["message"] = _crash_message(report)[:500]
        entry["longrepr"] = str(report.longreprtext)[-LONGREPR_CHARS:]
    elif report.skipped and entry["outcome"] == "passed":
        entry["outcome"] = "skipped"
        entry["message"] = _crash_message(report)[:500]
    if _isolated():
        import remote

        if remote.NEEDS_IN_PROCESS:
            entry["needs_in_process"] = remote.NEEDS_IN_PROCESS[0][:300]


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Send the results, with the coverage, to the harness on the result pipe."""
    coverage = None
    if _isolated():
        import remote

        if remote.PROCESS is not None:
            coverage = remote.PROCESS.finish()
            remote.PROCESS.stop()
    result = {
        "exitstatus": int(exitstatus),
        "tests": list(_tests.values()),
        "collect_errors": _collect_errors[:3],
        "import_problem": _import_problem,
        "tampering": _tampering[:10],
        "coverage": coverage,
    }
    fd = os.environ.get(RESULT_FD_ENV)
    if not fd:
        return
    data = json.dumps(result).encode("utf-8")
    while data:
        data = data[os.write(int(fd), data) :]
    os.close(int(fd))
