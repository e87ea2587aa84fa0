"""pytest plugin loaded into every sandboxed run, and the only one besides pytest's own.

It closes the plain routes by which generated tests could change how pytest reports
them: a ``pytest_plugins`` list in the test module, and plugins registered once
collection has begun (from a test, a fixture, or the code under test). Conftest files
are already off (``--noconftest``), and hook functions defined in a test module are
never registered by pytest. When the session ends, the plugin writes a small JSON
file saying so; the harness trusts a report only if that file exists and lists no
tampering.

Code that runs inside the pytest process can always forge its own results with
enough effort; this plugin is a guard against the usual tricks, and the sandbox, not
this plugin, is what keeps the host safe.

It also measures the coverage of the code module at the end of the session.
"""

from __future__ import annotations

import io
import json
import os
from types import ModuleType
from typing import Any

import pytest

SENTINEL_ENV = "STARCODER_SANDBOX_SENTINEL"
COVERAGE_INCLUDE_ENV = "STARCODER_SANDBOX_COVERAGE_OF"

_tampering: list[str] = []
_collecting = False


def _refuse_test_plugins(config: pytest.Config) -> None:
    manager = config.pluginmanager
    consider_module = manager.consider_module

    def guarded(mod: ModuleType) -> None:
        if getattr(mod, "pytest_plugins", None):
            _tampering.append(f"{mod.__name__} sets pytest_plugins")
            raise pytest.UsageError("pytest_plugins is not allowed in sandboxed tests")
        consider_module(mod)

    manager.consider_module = guarded  # type: ignore[method-assign]


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Refuse ``pytest_plugins`` lists in test modules."""
    _refuse_test_plugins(config)


@pytest.hookimpl(tryfirst=True)
def pytest_collection(session: pytest.Session) -> None:
    """Mark the start of collection: no plugin may be registered from here on."""
    global _collecting
    _collecting = True


def pytest_plugin_registered(plugin: Any, plugin_name: str, manager: Any) -> None:
    """Record any plugin registered once the tests' own code can run."""
    if _collecting:
        _tampering.append(f"plugin registered during the run: {plugin_name or plugin!r}"[:200])


def _coverage_percent() -> float | None:
    """Percent of the code module's statements run so far, from the running coverage.py.

    Measured here, where coverage.py is already loaded, rather than by reading its data
    file in another process: that would cost a second import of coverage.py per run.
    """
    include = os.environ.get(COVERAGE_INCLUDE_ENV)
    try:
        import coverage

        cov = coverage.Coverage.current()
        if cov is None or not include:
            return None
        cov.stop()
        return round(float(cov.report(file=io.StringIO(), include=[include])), 2)
    except Exception:  # noqa: BLE001 - no data (module never imported), or a broken module
        return None


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Write the sentinel file that says the session ended normally, with the coverage."""
    path = os.environ.get(SENTINEL_ENV)
    if not path:
        return
    result = {
        "exitstatus": int(exitstatus),
        "tampering": _tampering[:10],
        "coverage": _coverage_percent(),
    }
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(result, handle)
