"""A second opinion on failing tests, used by refine before it touches the code.

A small model's own tests are often wrong. When a one-claim test fails, the code and
the test disagree; the arbiter — the model asked afresh, from the task alone and
without seeing the code or the test — breaks the tie. A test is set aside only when
the arbiter's value equals what the code actually returned (two votes against the
test's one); otherwise it stands and the code is refined. Every setting-aside is
recorded in the run's ``disputed_tests`` so the result says which claims were dropped.
"""

from __future__ import annotations

from langchain_core.runnables import RunnableConfig

from analysis.parsing import first_json_object
from analysis.testcases import claim_of, literal, observed_value
from graph.state import DisputedTest
from nodes.common import ModelProvider, Usage, call_model
from sandbox.report import TestFailure

__all__ = ["MAX_ARBITRATIONS", "find_disputed_tests"]

MAX_ARBITRATIONS = 4


def _arbiter_value(
    model: ModelProvider, task: str, call: str, config: RunnableConfig | None, usage: Usage
) -> tuple[bool, object]:
    reply = call_model(
        model,
        "arbiter",
        system="arbiter_system",
        user_prompt="arbiter_user",
        slots={"task": task, "call": call},
        config=config,
        usage=usage,
    )
    obj = first_json_object(reply) or {}
    value = obj.get("value")
    if isinstance(value, str):
        return literal(value)
    return (value is not None or "value" in obj), value


def find_disputed_tests(
    model: ModelProvider,
    *,
    task: str,
    tests: str,
    failures: list[TestFailure],
    iteration: int,
    config: RunnableConfig | None,
    usage: Usage,
) -> list[DisputedTest]:
    """Ask the arbiter about up to :data:`MAX_ARBITRATIONS` failing one-claim tests."""
    disputed: list[DisputedTest] = []
    asked = 0
    for failure in failures:
        claim = claim_of(tests, failure["test"])
        if claim is None or asked >= MAX_ARBITRATIONS:
            continue
        seen_ok, seen = observed_value(failure["message"], claim)
        expected_ok, expected = literal(claim.expected)
        if not (seen_ok and expected_ok) or seen == expected:
            continue
        asked += 1
        ok, value = _arbiter_value(model, task, claim.call, config, usage)
        if ok and value == seen and value != expected:
            disputed.append(
                DisputedTest(
                    test=claim.test, call=claim.call, expected=claim.expected,
                    observed=repr(seen), arbiter=repr(value), iteration=iteration,
                )
            )  # fmt: skip
    return disputed
