"""One typed configuration object for a run, with documented defaults.

Every field falls back to an environment variable (``STARCODER_<FIELD>``), and a
request can override any field through ``config["configurable"]``. Nothing here is
a module global that changes behaviour.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig

__all__ = ["Settings", "data_home"]


def data_home() -> Path:
    """Where run records and checkpoints live: ``$STARCODER_AGENTS_HOME`` or ``~/.starcoder-agents``."""
    return Path(os.environ.get("STARCODER_AGENTS_HOME", Path.home() / ".starcoder-agents"))


def _env(name: str, default: Any) -> Any:
    raw = os.environ.get(f"STARCODER_{name.upper()}")
    if raw is None:
        return default
    if isinstance(default, bool):
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    return type(default)(raw)


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Options of the code loop.

    Attributes:
        max_iterations: Refinements allowed after the first attempt (the budget).
        min_score: Review score (0-10) a passing attempt needs to stop early.
        review_failing: Ask the model to review code whose tests fail (off: the
            failures already say what to fix, and the call costs tokens).
        arbitrate_tests: Before refining, check failing one-claim tests against an
            independent reference implementation, and set aside those it contradicts
            when it agrees with the code (see ``nodes.arbiter``).
        task_examples: Add the task's own doctest examples (``>>> f(1)`` / ``2``) to the
            tests; they are the task's words, so the arbiter never sets them aside.
        candidates: Code candidates for the first attempt. Above 1, when the first
            (greedy) code fails its tests, up to ``candidates - 1`` more are sampled and
            the one passing the most task examples, then tests, is kept (see
            ``nodes.candidates``). 1 turns this off.
        resample_repeats: When the refiner hands back code the loop already tried (a
            small model under greedy decoding often does), ask it again with sampling,
            then ask the generator for a fresh sampled candidate, so an attempt is never
            spent on the same code twice (see ``nodes.candidates``).
        tester_sees_code: Show the tester the whole code rather than its interface (a
            lever for measurement; off, a bug cannot be copied into the tests).
        failure_details: Give the refiner the failing tests' names, assertions and
            tracebacks (off: only how many failed; a lever for measurement).
        test_timeout_s: Wall-clock limit for one sandboxed test run.
        results_dir: Folder for the JSON record of each finished run.
    """

    max_iterations: int = field(default_factory=lambda: _env("max_iterations", 3))
    min_score: float = field(default_factory=lambda: _env("min_score", 7.0))
    review_failing: bool = field(default_factory=lambda: _env("review_failing", False))
    arbitrate_tests: bool = field(default_factory=lambda: _env("arbitrate_tests", True))
    task_examples: bool = field(default_factory=lambda: _env("task_examples", True))
    candidates: int = field(default_factory=lambda: _env("candidates", 3))
    resample_repeats: bool = field(default_factory=lambda: _env("resample_repeats", True))
    tester_sees_code: bool = field(default_factory=lambda: _env("tester_sees_code", False))
    failure_details: bool = field(default_factory=lambda: _env("failure_details", True))
    test_timeout_s: float = field(default_factory=lambda: _env("test_timeout_s", 30.0))
    results_dir: str = field(default_factory=lambda: _env("results_dir", str(data_home() / "runs")))

    def merged(self, config: RunnableConfig | None) -> Settings:
        """Return a copy with the fields found in ``config["configurable"]`` applied."""
        configurable = (config or {}).get("configurable") or {}
        names = {f.name for f in fields(self)}
        overrides = {k: v for k, v in configurable.items() if k in names and v is not None}
        return dataclasses.replace(self, **overrides) if overrides else self
