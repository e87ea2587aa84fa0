"""The seed system's single agents, each a runnable with typed input and output.

generate, refine, validate, review, pep8, coverage and complexity, served one route
each next to the whole graph. Each calls the role the graph's nodes call
(:func:`roles.code.write_code`, :func:`roles.fix.fix_code`, :func:`roles.checks.check_attempt`,
:func:`roles.review.review_code`, ...), so an agent alone behaves as it does in the loop.
Generated code only ever runs through the sandbox.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Self, TypeVar

from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda
from pydantic import BaseModel, Field, field_validator, model_validator
from typing_extensions import TypedDict

from analysis.complexity import ComplexityReport, measure_complexity
from analysis.interface import reconcile_tests
from analysis.pep8 import Pep8Report, check_pep8
from graph.config import Settings
from graph.state import MAX_TASK_CHARS, MAX_TESTS_CHARS, ReviewReport, check_task_input
from roles.checks import check_attempt, failed_before_running
from roles.code import write_code
from roles.context import NO_CODE, CallContext, ModelProvider
from roles.fix import NO_PROBLEMS, describe_problems, fix_code
from roles.review import review_code
from roles.tests import write_tests
from sandbox.report import ValidationReport
from service.schemas import FormModel, OptionalText
from service.stats import RunStats

__all__ = [
    "AGENT_NAMES",
    "CodeRequest",
    "CodeWithTestsRequest",
    "CoverageReport",
    "GenerateRequest",
    "GenerateResult",
    "RefineRequest",
    "RefineResult",
    "ReviewRequest",
    "ReviewResult",
    "agent_runnables",
]

MAX_CODE_CHARS = MAX_TESTS_CHARS
AGENT_NAMES = ("generate", "refine", "validate", "review", "pep8", "coverage", "complexity")
_Request = TypeVar("_Request", bound=BaseModel)


def _not_blank(value: str, what: str) -> str:
    if not value.strip():
        raise ValueError(f"'{what}' must not be empty")
    return value


class CodeRequest(FormModel):
    """Python source to analyse."""

    code: str = Field(max_length=MAX_CODE_CHARS, description="The Python module to analyse.")

    @field_validator("code")
    @classmethod
    def _code_not_blank(cls, value: str) -> str:
        return _not_blank(value, "code")


class CodeWithTestsRequest(CodeRequest):
    """Python source and the pytest tests to run against it (importing it as ``solution``)."""

    tests: str = Field(max_length=MAX_TESTS_CHARS, description="pytest tests; they import the code as `solution`.")

    @field_validator("tests")
    @classmethod
    def _tests_not_blank(cls, value: str) -> str:
        return _not_blank(value, "tests")


class GenerateRequest(FormModel):
    """A task to write the first attempt's code and tests for."""

    task: str = Field(description=f"What the code must do (at most {MAX_TASK_CHARS} characters).")
    entry_point: OptionalText = Field(default=None, description="Name of the main function.")
    user_tests: OptionalText = Field(default=None, description="pytest code the result must also pass.")
    model: OptionalText = Field(default=None, description="Optional: must name the loaded model.")

    @model_validator(mode="after")
    def _a_valid_task(self) -> Self:
        check_task_input(self.model_dump(exclude_none=True, exclude={"model"}))
        return self


class RefineRequest(CodeRequest):
    """Code to improve, with the tests it must pass and/or the problems to fix."""

    task: str = Field(max_length=MAX_TASK_CHARS, description="What the code is meant to do.")
    tests: OptionalText = Field(
        default=None,
        max_length=MAX_TESTS_CHARS,
        description="Tests to run first; their failures guide the fix.",
    )
    problems: OptionalText = Field(
        default=None,
        max_length=MAX_TASK_CHARS,
        description="Known problems to fix, in plain words.",
    )
    model: OptionalText = Field(default=None, description="Optional: must name the loaded model.")

    @field_validator("task")
    @classmethod
    def _task_not_blank(cls, value: str) -> str:
        return _not_blank(value, "task")


class ReviewRequest(CodeRequest):
    """Code to review; with tests, the review includes their outcome and coverage."""

    task: str = Field(
        default="Review this module.",
        max_length=MAX_TASK_CHARS,
        description="What the code is for.",
    )
    tests: OptionalText = Field(default=None, max_length=MAX_TESTS_CHARS, description="Tests to run for coverage.")
    ask_model: bool = Field(default=True, description="Ask the model for its review (off: static checks only).")
    model: OptionalText = Field(default=None, description="Optional: must name the loaded model.")


class GenerateResult(TypedDict):
    """Code and tests for a task, and what writing them cost."""

    code: str
    tests: str
    generation_error: str | None
    model: str
    model_calls: int
    input_tokens: int
    output_tokens: int
    seconds: float


class RefineResult(TypedDict):
    """The improved code, the problems the refiner was shown, and how the new code fares."""

    code: str
    tests: str
    generation_error: str | None
    problems: str
    validation_before: ValidationReport | None
    validation_after: ValidationReport | None
    model_calls: int
    output_tokens: int
    seconds: float


class ReviewResult(TypedDict):
    """The review of the code, and the test run it drew on (None when no tests were given)."""

    review: ReviewReport
    validation: ValidationReport | None


class CoverageReport(TypedDict):
    """Line coverage of the code by its tests, and how the tests went."""

    coverage: float | None
    passed: bool
    passed_count: int
    failed_count: int
    errored_count: int
    duration_s: float
    error: str | None
    in_process_tests: list[str]  # judged in the code's own process: weaker evidence
    isolation: str


def _parse(model_type: type[_Request], data: Any) -> _Request:
    """LangServe hands over a dict; in-process callers may pass the model itself."""
    return data if isinstance(data, model_type) else model_type.model_validate(data)


