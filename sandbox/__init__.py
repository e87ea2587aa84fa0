"""The isolated runner of untrusted, model-written code and tests.

Public surface:

- :func:`run_tests` — run a test module against a code module, under pytest with
  coverage, in the sandbox; returns a :class:`~sandbox.report.ValidationReport`. The
  code runs in a process of its own and cannot write its verdict;
  :func:`~sandbox.report.strong_pass` and :func:`~sandbox.report.judging_summary` say
  how strong a pass is.
- :func:`run_command` — run a tool (ruff, say) on untrusted files in the sandbox;
  returns a :class:`~sandbox.report.CommandResult`.
- :class:`SandboxLimits` — time, memory, process, file and output limits, and
  whether full isolation is required.
- :func:`detect_tier` — which isolation tier this machine supports, and why.
- :func:`require_isolation` — the tier runs will use, or :class:`IsolationUnavailable`
  when it is weaker than demanded (full isolation unless a weaker tier is asked for
  by name); cheap, so commands call it before loading a model.
- :class:`IsolationUnavailable` — raised when the demanded isolation is missing.

Generated code never runs in the calling process.
"""

from sandbox.limits import SandboxLimits
from sandbox.report import (
    CommandResult,
    TestFailure,
    ValidationReport,
    judged_out_of_process,
    judging_summary,
    strong_pass,
)
from sandbox.runner import run_command, run_tests
from sandbox.tiers import IsolationUnavailable, TierInfo, detect_tier, require_isolation

__all__ = [
    "CommandResult",
    "IsolationUnavailable",
    "SandboxLimits",
    "TestFailure",
    "TierInfo",
    "ValidationReport",
    "detect_tier",
    "judged_out_of_process",
    "judging_summary",
    "require_isolation",
    "run_command",
    "run_tests",
    "strong_pass",
]
