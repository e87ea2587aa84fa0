"""What the loop is measured against: the strongest single call, and best of k at the loop's tokens.

Each row of the benchmark solves a problem one way and hands back its code and cost:

- a *single call* asks the generator once, greedily, with one of :data:`VARIANTS`
  (prompt files in ``prompts/``); ``single_shot`` is the variant chosen for the task's
  form (:data:`SINGLE_SHOT`), by measurement on a development split;
- ``first_step`` is the generator's own first step (``roles.code.write_code``);
- ``best_of_k`` spends about the loop's tokens on plain sampling: the ``single_shot``
  call, then up to ``k - 1`` seeded samples of the same prompt, each run in the sandbox
  on the task's own stated examples (never the hidden tests); the first candidate that
  passes the most examples wins. Sampling stops once a candidate passes every example
  (no later one could rank higher), or at once when the task states none.

Every row's code goes through the same cleaning (``roles.code.ask_for_code``), so
rows differ only in how they ask.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any

import prompts
from analysis.interface import public_names, reconcile_tests
from analysis.testcases import EXAMPLE_PREFIX, examples_as_tests
from graph.config import Settings
from roles.candidates import CANDIDATE_TEMPERATURE, rank
from roles.checks import check_attempt
from roles.code import FIRST_CALL, STUB_NOTE, CodePrompt, TaskForm, ask_for_code, task_form, write_code
from roles.context import CallContext, ModelProvider, Usage

__all__ = [
    "CLEANING",
    "SINGLE_SHOT",
    "VARIANTS",
    "Outcome",
    "best_of_k",
    "describe_rows",
    "first_step",
    "k_from_run",
    "single_call",
]

VARIANTS: dict[str, CodePrompt] = {
    # The plain completion prompt: the stub as code, asked for the complete function.
    "completion": CodePrompt("completion_system", "completion_user", name_entry_point=False),
    # The generator's own prompt (rules about style, tests and prints; "Task:" then the task).
    "generator": CodePrompt("generator_system", "generator_user"),
    # The completion prompt's short system message with the task's words as they are.
    "request": CodePrompt("completion_system", "request_user"),
}
"""Ways of asking for code in one call, by name (``--rows single_shot:NAME`` runs one)."""

SINGLE_SHOT: dict[TaskForm, str] = {"stub": "completion", "plain": "request"}
"""The strongest single call found for each task form, chosen on development problems.

On HumanEval's even half (82): completion 0.671, request 0.622, generator 0.512. On the
44 plain tasks: request 24, generator 18 (each of the six it gained, none lost).
"""

CLEANING = (
    "the reply's first fenced Python block; top-level example usage dropped; for a stub-shaped task "
    "the task's imports and helper definitions the reply left out put back (roles.code.ask_for_code)"
)


@dataclass
class Outcome:
    """One row's answer to one problem: its code and what it cost."""

    code: str | None
    tokens: int = 0
    seconds: float = 0.0
    calls: int = 0
    details: dict[str, Any] = field(default_factory=dict)


def _context(model: ModelProvider) -> CallContext:
    """A call context outside any run: the generator's calls do not read the loop's settings."""
    return CallContext(model=model, settings=Settings())


def _timed(usage: Usage, started: float, code: str | None, **details: Any) -> Outcome:
    return Outcome(code, usage.output_tokens, round(time.perf_counter() - started, 2), usage.calls, details)


def single_call(
    model: ModelProvider, variant: str, problem: dict[str, Any], overrides: dict[str, object] | None = None
) -> Outcome:
    """Ask once with prompt ``variant`` (greedy unless ``overrides`` say otherwise)."""
    ctx = _context(model)
    started = time.perf_counter()
    code = ask_for_code(
        ctx, VARIANTS[variant], task=problem["prompt"], entry_point=problem["entry_point"], user_tests=None,
        overrides=overrides,
    )  # fmt: skip
    return _timed(ctx.usage, started, code, variant=variant)


def chosen_variant(problem: dict[str, Any]) -> str:
    """The ``single_shot`` variant for this problem's form."""
    return SINGLE_SHOT[task_form(problem["prompt"], problem["entry_point"])]


def first_step(model: ModelProvider, problem: dict[str, Any]) -> Outcome:
    """The generator's first step alone, as the loop takes it (a stub-only reply is asked again)."""
    ctx = _context(model)
    started = time.perf_counter()
    code = write_code(ctx, task=problem["prompt"], entry_point=problem["entry_point"], user_tests=None)
    return _timed(ctx.usage, started, code)


def _examples_passed(code: str | None, examples: str, settings: Settings) -> tuple[int, float]:
    """(task examples passed, sandbox seconds) of ``code``."""
    if not code:
        return 0, 0.0
    tests = reconcile_tests(examples, code)
    report, _ = check_attempt(code, tests, settings, ranking=True)
    return rank(report, tests)[0], report["duration_s"]


