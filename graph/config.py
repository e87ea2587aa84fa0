"""One typed configuration object for a run, with documented defaults, and how a run gets it.

Where a setting comes from, first match wins:

1. the task's own input, for ``max_iterations`` and ``min_score`` (a field of
   :class:`graph.state.TaskInput`);
2. the request: ``config["configurable"]`` (LangServe's ``/agent``,
   :func:`graph.runtime.run_task`), or a LangGraph ``context`` given to the run;
3. the environment: ``STARCODER_<FIELD>`` (for example ``STARCODER_MAX_ITERATIONS=5``),
   read by :mod:`envconfig`'s one rule (empty is unset; a yes/no value must be clear);
4. the default below.

(A program that builds the graph with its own ``Settings(...)`` puts the fields it sets
between 2 and 3: a request still overrides them.)

The graph declares :class:`Settings` as its LangGraph context schema, and
:func:`resolve_settings` works out a run's settings once, when the run starts (see
:mod:`graph.builder`); the nodes read them from ``runtime.context``. A request may set
the fields of :data:`REQUEST_FIELDS`, within their bounds: ``results_dir`` is the
deployment's to choose, never a client's. Nothing here is a module global that changes
behaviour.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.utils import ConfigurableFieldSpec
from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

from envconfig import env_str, env_value

__all__ = ["REQUEST_FIELDS", "RequestField", "Settings", "data_home", "request_config_specs", "resolve_settings"]


def data_home() -> Path:
    """Where run records and checkpoints live: ``$STARCODER_AGENTS_HOME`` or ``~/.starcoder-agents``."""
    return Path(env_str("STARCODER_AGENTS_HOME") or Path.home() / ".starcoder-agents")


def _env(name: str, default: Any) -> Any:
    return env_value(f"STARCODER_{name.upper()}", default)


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Options of the code loop.

    Attributes:
        max_iterations: Refinements allowed after the first attempt (the budget).
        min_score: Review score (0-10) a passing attempt needs to stop early.
        review_failing: Ask the model to review code whose tests fail (off: the
            failures already say what to fix, and the call costs tokens).
        arbitrate_tests: Before refining, check failing one-claim tests against an
            independent reference implementation, and set aside those it contradicts
            when it agrees with the code (see ``roles.arbiter``).
        task_examples: Add the task's own doctest examples (``>>> f(1)`` / ``2``) to the
            tests; they are the task's words, so the arbiter never sets them aside.
        candidates: Code candidates for the first attempt. Above 1, when the first
            (greedy) code fails its tests, up to ``candidates - 1`` more are sampled and
            the one passing the most task examples, then tests, is kept (see
            ``roles.candidates``). 1 turns this off. 6 by default: on the first 40
            development problems, 6 solved two more than 3 (HumanEval/20, 68) within 5x
            the single call's wall time under the token budget (``bench merge``).
        candidate_batch: Sampled candidates asked for at once, in waves of this many, when
            the model decodes calls made together as one batch (llama.cpp; an inference
            server with parallel slots); after each wave, sampling stops if one of them
            passes everything. 1: one at a time. Every candidate of a wave is drawn, so a
            wave can spend tokens on candidates that one-at-a-time sampling would not have
            reached. 5 by default, all five samples at once: on the development split, 22
            of the 24 first attempts that sampled drew every candidate, and on eight of
            them the loop took 90.4 s a problem one at a time, 74.4 s in waves of two and
            less all at once (``bench humaneval --candidate-batch``). Samples decoded
            together differ from lone ones in the last bits of the logits, and a batch
            need not repeat to the bit either (one sample of three once differed
            between two identical batches), so results do not repeat exactly
            (``bench merge`` needs 1, as earlier runs had).
        agreement_ranking: For a task that gives no tests of its own (no examples, none
            given with it), rank the first attempt's candidates by agreement, as CodeT
            does: candidates failing exactly the same tests form a group, scored by its
            size times the tests each passes, and the earliest of the best group wins,
            rather than the one passing the most tests the model wrote (which may be
            wrong). Off: on the nine development problems without examples that
            sampled, it solved 2 against 4.
        candidates_on_example_failure: Sample candidates only when the first code fails
            one of the task's own examples (or, for a task without examples, any test).
            Code that passes every example but fails a self-written test is more often
            right than the test: the arbiter weighs that test in refine instead, and no
            sampling is spent (on by default: chosen on the development split).
        stop_on_task_tests: Stop when the code passes every test the task itself gives
            (its examples, the tests given with it) and, after the arbiter, only tests
            the model wrote still fail: the code is handed back as it is (``passed`` stays
            false and the failing tests say why) rather than rewritten to fit tests that
            are more often wrong than the code (see ``roles.candidates.only_own_tests_fail``).
            A task that gives no tests is not affected (on by default: chosen on the
            development split).
        examples_first: Choose among the code candidates by the task's own tests (its
            examples, the tests given with it) *before* the tester writes any: up to
            ``candidates`` samples, stopping at the first that passes them all, as the
            ``best_of_k`` baseline does; the tester then writes tests for the chosen code.
            A task that gives no tests is not affected (a lever for measurement).
        resample_repeats: When the refiner hands back code the loop already tried (a
            small model under greedy decoding often does), ask it again with sampling,
            then ask the generator for a fresh sampled candidate, so an attempt is never
            spent on the same code twice (see ``roles.candidates``).
        lean_tests: Ask the tester for 3 or 4 one-assert tests rather than 4 to 6 of up
            to three asserts: fewer output tokens, and fewer wrong claims to arbitrate
            (a lever for measurement).
        tests_with_code: For a stub-shaped task (a signature and docstring), the tester
            writes its tests from the task's stub, in the same call batch as the first
            code, rather than from the code's interface after it, so a model that
            decodes calls together decodes both at once (tasks in plain words are not
            affected). Off: on 16 development problems it saved no time (the tester's
            reply is the longer one, and llama.cpp's batched path costs more per token
            once the code has finished), and it changes the tests.
        tests_with_candidates: For a task that states examples, check the first code on
            them before the tester writes anything; when it fails one, the tester's call
            goes out in the same batch as the first wave of sampled candidates (the same
            tests, ranking and sampling rule as without it), so a model that decodes calls
            together writes the tests while it samples; when it passes them all, no
            candidate is drawn, as before. Tasks without examples are not affected.
        contest_passes: When a sampled candidate replaced the first code and passes,
            probe the other samples against it (:mod:`roles.rivals`): if one that answers
            every task example alike returns something else on a probe input, the run
            does not claim "passed" and says where they part (``contested``). It changes
            no code, only the verdict; it costs one sandbox run.
        tester_tokens_with_examples: The most tokens the tester may write for a task whose
            own examples or given tests are among its tests (0: the model's own limit for
            the tester, 512 on the packaged models). Those tests judge the code first; the
            tester's reply, asked for 4 to 6 short tests, ran to 512 tokens on about half
            of the problems, and it is the longest call of most first attempts. A reply
            cut at the cap loses only its unfinished last test. Tasks without examples
            keep the full length: there the model's tests are all the judge there is.
            256: on 36 development problems with examples it solved 31 against 29, with
            the same false "passed", and took 8.5% less time under the budget below
            (``bench humaneval --tester-tokens-with-examples``, ``bench budget``).
        tester_sees_code: Show the tester the whole code rather than its interface (a
            lever for measurement; off, a bug cannot be copied into the tests).
        failure_details: Give the refiner the failing tests' names, assertions and
            tracebacks (off: only how many failed; a lever for measurement).
        token_budget: Output tokens a run may spend (0: no limit) on a task that states no
            example of its own. No new attempt starts once the run's model calls have
            written this many tokens; the attempt in progress finishes, so a run can pass
            the budget by up to one attempt. The best attempt so far is handed back, as when
            the iterations run out. 1500: for a task in plain words the refinements (and
            the arbiter) are what fixes a first attempt, and at 700 the real-model test's
            plain task spent its budget on the first attempt's candidates, unrefined.
        token_budget_with_examples: The same budget for a task whose own examples (a
            docstring's ``>>>`` lines, ``f(1) == 2``) or given tests are among its tests.
            They judge the first attempt's candidates; on HumanEval's development split no
            refinement after the first attempt solved a problem (``bench budget`` over
            three development runs, every budget from 1 up). 350: the budget stops a first
            attempt of the usual size (its code and the tester's tests, at most
            ``tester_tokens_with_examples``) from going on to be refined, and leaves a short
            one room. It was 600 with the tester's reply uncapped (up to 512 tokens): 600 -
            (512 - 256) = 344. Replayed on 36 development problems: the same 31 solved at
            300, 350, 400 and 600, 24.9 s a problem at 350 against 26.6 s at 600.
        test_timeout_s: Wall-clock limit for one sandboxed test run.
        rank_timeout_s: Wall-clock limit for a run that only ranks code: the first code
            checked on the task's examples, and each candidate checked on the tests
            (``test_timeout_s`` when that is lower). The validate node, whose report is
            the verdict, keeps ``test_timeout_s``. A candidate that loops used to hold its
            ranking run for the whole 30 s, up to three times a problem (the first code's
            example check, its test run, then the wave's runs side by side): HumanEval/10
            on the development split and HumanEval/123 on the held-out one spent 37 s and
            102 s in the sandbox. Every run that did not time out in the saved runs took at
            most 0.81 s, so 5 s leaves six times that; a code this slow to rank is ranked
            as failing its tests, and can still win if nothing ranks above it.
        results_dir: Folder for the JSON record of each finished run.
    """

    max_iterations: int = field(default_factory=lambda: _env("max_iterations", 3))
    min_score: float = field(default_factory=lambda: _env("min_score", 7.0))
    review_failing: bool = field(default_factory=lambda: _env("review_failing", False))
    arbitrate_tests: bool = field(default_factory=lambda: _env("arbitrate_tests", True))
    task_examples: bool = field(default_factory=lambda: _env("task_examples", True))
    candidates: int = field(default_factory=lambda: _env("candidates", 6))
    candidate_batch: int = field(default_factory=lambda: _env("candidate_batch", 5))
    agreement_ranking: bool = field(default_factory=lambda: _env("agreement_ranking", False))
    candidates_on_example_failure: bool = field(default_factory=lambda: _env("candidates_on_example_failure", True))
    stop_on_task_tests: bool = field(default_factory=lambda: _env("stop_on_task_tests", True))
    examples_first: bool = field(default_factory=lambda: _env("examples_first", False))
    resample_repeats: bool = field(default_factory=lambda: _env("resample_repeats", True))
    lean_tests: bool = field(default_factory=lambda: _env("lean_tests", False))
    tests_with_code: bool = field(default_factory=lambda: _env("tests_with_code", False))
    tests_with_candidates: bool = field(default_factory=lambda: _env("tests_with_candidates", True))
    contest_passes: bool = field(default_factory=lambda: _env("contest_passes", True))
    tester_tokens_with_examples: int = field(default_factory=lambda: _env("tester_tokens_with_examples", 256))
    tester_sees_code: bool = field(default_factory=lambda: _env("tester_sees_code", False))
    failure_details: bool = field(default_factory=lambda: _env("failure_details", True))
    token_budget: int = field(default_factory=lambda: _env("token_budget", 1500))
    token_budget_with_examples: int = field(default_factory=lambda: _env("token_budget_with_examples", 350))
    test_timeout_s: float = field(default_factory=lambda: _env("test_timeout_s", 30.0))
    rank_timeout_s: float = field(default_factory=lambda: _env("rank_timeout_s", 5.0))
    results_dir: str = field(default_factory=lambda: _env("results_dir", str(data_home() / "runs")))


