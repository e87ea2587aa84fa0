"""The tester: pytest tests from the task and the code's interface.

The tester sees the task and the code's *interface* (names and signatures) but never
its bodies, so a bug in the code cannot be copied into the tests that are meant to
catch it (``Settings.tester_sees_code`` turns this off, for measurement).
"""

from __future__ import annotations

from analysis.interface import interface_of, public_names, reconcile_tests
from analysis.parsing import extract_code
from analysis.testcases import examples_as_tests, tidy_tests
from roles.context import CallContext, call_model

__all__ = ["LEAN_TESTS", "TESTS", "task_tests", "write_tests"]

TESTS = "4 to 6 short test functions named test_..., each with one to three plain\n  assert statements"
LEAN_TESTS = "3 or 4 short test functions named test_..., each with exactly one plain\n  assert statement"
"""What the tester is asked for (``Settings.lean_tests`` picks the second)."""


def write_tests(
    ctx: CallContext,
    *,
    task: str,
    code: str,
    user_tests: str | None,
    previous_error: str | None = None,
) -> str:
    """Ask the tester for pytest tests of ``code``'s interface; returns '' when it wrote none.

    ``previous_error`` says why the last tests could not run, so a retry differs. With
    ``Settings.task_examples``, the task's own doctest examples are added as tests too;
    ``Settings.tester_sees_code`` shows the tester the whole code instead of its
    interface (a lever measured by the benchmark; off, a bug in the code cannot leak
    into its tests); ``Settings.lean_tests`` asks for fewer claims. Tests given with the
    task come last.
    """
    settings = ctx.settings
    names = public_names(code)
    retry_note = (
        f"Your previous tests could not run ({previous_error}). Keep them short and complete.\n"
        if previous_error
        else ""
    )
    reply = call_model(
        ctx,
        "tester",
        {
            "task": task,
            "interface": code.strip() if settings.tester_sees_code else interface_of(code),
            "names": ", ".join(names) or "*",
            "how_many": LEAN_TESTS if settings.lean_tests else TESTS,
            "retry_note": retry_note,
        },
    )
    tests = extract_code(reply) or ""
    parts = [tidy_tests(reconcile_tests(tests, code))] if tests else []
    if given := task_tests(task, code, user_tests, examples=settings.task_examples):
        parts.append(given)
    return "\n\n".join(parts)


def task_tests(task: str, code: str, user_tests: str | None, *, examples: bool = True) -> str:
    """The tests the task itself gives, fitted to ``code``'s names; '' when it gives none.

    They are the task's own ``>>>`` examples (with ``examples``) and the tests given with
    it, each under a comment saying where it came from.
    """
    parts = []
    if examples and (found := examples_as_tests(task, public_names(code))):
        parts.append("# Examples given in the task\n" + reconcile_tests(found, code))
    if user_tests:
        parts.append("# Tests given with the task\n" + reconcile_tests(user_tests, code))
    return "\n\n".join(parts)