def best_of_k(
    model: ModelProvider, problem: dict[str, Any], k: int, settings: Settings, greedy: Outcome | None = None
) -> Outcome:
    """The greedy ``single_shot`` call and up to ``k - 1`` samples, ranked by the task's examples.

    ``greedy`` is the ``single_shot`` outcome when that row already ran on this problem
    (its tokens and seconds count here too).
    """
    started = time.perf_counter()
    variant = chosen_variant(problem)
    first = greedy or single_call(model, variant, problem)
    names = sorted({*public_names(problem["prompt"]), problem["entry_point"]})
    examples = examples_as_tests(problem["prompt"], names)
    total = examples.count(f"def {EXAMPLE_PREFIX}")
    tokens, calls = first.tokens, first.calls
    best, best_passed, picked, drawn = first.code, 0, 0, 1
    sandbox_s = 0.0
    if total:
        best_passed, sandbox_s = _examples_passed(first.code, examples, settings)
    for index in range(1, k):
        if best_passed == total:
            break
        other = single_call(model, variant, problem, {"temperature": CANDIDATE_TEMPERATURE, "seed": index})
        tokens, calls, drawn = tokens + other.tokens, calls + other.calls, drawn + 1
        passed, seconds = _examples_passed(other.code, examples, settings)
        sandbox_s += seconds
        if passed > best_passed:
            best, best_passed, picked = other.code, passed, index
    seconds = time.perf_counter() - started + (greedy.seconds if greedy else 0.0)
    outcome = Outcome(best, tokens, round(seconds, 2), calls)
    outcome.details = {
        "variant": variant,
        "drawn": drawn,
        "picked": picked,
        "examples": total,
        "examples_passed": best_passed,
        "sandbox_s": round(sandbox_s, 2),
    }
    return outcome


def k_from_run(path: Path) -> tuple[int, str]:
    """k for ``best_of_k`` from a saved run: the loop's output tokens per problem over single_shot's.

    Reads both the current layout (``rows``) and the earlier one (``single_shot`` and
    ``loop`` at the top, where single-shot was the generator's own first call).
    """
    try:
        data = json.loads(Path(path).read_text())
        if "schema" in data:
            rows, single_row, label = data["rows"], "single_shot", "single_shot"
        else:  # the earlier layout: its single-shot was the generator's own first call
            rows, single_row, label = data, "single_shot", "single-shot (the generator's first call)"
        loop = float(rows["loop"]["tokens_per_problem"])
        single = float(rows[single_row]["tokens_per_problem"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"cannot take k from {path}: {exc!r}") from exc
    if single <= 0:
        raise ValueError(f"cannot take k from {path}: single-shot used no tokens")
    k = max(1, round(loop / single))
    return k, f"{Path(path).name}: loop {loop:.0f} / {label} {single:.0f} output tokens per problem"


def _prompt_record(prompt: CodePrompt) -> dict[str, Any]:
    return {
        "system_file": f"prompts/{prompt.system}.md",
        "user_file": f"prompts/{prompt.user}.md",
        "system": prompts.load(prompt.system).template,
        "user": prompts.load(prompt.user).template,
        "names_entry_point": prompt.name_entry_point,
    }


def _generation(model: ModelProvider) -> dict[str, Any]:
    """The generator role's settings (token budget, temperature, stop rule), where the model says."""
    settings = getattr(model.for_role("generator"), "settings", None)
    return asdict(settings) if is_dataclass(settings) and not isinstance(settings, type) else {}


def describe_rows(rows: list[str], model: ModelProvider, *, k: int, k_source: str, levers: dict[str, Any]) -> dict:
    """The exact prompts and settings of each row, for the results file."""
    generation = _generation(model)
    described: dict[str, Any] = {}
    for row in rows:
        if row == "single_shot":
            described[row] = {
                "what": "one greedy call, in the prompt chosen for the task's form",
                "variant_by_form": dict(SINGLE_SHOT),
                "prompts": {form: _prompt_record(VARIANTS[name]) for form, name in SINGLE_SHOT.items()},
                "generation": generation,
                "code": CLEANING,
            }
        elif row.startswith("single_shot:"):
            name = row.split(":", 1)[1]
            described[row] = {
                "what": f"one greedy call with the {name!r} prompt",
                "prompt": _prompt_record(VARIANTS[name]),
                "generation": generation,
                "code": CLEANING,
            }
        elif row == "first_step":
            described[row] = {
                "what": "the generator's first step (roles.code.write_code), in the prompt for the task's form; "
                "a reply that only echoes the stub is asked for once more",
                "prompts": {form: _prompt_record(prompt) for form, prompt in FIRST_CALL.items()},
                "stub_note": STUB_NOTE,
                "generation": generation,
                "code": CLEANING,
            }
        elif row == "best_of_k":
            described[row] = {
                "what": "the single_shot call, then seeded samples of the same prompt; the first candidate passing "
                "the most of the task's own examples (run in the sandbox) wins; sampling stops when one passes "
                "them all, or at once when the task states none",
                "k": k,
                "k_source": k_source,
                "temperature": CANDIDATE_TEMPERATURE,
                "seeds": list(range(1, k)),
                "generation": generation,
            }
        elif row == "loop":
            described[row] = {"what": "the whole graph (generate, validate, review, refine)", "settings": levers}
    return described