class _Agents:
    """The agent functions, bound to one model provider and one set of settings.

    Each takes ``(data, config)``; ``config`` carries LangServe's callbacks, so model
    tokens stream from the agents that call a model.
    """

    def __init__(self, model: ModelProvider, settings: Settings) -> None:
        self.model = model
        self.settings = settings

    def _context(self, config: RunnableConfig) -> CallContext:
        """A call context for one request (its own usage record)."""
        return CallContext(model=self.model, settings=self.settings, config=config)

    def generate(self, data: Any, config: RunnableConfig) -> GenerateResult:
        request = _parse(GenerateRequest, data)
        started, ctx = time.perf_counter(), self._context(config)
        usage, task = ctx.usage, request.task.strip()
        code = write_code(ctx, task=task, entry_point=request.entry_point, user_tests=request.user_tests)
        tests = write_tests(ctx, task=task, code=code, user_tests=request.user_tests) if code else ""
        return GenerateResult(
            code=code or "",
            tests=tests,
            generation_error=None if code else NO_CODE,
            model=", ".join(sorted(usage.models)) or self.model.name,
            model_calls=usage.calls,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            seconds=round(time.perf_counter() - started, 3),
        )

    def refine(self, data: Any, config: RunnableConfig) -> RefineResult:
        request = _parse(RefineRequest, data)
        started, ctx = time.perf_counter(), self._context(config)
        usage = ctx.usage
        before: ValidationReport | None = None
        lines = []
        if request.tests and request.tests.strip():
            before, _ = check_attempt(request.code, request.tests, self.settings)
            if not before["passed"]:
                lines.append(describe_problems(before, None, details=self.settings.failure_details))
        given = (request.problems or "").splitlines()
        lines.extend(f"- {line.strip()}" for line in given if line.strip())
        problems = "\n".join(lines) or NO_PROBLEMS
        code = fix_code(ctx, task=request.task.strip(), code=request.code, problems=problems) or ""
        tests = request.tests or ""
        if code and tests:
            tests = reconcile_tests(tests, code)
        after = check_attempt(code, tests, self.settings)[0] if code and tests.strip() else None
        return RefineResult(
            code=code,
            tests=tests,
            generation_error=None if code else NO_CODE,
            problems=problems,
            validation_before=before,
            validation_after=after,
            model_calls=usage.calls,
            output_tokens=usage.output_tokens,
            seconds=round(time.perf_counter() - started, 3),
        )

    def validate(self, data: Any, config: RunnableConfig) -> ValidationReport:
        request = _parse(CodeWithTestsRequest, data)
        return check_attempt(request.code, request.tests, self.settings)[0]

    def review(self, data: Any, config: RunnableConfig) -> ReviewResult:
        request = _parse(ReviewRequest, data)
        validation = check_attempt(request.code, request.tests, self.settings)[0] if request.tests else None
        report = review_code(
            self._context(config),
            task=request.task,
            code=request.code,
            validation=validation or failed_before_running("no tests were given"),
            ask_model=request.ask_model,
        )
        return ReviewResult(review=report, validation=validation)

    def pep8(self, data: Any, config: RunnableConfig) -> Pep8Report:
        return check_pep8(_parse(CodeRequest, data).code)

    def coverage(self, data: Any, config: RunnableConfig) -> CoverageReport:
        request = _parse(CodeWithTestsRequest, data)
        report = check_attempt(request.code, request.tests, self.settings)[0]
        return CoverageReport(
            coverage=report["coverage"],
            passed=report["passed"],
            passed_count=report["passed_count"],
            failed_count=report["failed_count"],
            errored_count=report["errored_count"],
            duration_s=report["duration_s"],
            error=report["error"],
            in_process_tests=report["in_process_tests"],
            isolation=report["isolation"],
        )

    def complexity(self, data: Any, config: RunnableConfig) -> ComplexityReport:
        return measure_complexity(_parse(CodeRequest, data).code)


_TYPES: dict[str, tuple[type[BaseModel], Any]] = {
    "generate": (GenerateRequest, GenerateResult),
    "refine": (RefineRequest, RefineResult),
    "validate": (CodeWithTestsRequest, ValidationReport),
    "review": (ReviewRequest, ReviewResult),
    "pep8": (CodeRequest, Pep8Report),
    "coverage": (CodeWithTestsRequest, CoverageReport),
    "complexity": (CodeRequest, ComplexityReport),
}


def _counted(func: Callable[[Any, RunnableConfig], Any], name: str, stats: RunStats | None) -> Callable[..., Any]:
    if stats is None:
        return func

    def counted(data: Any, config: RunnableConfig) -> Any:
        stats.count_agent_call(name)
        return func(data, config)

    return counted


def agent_runnables(
    model: ModelProvider,
    settings: Settings | None = None,
    *,
    stats: RunStats | None = None,
    max_concurrency: int | None = None,
) -> dict[str, Runnable]:
    """Return each agent as a typed runnable, keyed by its route name.

    ``max_concurrency`` bounds how many items of one batch run at once, as it does for
    the whole graph (:meth:`service.graph_route.ThreadedAgent.wrap`).
    """
    agents = _Agents(model, settings or Settings())
    runnables: dict[str, Runnable] = {}
    for name in AGENT_NAMES:
        input_type, output_type = _TYPES[name]
        func = _counted(getattr(agents, name), name, stats)
        runnable = RunnableLambda(func, name=f"{name}_agent").with_types(input_type=input_type, output_type=output_type)
        runnables[name] = runnable if max_concurrency is None else runnable.with_config(max_concurrency=max_concurrency)
    return runnables
