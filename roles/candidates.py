"""Several candidates ranked by execution, for the first attempt.

When the first (greedy) code fails its tests, more candidates are sampled from the
same prompt and each runs against the same tests in the sandbox. The one that passes
the most of the task's own examples wins, then the most tests overall; ties keep the
earlier candidate, so the greedy one stands unless a sample does strictly better.
Sampling stops as soon as a candidate passes everything; with
``Settings.candidate_batch`` above 1 and a model that decodes calls together, they are
drawn in waves of that many at once (two decoded together cost about 1.1x one on a
2-core CPU), checked in the same order, and sampling stops after the wave. With
``Settings.candidates_on_example_failure``, sampling starts only when the first code
fails one of the task's own examples (any test, for a task without examples). With
``Settings.examples_first``, the generate node calls this before the tester has written
anything, with the task's own tests alone (``task_tests_only``), as ``best_of_k`` ranks.
With ``Settings.agreement_ranking``, a task that gives no tests of its own has its
candidates ranked by how many of them agree (:func:`by_agreement`, after CodeT), not by
the model's tests alone.

The same sampling keeps refinement moving: when the refiner hands back code the loop
already tried, :func:`first_new` asks again with sampling until something new comes.
"""

from __future__ import annotations

import ast
import time
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from analysis.parsing import parse_python, same_program
from analysis.testcases import EXAMPLE_PREFIX, GIVEN_TESTS_HEADER, has_examples, test_function_name
from roles.checks import check_attempt
from roles.context import CallContext, decodes_together
from sandbox import SandboxLimits
from sandbox.report import ValidationReport, judged_out_of_process, strong_pass

if TYPE_CHECKING:  # the graph package imports the nodes, which import this module
    from graph.config import Settings
    from graph.state import Attempt

__all__ = [
    "CANDIDATE_TEMPERATURE",
    "Pick",
    "best_attempt",
    "by_agreement",
    "candidate_overrides",
    "fails_an_example",
    "first_new",
    "has_task_tests",
    "only_own_tests_fail",
    "pick_candidate",
    "rank",
    "tried_before",
    "wave_size",
]

CANDIDATE_TEMPERATURE = 0.7


@dataclass(frozen=True)
class Pick:
    """The chosen code, which candidate it was (0: the greedy one), and how many were tried.

    ``codes``: every code drawn (checked or not), the samples in order and the greedy one
    last, for :func:`roles.rivals.contest`.
    """

    code: str
    index: int
    tried: int
    score: tuple[int, int, int]
    codes: tuple[str, ...] = ()


def rank(report: ValidationReport, tests: str) -> tuple[int, int, int]:
    """(task examples passed, tests passed judged outside the code, all tests passed): higher is better.

    Tests judged in the code's own process are weaker evidence: they count only last.
    """
    examples = tests.count(f"def {EXAMPLE_PREFIX}")
    failed_examples = sum(1 for f in report["failures"] if EXAMPLE_PREFIX in f["test"])
    if report["passed_count"] + report["failed_count"] + report["errored_count"] == 0:
        failed_examples = examples  # nothing ran (import failed, timed out): no example passed
    return max(0, examples - failed_examples), judged_out_of_process(report), report["passed_count"]


def best_attempt(attempts: list[Attempt]) -> Attempt:
    """Return the attempt to hand back: passing, then examples and tests passed, review score, earliest."""
    if not attempts:
        raise ValueError("finalize reached with no attempts recorded")
    return max(
        attempts,
        key=lambda a: (
            a["validation"]["passed"],
            strong_pass(a["validation"]),
            rank(a["validation"], a["tests"]),
            a["review"]["score"] if a["review"] else 0.0,
            -a["iteration"],
        ),
    )


def _fails_an_example(score: tuple[int, int, int], tests: str) -> bool:
    """Whether code with ``score`` (see :func:`rank`) fails one of the task's examples.

    A task without examples has only other tests to go by: any failure counts.
    """
    examples = tests.count(f"def {EXAMPLE_PREFIX}")
    return examples == 0 or score[0] < examples


def _given_test_names(user_tests: str | None) -> set[str]:
    """Names of the test functions given with the task (``user_tests``)."""
    try:
        tree = parse_python(user_tests or "")
    except (SyntaxError, ValueError):
        return set()
    return {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name.startswith("test")}


