"""The refiner: new code from the current code's actual problems.

The refiner sees the task, the current code, the failing tests' trimmed tracebacks and
the reviewer's recommendations — the real errors, which beat a separate reflection
step. Its code is cleaned like the generator's: example usage is dropped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from analysis.interface import strip_demo_code
from analysis.parsing import extract_code
from roles.context import CallContext, call_model
from sandbox.report import ValidationReport

if TYPE_CHECKING:
    from graph.state import ReviewReport

__all__ = ["MAX_FAILURES", "MAX_TRACEBACK_CHARS", "NO_PROBLEMS", "describe_problems", "fix_code"]

MAX_FAILURES = 3
MAX_TRACEBACK_CHARS = 700
NO_PROBLEMS = "- The review asks for clearer, simpler code."
"""The problem list when nothing more specific is known."""


def describe_problems(validation: ValidationReport, review: ReviewReport | None, *, details: bool = True) -> str:
    """Turn a validation and a review into the short problem list the refiner reads.

    Without ``details`` the refiner learns only how many tests failed, not which or how
    (a lever the benchmark measures: what the real failures are worth).
    """
    lines: list[str] = []
    if not details and not validation["passed"]:
        ran = validation["passed_count"] + validation["failed_count"] + validation["errored_count"]
        lines.append(f"- {ran - validation['passed_count']} of {ran} tests failed.")
        validation = {**validation, "error": None, "failures": []}
    if validation["error"] and not validation["failures"]:
        lines.append(f"- The tests could not pass: {validation['error']}")
    for failure in validation["failures"][:MAX_FAILURES]:
        trace = failure["traceback"].strip()[-MAX_TRACEBACK_CHARS:]
        lines.append(f"- Test `{failure['test']}` failed: {failure['message']}\n```\n{trace}\n```")
    hidden = len(validation["failures"]) - MAX_FAILURES
    if hidden > 0:
        lines.append(f"- {hidden} more test(s) failed the same way or similarly.")
    if review:
        lines.extend(f"- Review: {rec}" for rec in review["recommendations"][:5])
    return "\n".join(lines) or NO_PROBLEMS


def fix_code(
    ctx: CallContext, *, task: str, code: str, problems: str, overrides: dict[str, object] | None = None
) -> str | None:
    """Ask the refiner for a fixed version of ``code``; ``None`` when its reply holds no code.

    ``problems`` is the list the refiner reads (see :func:`describe_problems`).
    ``overrides`` are per-call generation settings (a temperature and seed, to re-ask).
    """
    reply = call_model(
        ctx,
        "refiner",
        {"task": task, "code": code.strip() or "# (no code yet)", "problems": problems},
        overrides=overrides,
    )
    fixed = extract_code(reply)
    return strip_demo_code(fixed) if fixed else None
