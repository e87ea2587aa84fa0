"""The tester: pytest tests from the task and the code's interface.

The tester sees the task and the code's *interface* (names and signatures) but never
its bodies, so a bug in the code cannot be copied into the tests that are meant to
catch it (``Settings.tester_sees_code`` turns this off, for measurement).
"""

from __future__ import annotations

from analysis.interface import interface_of, public_names, reconcile_tests
from analysis.parsing import extract_code
from analysis.testcases import GIVEN_TESTS_HEADER, examples_as_tests, tidy_tests
from roles.context import Ask, CallContext, call_model

__all__ = ["LEAN_TESTS", "TESTS", "fit_tests", "task_tests", "tester_ask", "tester_overrides", "write_tests"]

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

    ``previous_error`` says why the last tests could not run, so a retry differs. The
    call is :func:`tester_ask`'s, its tests fitted to ``code`` by :func:`fit_tests`.
    """
    tester = tester_ask(ctx, task=task, shown=code, user_tests=user_tests, previous_error=previous_error)
    return fit_tests(ctx, tester.read(tester.ask(ctx)), task=task, code=code, user_tests=user_tests)


def tester_ask(
    ctx: CallContext, *, task: str, shown: str, user_tests: str | None = None, previous_error: str | None = None
) -> Ask[str]:
    """The tester's call for tests of ``shown``'s interface, as an :class:`Ask`; it reads the bare test code.

    ``shown`` is the code under test, or, for a stub-shaped task, the task itself (its
    signature is the interface the code must keep, so the tests can be written while the
    code is: ``Settings.tests_with_code``). ``Settings.tester_sees_code`` shows the
    tester all of ``shown`` instead of its interface (a lever measured by the benchmark;
    off, a bug in the code cannot leak into its tests); ``Settings.lean_tests`` asks for
    fewer claims. For a task that gives tests of its own (examples, or ``user_tests``),
    ``Settings.tester_tokens_with_examples`` caps the reply's length (:func:`tester_overrides`).
    """
    settings = ctx.settings
    retry_note = (
        f"Your previous tests could not run ({previous_error}). Keep them short and complete.\n"
        if previous_error
        else ""
    )
    slots = {
        "task": task,
        "interface": shown.strip() if settings.tester_sees_code else interface_of(shown),
        "names": ", ".join(public_names(shown)) or "*",
        "how_many": LEAN_TESTS if settings.lean_tests else TESTS,
        "retry_note": retry_note,
    }
    overrides = tester_overrides(ctx, task=task, shown=shown, user_tests=user_tests)
    return Ask(
        lambda call_ctx: call_model(call_ctx, "tester", slots, overrides=overrides),
        lambda reply: extract_code(reply) or "",
    )


def tester_overrides(ctx: CallContext, *, task: str, shown: str, user_tests: str | None) -> dict[str, object]:
    """The tester's per-call settings: a cap on its reply's tokens when the task gives tests of its own.

    ``Settings.tester_tokens_with_examples`` (0: none). The task's examples or given tests
    judge the code first, so the model's tests matter less there; a reply cut at the cap
    loses only its unfinished last test (:func:`analysis.parsing.extract_code` trims it).
    """
    cap = ctx.settings.tester_tokens_with_examples
    if cap and task_tests(task, shown, user_tests, examples=ctx.settings.task_examples):
        return {"max_new_tokens": cap}
    return {}


def fit_tests(ctx: CallContext, tests: str, *, task: str, code: str, user_tests: str | None) -> str:
    """The tester's ``tests`` pointed at ``code`` and tidied, then the task's own tests; '' when there are none.

    With ``Settings.task_examples``, the task's own doctest examples are added as tests;
    tests given with the task come last (:func:`task_tests`).
    """
    parts = [tidy_tests(reconcile_tests(tests, code))] if tests else []
    if given := task_tests(task, code, user_tests, examples=ctx.settings.task_examples):
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
        parts.append(f"{GIVEN_TESTS_HEADER}\n" + reconcile_tests(user_tests, code))
    return "\n\n".join(parts)