def only_own_tests_fail(report: ValidationReport, tests: str, user_tests: str | None) -> bool:
    """Whether the code passes every test the task itself gives, and fails only tests the model wrote.

    The task's tests are its examples and the tests given with it. False when the task
    gives none, when nothing ran (an import error, a time-out), when one of them fails
    or was judged in the code's own process (weaker evidence), or when nothing fails.
    """
    given = _given_test_names(user_tests)
    ran = report["passed_count"] + report["failed_count"] + report["errored_count"]
    if not (has_examples(tests) or given) or ran == 0 or report["timed_out"] or not report["failures"]:
        return False

    def the_tasks(name: str) -> bool:
        name = test_function_name(name)
        return name.startswith(EXAMPLE_PREFIX) or name in given

    if any(the_tasks(name) for name in report.get("in_process_tests", [])):
        return False
    return not any(the_tasks(f["test"]) for f in report["failures"])


def pick_candidate(
    ctx: CallContext,
    code: str,
    tests: str,
    *,
    sample: Callable[[list[dict[str, object]]], list[str | None]],
    task_tests_only: bool = False,
    first_wave: Sequence[str | None] | None = None,
) -> Pick:
    """Return the best of ``code`` and up to ``Settings.candidates - 1`` alternatives from ``sample``.

    ``sample(overrides)`` asks the generator again once per entry, with its generation
    settings (a temperature and a seed per candidate, so a run repeats), and returns the
    codes (``None`` for a reply without code) in the same order. ``task_tests_only``: the
    tests are all the task's own (``Settings.examples_first``), so any failure is worth
    sampling for, whatever ``Settings.candidates_on_example_failure`` says. ``first_wave``:
    the first wave's codes, when they were drawn already (for the overrides of
    :func:`candidate_overrides`'s first wave, beside the tester's call:
    ``Settings.tests_with_candidates``); ``sample`` draws the waves after it.

    With ``Settings.candidate_batch`` above 1 and a model that decodes calls together,
    the candidates are asked for in waves of that many at once
    (:func:`roles.context.call_together`), checked side by side and ranked in order;
    after a wave, sampling stops if one passed everything. One at a time, it stops at the first that does.
    Either way the same candidate wins for the same samples.
    """
    settings, usage = ctx.settings, ctx.usage
    report, _ = check_attempt(code, tests, settings, ranking=True)
    usage.sandbox_seconds += report["duration_s"]
    best = Pick(code=code, index=0, tried=1, score=rank(report, tests))
    if report["passed"] or not tests.strip():
        return best
    if settings.candidates_on_example_failure and not task_tests_only and not _fails_an_example(best.score, tests):
        return best
    agree = settings.agreement_ranking and not has_task_tests(tests)
    checked: dict[str, ValidationReport] = {code: report}
    drawn: list[tuple[int, str, ValidationReport]] = [(0, code, report)]
    overrides = candidate_overrides(settings)
    size = wave_size(ctx)
    sampled: list[str] = []
    for start in range(0, len(overrides), size):
        wave = overrides[start : start + size]
        best = replace(best, tried=start + len(wave) + 1)
        done = False
        codes = list(first_wave) if start == 0 and first_wave is not None else sample(wave)
        if len(codes) != len(wave):
            raise ValueError(f"a wave of {len(wave)} candidates came back with {len(codes)} codes")
        checked.update(_check_together([c for c in codes if c], tests, ctx, skip=checked))
        for index, other in enumerate(codes, start=start + 1):
            sampled.append(other or "")
            if not other or (done and not agree):
                continue
            if any(other == seen for _, seen, _ in drawn):  # the same code again: one more vote for it
                drawn.append((index, other, checked[other]))
                continue
            report = checked[other]
            drawn.append((index, other, report))
            score = rank(report, tests)
            if score > best.score:
                best = Pick(other, index, best.tried, score)
            done = done or report["passed"]
        if done:
            break
    best = by_agreement(drawn, tests, tried=best.tried) if agree else best
    return replace(best, codes=(*sampled, code))


