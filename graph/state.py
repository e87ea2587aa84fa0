"""The shapes of the data that flow through the graph.

- :class:`TaskInput` is the narrow input a caller sends (only ``task`` is required).
- :class:`AgentState` is the full internal state, checkpointed after every step.
- :class:`AgentOutput` is what a finished run returns.

Everything is a ``typing_extensions.TypedDict`` of plain values so that checkpoints
serialize without custom types and LangServe can derive JSON schemas (a
``typing.TypedDict`` breaks LangServe's schema generation on Python 3.11).
"""

from __future__ import annotations

from typing import Annotated, Required

from typing_extensions import TypedDict

from analysis.complexity import ComplexityReport
from analysis.pep8 import Pep8Finding
from sandbox.report import ValidationReport

__all__ = [
    "MAX_TASK_CHARS",
    "AgentOutput",
    "AgentState",
    "Attempt",
    "Disagreement",
    "DisputedTest",
    "InvalidTaskError",
    "NodeTiming",
    "ReviewReport",
    "TaskInput",
    "check_task_input",
    "tokens_spent",
]

MAX_TASK_CHARS = 20_000
MAX_TESTS_CHARS = 100_000


class TaskInput(TypedDict, total=False):
    """What a caller sends: a task in plain words, and optional hints and options."""

    task: Required[str]
    entry_point: str  # the name of the main function, when the caller wants one
    user_tests: str  # pytest code the result must also pass
    max_iterations: int  # refinements allowed after the first attempt
    min_score: float  # review score (0-10) a passing attempt needs to stop early


class ReviewReport(TypedDict):
    """The reviewer's findings on one attempt; ``score`` is documented in analysis.scoring."""

    score: float
    model_score: float | None
    summary: str
    recommendations: list[str]
    pep8: list[Pep8Finding]
    pep8_count: int
    complexity: ComplexityReport
    coverage: float | None
    model_review: str  # "done", or why the model's review was skipped or unreadable


class DisputedTest(TypedDict):
    """A generated test set aside: an independent reference implementation sides with the code."""

    test: str
    call: str
    expected: str  # what the test claimed, as source
    observed: str  # what the code (and the reference) returned, as a repr
    reference: str
    iteration: int


class Disagreement(TypedDict):
    """A rival candidate that answers every example as the chosen code does, and parts from it on a probe."""

    call: str  # the first probe where they part, as source
    outcomes: str  # what each returned or raised there
    rival: str  # the rival's code
    probes_parted: int
    probes: int


class Attempt(TypedDict):
    """One generated or refined version of the code, with what was found about it."""

    iteration: int  # 0 for the first generation, then 1, 2, ... per refinement
    code: str
    tests: str
    generation_error: str | None
    validation: ValidationReport
    review: ReviewReport | None
    disputed_tests: list[DisputedTest]  # tests set aside on the way to this attempt


class NodeTiming(TypedDict):
    """How long one node ran and what its model calls cost."""

    node: str
    iteration: int
    seconds: float
    model_calls: int
    input_tokens: int
    output_tokens: int
    model_seconds: float
    sandbox_seconds: float
    summary: str  # the key result in a few words, for progress displays


def _new_run_resets(starts_run):
    """A list reducer that appends, except that an update starting a new run replaces.

    A thread can carry several runs (a second task on the same ``thread_id``); the
    records of one run must not leak into the next one's choice of best attempt.
    """

    def reduce(left: list | None, right: list | None) -> list:
        right = list(right or [])
        if any(starts_run(item) for item in right):
            return right
        return [*(left or []), *right]

    return reduce


attempts_of_this_run = _new_run_resets(lambda attempt: attempt["iteration"] == 0)
timings_of_this_run = _new_run_resets(lambda timing: timing["node"] == "generate")


class AgentState(TypedDict, total=False):
    """The internal state of one run; accumulating fields carry reducers."""

    task: Required[str]
    entry_point: str | None
    user_tests: str | None
    max_iterations: int
    min_score: float
    token_budget: int  # output tokens the run may spend before no new attempt starts (0: no limit)
    model: str
    iteration: int
    code: str
    tests: str
    generation_error: str | None
    tests_need_rewrite: bool
    validation: ValidationReport
    review: ReviewReport | None
    attempts: Annotated[list[Attempt], attempts_of_this_run]
    node_timings: Annotated[list[NodeTiming], timings_of_this_run]
    disputed_tests: list[DisputedTest]  # set aside to make the current attempt (by refine)
    settled: bool  # refine kept code that passes the task's own tests: stop after this attempt
    contested: list[Disagreement]  # rivals of a sampled first attempt (by generate): see roles.rivals
    # Written by finalize:
    passed: bool
    best_iteration: int
    iterations: int
    result_path: str | None


class AgentOutput(TypedDict, total=False):
    """What a finished run returns: the best attempt and how the run got there."""

    task: str
    passed: bool
    code: str
    tests: str
    validation: ValidationReport
    review: ReviewReport | None
    best_iteration: int
    iterations: int
    settled: bool  # stopped because the task's own tests pass and only self-written ones fail
    contested: list[Disagreement]  # the chosen first attempt passes, but rivals part from it: passed is False
    attempts: list[Attempt]
    model: str
    node_timings: list[NodeTiming]
    disputed_tests: list[DisputedTest]
    result_path: str | None


def tokens_spent(state: AgentState) -> int:
    """Output tokens the run's model calls have written so far (its node records)."""
    return sum(timing["output_tokens"] for timing in state.get("node_timings", []))


class InvalidTaskError(ValueError):
    """The input cannot start a run; the message says what is wrong."""


def check_task_input(data: object) -> TaskInput:
    """Return ``data`` as a clean :class:`TaskInput`, or raise :class:`InvalidTaskError`."""
    if not isinstance(data, dict):
        raise InvalidTaskError("the input must be an object with a 'task' field")
    unknown = set(data) - set(TaskInput.__annotations__)
    if unknown:
        raise InvalidTaskError(f"unknown input field(s): {', '.join(sorted(unknown))}")
    task = data.get("task")
    if not isinstance(task, str) or not task.strip():
        raise InvalidTaskError("'task' must be a non-empty description of the code to write")
    if len(task) > MAX_TASK_CHARS:
        raise InvalidTaskError(f"'task' is {len(task)} characters; the limit is {MAX_TASK_CHARS}")
    clean: TaskInput = {"task": task.strip()}
    entry_point = data.get("entry_point")
    if entry_point not in (None, ""):
        if not isinstance(entry_point, str) or not entry_point.isidentifier():
            raise InvalidTaskError("'entry_point' must be a Python identifier")
        clean["entry_point"] = entry_point
    user_tests = data.get("user_tests")
    if user_tests not in (None, ""):
        if not isinstance(user_tests, str) or len(user_tests) > MAX_TESTS_CHARS:
            raise InvalidTaskError(f"'user_tests' must be pytest code of at most {MAX_TESTS_CHARS} characters")
        clean["user_tests"] = user_tests
    budget = data.get("max_iterations")
    if budget is not None:
        if isinstance(budget, bool) or not isinstance(budget, int) or not 0 <= budget <= 10:
            raise InvalidTaskError("'max_iterations' must be an integer from 0 to 10")
        clean["max_iterations"] = budget
    min_score = data.get("min_score")
    if min_score is not None:
        if isinstance(min_score, bool) or not isinstance(min_score, int | float) or not 0 <= min_score <= 10:
            raise InvalidTaskError("'min_score' must be a number from 0 to 10")
        clean["min_score"] = float(min_score)
    return clean
