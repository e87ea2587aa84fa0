"""The isolated runner of untrusted, model-written code and tests.

Public surface:

- :func:`run_tests` — run a test module against a code module, under pytest with
  coverage, in the sandbox; returns a :class:`~sandbox.report.ValidationReport`.
- :func:`run_command` — run a tool (ruff, say) on untrusted files in the sandbox;
  returns a :class:`~sandbox.report.CommandResult`.
- :class:`SandboxLimits` — time, memory, process, file and output limits, and
  whether full isolation is required.
- :func:`detect_tier` — which isolation tier this machine supports, and why.
- :class:`IsolationUnavailable` — raised when the demanded isolation is missing.

Generated code never runs in the calling process.
"""

from sandbox.limits import SandboxLimits
from sandbox.report import CommandResult, TestFailure, ValidationReport
from sandbox.runner import run_command, run_tests
from sandbox.tiers import IsolationUnavailable, TierInfo, detect_tier

__all__ = [
    "CommandResult",
    "IsolationUnavailable",
    "SandboxLimits",
    "TestFailure",
    "TierInfo",
    "ValidationReport",
    "detect_tier",
    "run_command",
    "run_tests",
]