@dataclass(frozen=True)
class RequestField:
    """A setting a request may choose: its type, its bounds (inclusive), and what it does."""

    kind: type[bool] | type[int] | type[float]
    description: str
    low: float | None = None
    high: float | None = None

    def check(self, name: str, value: object) -> bool | int | float:
        """``value`` as this field's type, or :class:`ValueError` saying what is wrong."""
        if self.kind is bool:
            if not isinstance(value, bool):
                raise ValueError(f"setting {name!r} must be true or false, not {value!r}")
            return value
        whole = self.kind is int
        if isinstance(value, bool) or not isinstance(value, int if whole else int | float):
            raise ValueError(f"setting {name!r} must be {'a whole number' if whole else 'a number'}, not {value!r}")
        if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
            raise ValueError(f"setting {name!r} must be from {self.low:g} to {self.high:g}, not {value!r}")
        return value if whole else float(value)


REQUEST_FIELDS: dict[str, RequestField] = {
    "max_iterations": RequestField(int, "Refinements allowed after the first attempt.", 0, 10),
    "min_score": RequestField(float, "Review score (0-10) a passing attempt needs to stop early.", 0, 10),
    "review_failing": RequestField(bool, "Ask the model to review code whose tests fail."),
    "arbitrate_tests": RequestField(bool, "Check failing one-claim tests against a reference implementation."),
    "task_examples": RequestField(bool, "Add the task's own doctest examples to the tests."),
    "candidates": RequestField(int, "Code candidates for the first attempt (1: just one).", 1, 8),
    "candidate_batch": RequestField(
        int, "Sampled candidates asked for at once, decoded as one batch (1: one at a time).", 1, 8
    ),
    "agreement_ranking": RequestField(
        bool, "Rank candidates for a task without examples by how many of them agree (CodeT)."
    ),
    "candidates_on_example_failure": RequestField(
        bool, "Sample candidates only when the first code fails one of the task's own examples."
    ),
    "stop_on_task_tests": RequestField(
        bool, "Stop when the task's own tests pass and only self-written tests fail (after the arbiter)."
    ),
    "examples_first": RequestField(bool, "Choose among code candidates by the task's own tests before writing any."),
    "resample_repeats": RequestField(bool, "Ask again, sampling, when the refiner repeats an earlier attempt."),
    "lean_tests": RequestField(bool, "Ask the tester for 3 or 4 one-assert tests."),
    "contest_passes": RequestField(bool, "Withhold 'passed' when rival samples part from a sampled first attempt."),
    "tests_with_code": RequestField(bool, "Write a stub-shaped task's tests from its stub, beside the first code."),
    "tests_with_candidates": RequestField(
        bool, "Write the tests in the same batch as the sampled candidates, when the first code fails an example."
    ),
    "tester_tokens_with_examples": RequestField(
        int, "The most tokens the tester may write for a task that gives tests of its own (0: no cap).", 0, 4096
    ),
    "tester_sees_code": RequestField(bool, "Show the tester the whole code rather than its interface."),
    "failure_details": RequestField(bool, "Give the refiner the failing tests' tracebacks."),
    "token_budget": RequestField(int, "Output tokens a run may spend before refining stops (0: none).", 0, 100000),
    "token_budget_with_examples": RequestField(
        int, "The token budget for a task whose own examples are among its tests (0: none).", 0, 100000
    ),
    "test_timeout_s": RequestField(float, "Wall-clock seconds for one sandboxed test run.", 1, 120),
    "rank_timeout_s": RequestField(
        float, "Wall-clock seconds for a sandboxed run that only ranks candidates (at most test_timeout_s).", 1, 120
    ),
}
"""The settings a request may choose, with their bounds; the others are the deployment's."""


