"""generate: the first attempt — code from the task, then tests from the task alone.

Two model calls. The tester sees the task and the code's *interface* (names and
signatures) but never its bodies, so a bug in the code cannot be copied into the
tests that are meant to catch it.

The code is asked for in the form that suits the task, each chosen by measurement as
the strongest single call for its kind of task (``starcoder-agents bench humaneval
--split dev`` and ``bench plain``; see the README's Results). A stub-shaped task (a
signature and docstring, as HumanEval states its problems) is handed over as code to
complete, in the plain completion prompt; a task in plain words goes as it is, under
the same one-line system message. The longer prompt with style rules that the
generator used before (``generator_system``/``generator_user``) lost to both: 0.512
against 0.671 on HumanEval's development half, 18 against 24 of 44 plain tasks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

from langchain_core.runnables import RunnableConfig

from analysis.interface import (
    complete_from_task,
    interface_of,
    is_stub,
    is_stub_task,
    public_names,
    reconcile_tests,
    strip_demo_code,
)
from analysis.parsing import extract_code
from analysis.testcases import examples_as_tests, split_asserts
from graph.config import Settings
from graph.state import AgentState, TaskInput, check_task_input
from nodes.candidates import pick_candidate
from nodes.common import NO_CODE, ModelProvider, Usage, call_model, node_timing

__all__ = [
    "FIRST_CALL",
    "NO_CODE",
    "CodePrompt",
    "TaskForm",
    "ask_for_code",
    "generate",
    "prompt_slots",
    "task_form",
    "write_code",
    "write_tests",
]

STUB_NOTE = (
    "Your previous reply repeated the function's signature and docstring without a body. "
    "Write the complete function, with the code that does the work."
)

TaskForm = Literal["stub", "plain"]
"""``stub``: the task is code to complete (a signature and docstring); ``plain``: words."""


@dataclass(frozen=True)
class CodePrompt:
    """One way of asking the generator for code: its two prompt files.

    ``name_entry_point``: the prompt says which name the main function must have (a
    stub already shows it, so the completion prompt does not repeat it).
    """

    system: str
    user: str
    name_entry_point: bool = True


FIRST_CALL: dict[TaskForm, CodePrompt] = {
    "stub": CodePrompt("completion_system", "completion_user", name_entry_point=False),
    "plain": CodePrompt("completion_system", "request_user"),
}
"""The generator's first call for each task form."""


def task_form(task: str, entry_point: str | None) -> TaskForm:
    """``stub`` when the task is Python with its function left to write, else ``plain``."""
    return "stub" if is_stub_task(task, entry_point) else "plain"


def prompt_slots(
    prompt: CodePrompt, *, task: str, entry_point: str | None, user_tests: str | None, note: str = ""
) -> dict[str, str]:
    """The slots every code prompt may use.

    ``task`` is the task as given and ``task_lines`` the same ending in exactly one line
    break (for a prompt that closes a code fence right after it). ``interface_hint`` is
    the hints alone (a prompt puts its own blank line before it); ``hint_block`` is the
    same with a leading blank line, or nothing, so a prompt that ends with it ends where
    the task does when there is no hint.
    """
    hints = []
    if entry_point and prompt.name_entry_point:
        hints.append(f"Name the main function `{entry_point}`.")
    if user_tests:
        hints.append(f"The code must also pass these tests:\n```python\n{user_tests.strip()}\n```")
    if note:
        hints.append(note)
    hint = "\n\n".join(hints)
    return {
        "task": task,
        "task_lines": task.rstrip() + "\n",
        "interface_hint": hint,
        "hint_block": f"\n\n{hint}" if hint else "",
    }


def ask_for_code(
    model: ModelProvider,
    prompt: CodePrompt,
    *,
    task: str,
    entry_point: str | None,
    user_tests: str | None,
    config: RunnableConfig | None,
    usage: Usage,
    overrides: dict[str, object] | None = None,
    note: str = "",
) -> str | None:
    """One generator call with ``prompt``; the code of its reply, or ``None`` when it holds none.

    The code is cleaned the same way whatever the prompt: example usage is dropped, and for
    a stub-shaped task the task's imports and helpers the reply left out are put back.
    """
    reply = call_model(
        model,
        "generator",
        system=prompt.system,
        user_prompt=prompt.user,
        slots=prompt_slots(prompt, task=task, entry_point=entry_point, user_tests=user_tests, note=note),
        config=config,
        usage=usage,
        overrides=overrides,
    )
    code = extract_code(reply)
    if not code:
        return None
    code = strip_demo_code(code)
    return complete_from_task(code, task) if task_form(task, entry_point) == "stub" else code


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
    """Ask the generator for code, in the prompt for the task's form; ``None`` when the reply holds none.

    A reply that only echoes the function's stub (signature and docstring, no body)
    is asked for once more, saying so. ``overrides`` are per-call generation settings
    (a temperature and seed, for sampled candidates).
    """
    prompt = FIRST_CALL[task_form(task, entry_point)]
    code = None
    for note in ("", STUB_NOTE):
        code = ask_for_code(
            model,
            prompt,
            task=task,
            entry_point=entry_point,
            user_tests=user_tests,
            config=config,
            usage=usage,
            overrides=overrides,
            note=note,
        )
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
