"""A second opinion on failing tests, used by refine before it touches the code.

A small model's own tests are often wrong. When a one-claim test
(``assert f(x) == literal``) fails, the code and the test disagree; the arbiter
breaks the tie by execution. It asks the model for an independent *reference
implementation* from the task and the interface alone (it sees neither the code
nor the tests), runs each disputed call on it in the sandbox, and sets a test
aside only when the reference returns what the code returned and not what the test
expected — two independent votes against the test's one. Otherwise the test stands
and the code is refined. Every setting-aside is recorded in the run's
``disputed_tests``, so the result says which claims were dropped and why.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from analysis.interface import interface_of
from analysis.parsing import extract_code
from analysis.testcases import EXAMPLE_PREFIX, Claim, claim_of, literal, observed_value, test_function_name
from roles.context import CallContext, call_model
from sandbox import SandboxLimits, run_tests
from sandbox.report import TestFailure

if TYPE_CHECKING:
    from graph.state import DisputedTest

__all__ = ["MAX_ARBITRATIONS", "find_disputed_tests"]

MAX_ARBITRATIONS = 8


def _claims_worth_checking(tests: str, failures: list[TestFailure]) -> list[tuple[Claim, object]]:
    """Failing one-claim tests whose observed and expected values are both readable and differ."""
    claims: list[tuple[Claim, object]] = []
    for failure in failures:
        claim = claim_of(tests, failure["test"])
        if claim is None or claim.test.startswith(EXAMPLE_PREFIX):  # the task's own words stand
            continue
        seen_ok, seen = observed_value(failure["message"], claim, failure["traceback"])
        expected_ok, expected = literal(claim.expected)
        if seen_ok and expected_ok and seen != expected:
            claims.append((claim, seen))
    return claims[:MAX_ARBITRATIONS]


def _vote_tests(claims: list[tuple[Claim, object]]) -> str:
    """One test per claim that passes when the reference sides with the code against the test."""
    parts = ["from solution import *  # noqa: F403\n"]
    for index, (claim, seen) in enumerate(claims):
        parts.append(
            f"def test_vote_{index}():\n"
            f"    value = {claim.call}\n"
            f"    assert value == {seen!r} and value != {claim.expected}\n"
        )
    return "\n\n".join(parts)


def find_disputed_tests(
    ctx: CallContext, *, task: str, code: str, tests: str, failures: list[TestFailure], iteration: int
) -> list[DisputedTest]:
    """Return the failing tests that an independent reference implementation contradicts.

    The reference's votes run in the sandbox under ``Settings.test_timeout_s``.
    """
    claims = _claims_worth_checking(tests, failures)
    if not claims:
        return []
    reply = call_model(ctx, "arbiter", {"task": task, "interface": interface_of(code)})
    reference = extract_code(reply)
    if not reference:
        return []
    limits = SandboxLimits(wall_timeout_s=ctx.settings.test_timeout_s)
    report = run_tests(reference, _vote_tests(claims), limits=limits)
    ctx.usage.sandbox_seconds += report["duration_s"]
    ran = report["passed_count"] + report["failed_count"] + report["errored_count"]
    if ran != len(claims):  # the reference did not even import: no opinion
        return []
    against = {test_function_name(f["test"]) for f in report["failures"]}
    return [
        {
            "test": claim.test,
            "call": claim.call,
            "expected": claim.expected,
            "observed": repr(seen),
            "reference": "agrees with the code",
            "iteration": iteration,
        }
        for index, (claim, seen) in enumerate(claims)
        if f"test_vote_{index}" not in against
    ]