def _check_together(
    codes: Sequence[str], tests: str, ctx: CallContext, *, skip: Collection[str]
) -> dict[str, ValidationReport]:
    """Each distinct code of ``codes`` not in ``skip``, checked against ``tests``: the runs side by side.

    As many run at once as the sandbox lets one process run (``SandboxLimits.max_concurrent``),
    so a wave of samples is checked in the time of a few runs; the run's sandbox time grows
    by the wall time of the lot.
    """
    fresh = [code for code in dict.fromkeys(codes) if code not in skip]
    if not fresh:
        return {}
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=min(len(fresh), SandboxLimits().max_concurrent)) as pool:
        reports = list(pool.map(lambda code: check_attempt(code, tests, ctx.settings, ranking=True)[0], fresh))
    ctx.usage.sandbox_seconds += time.perf_counter() - started
    return dict(zip(fresh, reports, strict=True))


def has_task_tests(tests: str) -> bool:
    """Whether ``tests`` hold any test the task itself gives: an example, or a test given with it."""
    return has_examples(tests) or GIVEN_TESTS_HEADER in tests


def by_agreement(drawn: Sequence[tuple[int, str, ValidationReport]], tests: str, *, tried: int) -> Pick:
    """The candidate most others agree with, as CodeT ranks (dual execution agreement).

    ``drawn`` holds each candidate drawn (index, code, report), repeats included.
    Candidates that fail exactly the same tests behave alike on them and form one group;
    a group scores its size times the tests each of its members passes, so code that
    several samples agree on beats a lone sample passing one more test the model wrote
    (which may be wrong). A candidate whose tests did not run joins no group. The
    earliest candidate of the best group wins (ties: the group holding the earlier one).
    """
    groups: dict[frozenset[str], list[tuple[int, str, ValidationReport]]] = {}
    for entry in drawn:
        report = entry[2]
        if report["passed_count"] + report["failed_count"] + report["errored_count"] == 0:
            continue
        groups.setdefault(frozenset(f["test"] for f in report["failures"]), []).append(entry)
    if not groups:
        index, code, report = drawn[0]
        return Pick(code, index, tried, rank(report, tests))
    members = max(
        groups.values(),
        key=lambda group: (len(group) * group[0][2]["passed_count"], -min(i for i, _, _ in group)),
    )
    index, code, report = min(members, key=lambda entry: entry[0])
    return Pick(code, index, tried, rank(report, tests))


def candidate_overrides(settings: Settings) -> list[dict[str, object]]:
    """The generation settings of each sampled candidate, in order: a temperature and a seed of its own."""
    return [{"temperature": CANDIDATE_TEMPERATURE, "seed": index} for index in range(1, settings.candidates)]


def fails_an_example(ctx: CallContext, code: str, given: str) -> bool:
    """Whether ``code`` fails one of the task's examples among ``given`` (the task's own tests), run in the sandbox.

    Code whose tests do not run (an import error, a time-out) fails them all.
    """
    report, _ = check_attempt(code, given, ctx.settings, ranking=True)
    ctx.usage.sandbox_seconds += report["duration_s"]
    return not report["passed"] and _fails_an_example(rank(report, given), given)


def wave_size(ctx: CallContext) -> int:
    """How many candidates this run asks for at once: ``Settings.candidate_batch`` with a batching model, else 1."""
    return max(1, ctx.settings.candidate_batch) if decodes_together(ctx) else 1


def tried_before(code: str, tried: Sequence[str]) -> bool:
    """True when ``code`` is the same program as one already tried."""
    return any(same_program(code, old) for old in tried if old)


def first_new(
    code: str | None,
    tried: Sequence[str],
    asks: Sequence[Callable[[dict[str, object]], str | None]],
    *,
    seed: int,
) -> tuple[str | None, int]:
    """``code`` if it is new, else the first sampled answer of ``asks`` that is.

    Each ask gets a temperature and ``seed`` (so a run repeats). Returns the code and
    how many asks it took (0: ``code`` was new); when every answer repeats an earlier
    attempt, ``code`` comes back unchanged.
    """
    if not code or not tried_before(code, tried):
        return code, 0
    for count, ask in enumerate(asks, start=1):
        other = ask({"temperature": CANDIDATE_TEMPERATURE, "seed": seed})
        if other and not tried_before(other, tried):
            return other, count
    return code, len(asks)