def _request_overrides(values: Mapping[str, Any]) -> dict[str, Any]:
    """The request settings among ``values`` (unset ones skipped), checked."""
    return {
        name: spec.check(name, values[name]) for name, spec in REQUEST_FIELDS.items() if values.get(name) is not None
    }


def resolve_settings(
    config: RunnableConfig | None,
    base: Settings | None = None,
    context: Settings | Mapping[str, Any] | None = None,
) -> Settings:
    """The settings of one run: ``base`` (the environment and defaults) with the request's choices.

    The request's choices are the :data:`REQUEST_FIELDS` found in
    ``config["configurable"]``, then those of a LangGraph ``context`` mapping (which
    win). A ``context`` that is already a :class:`Settings` is used as it is: a
    program that builds one has chosen every field. Raises :class:`ValueError` for a
    value of the wrong type or out of bounds.
    """
    if isinstance(context, Settings):
        return context
    overrides = _request_overrides((config or {}).get("configurable") or {})
    if context:
        overrides.update(_request_overrides(context))
    base = base or Settings()
    return dataclasses.replace(base, **overrides) if overrides else base


def _setting_type(name: str, spec: RequestField) -> type:
    """The field's type for LangServe's config model: optional, with its bounds, drawn plainly.

    LangServe rebuilds the config model from each field's annotation alone, dropping
    ``Field(ge=..., le=...)`` and ``Annotated`` metadata; a type that carries its own
    schema keeps the bounds (a value out of bounds is a 422 before the run starts), and
    its JSON schema is one plain type, which the playground's form can draw (it cannot
    draw ``anyOf`` with ``null``).
    """
    low, high = spec.low, spec.high
    inner: core_schema.CoreSchema
    drawn: dict[str, Any]
    if spec.kind is bool:
        inner, drawn = core_schema.bool_schema(), {"type": "boolean"}
    elif spec.kind is int:
        inner = core_schema.int_schema(ge=None if low is None else int(low), le=None if high is None else int(high))
        drawn = {"type": "integer", "minimum": low, "maximum": high}
    else:
        inner, drawn = core_schema.float_schema(ge=low, le=high), {"type": "number", "minimum": low, "maximum": high}
    validation = core_schema.nullable_schema(inner)
    drawn = {key: value for key, value in drawn.items() if value is not None}
    drawn["type"] = [drawn["type"], "null"]

    def get_core_schema(cls: type, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return validation

    def get_json_schema(cls: type, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        return dict(drawn)

    return type(
        f"Setting_{name}",
        (),
        {
            "__get_pydantic_core_schema__": classmethod(get_core_schema),
            "__get_pydantic_json_schema__": classmethod(get_json_schema),
        },
    )


def request_config_specs() -> list[ConfigurableFieldSpec]:
    """The request settings as configurable fields, for LangServe to accept and check.

    LangServe keeps only the ``configurable`` keys a runnable declares; each is
    optional (``None``: the server's own setting), typed and bounded as above.
    """
    specs = []
    for name, spec in REQUEST_FIELDS.items():
        specs.append(
            ConfigurableFieldSpec(
                id=name,
                annotation=_setting_type(name, spec),
                name=name.replace("_", " ").capitalize(),
                description=spec.description,
                default=None,
            )
        )
    return specs
