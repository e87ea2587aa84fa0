"""generate: the first attempt — code from the task, then tests from the task alone.

Two model calls. The tester sees the task and the code's *interface* (names and
signatures) but never its bodies, so a bug in the code cannot be copied into the
tests that are meant to catch it.
"""

from __future__ import annotations

import time

from langchain_core.runnables import RunnableConfig

from analysis.interface import interface_of, is_stub, public_names, reconcile_tests, strip_demo_code
from analysis.parsing import extract_code
from analysis.testcases import examples_as_tests, split_asserts
from graph.config import Settings
from graph.state import AgentState, TaskInput, check_task_input
from nodes.candidates import pick_candidate
from nodes.common import NO_CODE, ModelProvider, Usage, call_model, node_timing

__all__ = ["NO_CODE", "generate", "write_code", "write_tests"]

STUB_NOTE = (
    "Your previous reply repeated the function's signature and docstring without a body. "
    "Write the complete function, with the code that does the work."
)


def _interface_hint(entry_point: str | None, user_tests: str | None) -> str:
    hints = []
    if entry_point:
        hints.append(f"Name the main function `{entry_point}`.")
    if user_tests:
        hints.append(f"The code must also pass these tests:\n```python\n{user_tests.strip()}\n```")
    return "\n\n".join(hints)


def write_code(
    model: ModelProvider,
    *,
    task: str,
    entry_point: str | None,
    user_tests: str | None,
    config: RunnableConfig | None,
    usage: Usage,
    overrides: dict[str, object] | None = None,
) -> str | None:
    """Ask the generator for code; returns ``None`` when the reply holds none.

    A reply that only echoes the function's stub (signature and docstring, no body)
    is asked for once more, saying so. ``overrides`` are per-call generation settings
    (a temperature and seed, for sampled candidates).
    """
    hint = _interface_hint(entry_point, user_tests)
    code = None
    for note in ("", STUB_NOTE):
        reply = call_model(
            model,
            "generator",
            system="generator_system",
            user_prompt="generator_user",
            slots={"task": task, "interface_hint": "\n\n".join(filter(None, (hint, note)))},
            config=config,
            usage=usage,
            overrides=overrides,
        )
        code = extract_code(reply)
        code = strip_demo_code(code) if code else None
        if not code or not is_stub(code, entry_point):
            break
    return code


def write_tests(
    model: ModelProvider,
    *,
    task: str,
    code: str,
    user_tests: str | None,
    config: RunnableConfig | None,
    usage: Usage,
    previous_error: str | None = None,
    use_examples: bool = True,
    show_code: bool = False,
) -> str:
    """Ask the tester for pytest tests of ``code``'s interface; returns '' when it wrote none.

    ``previous_error`` says why the last tests could not run, so a retry differs.
    With ``use_examples``, the task's own doctest examples are added as tests too.
    ``show_code`` shows the tester the whole code instead of its interface (a lever
    measured by the benchmark; off, a bug in the code cannot leak into its tests).
    """
    names = public_names(code)
    retry_note = (
        f"Your previous tests could not run ({previous_error}). Keep them short and complete.\n"
        if previous_error
        else ""
    )
    reply = call_model(
        model,
        "tester",
        system="tester_system",
        user_prompt="tester_user",
        slots={
            "task": task,
            "interface": code.strip() if show_code else interface_of(code),
            "names": ", ".join(names) or "*",
            "retry_note": retry_note,
        },
        config=config,
        usage=usage,
    )
    tests = extract_code(reply) or ""
    parts = [split_asserts(reconcile_tests(tests, code))] if tests else []
    if use_examples and (examples := examples_as_tests(task, names)):
        parts.append("# Examples given in the task\n" + reconcile_tests(examples, code))
    if user_tests:
        parts.append("# Tests given with the task\n" + reconcile_tests(user_tests, code))
    return "\n\n".join(parts)


def generate(state: AgentState, config: RunnableConfig, *, model: ModelProvider, settings: Settings) -> dict:
    """Write the first attempt's code and its tests."""
    started = time.perf_counter()
    settings = settings.merged(config)
    task_input = check_task_input({k: v for k, v in state.items() if k in TaskInput.__annotations__})
    task = task_input["task"]
    usage = Usage()
    code = write_code(
        model,
        task=task,
        entry_point=task_input.get("entry_point"),
        user_tests=task_input.get("user_tests"),
        config=config,
        usage=usage,
    )
    tests = ""
    picked = ""
    if code:
        tests = write_tests(
            model,
            task=task,
            code=code,
            user_tests=task_input.get("user_tests"),
            config=config,
            usage=usage,
            use_examples=settings.task_examples,
            show_code=settings.tester_sees_code,
        )
    if code and settings.candidates > 1:

        def sample(overrides: dict[str, object]) -> str | None:
            return write_code(
                model,
                task=task,
                entry_point=task_input.get("entry_point"),
                user_tests=task_input.get("user_tests"),
                config=config,
                usage=usage,
                overrides=overrides,
            )

        pick = pick_candidate(
            code, tests, sample=sample, candidates=settings.candidates, settings=settings, usage=usage
        )
        code = pick.code
        picked = f", candidate {pick.index + 1} of {pick.tried} tried"
    summary = (
        f"{len((code or '').splitlines())} lines of code, {tests.count('def test_')} tests{picked}" if code else NO_CODE
    )
    return {
        "task": task,
        "entry_point": task_input.get("entry_point"),
        "user_tests": task_input.get("user_tests"),
        "max_iterations": task_input.get("max_iterations", settings.max_iterations),
        "min_score": task_input.get("min_score", settings.min_score),
        "model": ", ".join(sorted(usage.models)) or model.name,
        "iteration": 0,
        "code": code or "",
        "tests": tests,
        "generation_error": None if code else NO_CODE,
        "tests_need_rewrite": False,
        "disputed_tests": [],
        "node_timings": [node_timing("generate", 0, started, summary, usage)],
    }
