"""The generator: code from the task.

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

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from analysis.interface import complete_from_task, is_stub, is_stub_task, strip_demo_code
from analysis.parsing import extract_code
from roles.context import Ask, CallContext, ask_together, call_model

__all__ = [
    "FIRST_CALL",
    "STUB_NOTE",
    "CodePrompt",
    "TaskForm",
    "ask_for_code",
    "code_ask",
    "code_asks",
    "code_from_reply",
    "prompt_slots",
    "task_form",
    "write_code",
    "write_codes",
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


def code_from_reply(reply: str, *, task: str, entry_point: str | None) -> str | None:
    """The code of a generator reply, cleaned; ``None`` when it holds none.

    The code is cleaned the same way whatever the prompt: example usage is dropped, and for
    a stub-shaped task the task's imports and helpers the reply left out are put back.
    """
    code = extract_code(reply)
    if not code:
        return None
    code = strip_demo_code(code)
    return complete_from_task(code, task) if task_form(task, entry_point) == "stub" else code


def ask_for_code(
    ctx: CallContext,
    prompt: CodePrompt,
    *,
    task: str,
    entry_point: str | None,
    user_tests: str | None,
    overrides: dict[str, object] | None = None,
    note: str = "",
) -> str | None:
    """One generator call with ``prompt``; the code of its reply (see :func:`code_from_reply`)."""
    reply = call_model(
        ctx,
        "generator",
        prompt_slots(prompt, task=task, entry_point=entry_point, user_tests=user_tests, note=note),
        prompt=(prompt.system, prompt.user),
        overrides=overrides,
    )
    return code_from_reply(reply, task=task, entry_point=entry_point)


def code_ask(
    ctx: CallContext,
    *,
    task: str,
    entry_point: str | None,
    user_tests: str | None,
    overrides: dict[str, object] | None = None,
) -> Ask[str | None]:
    """The generator's call for the task's code, in the prompt for the task's form, as an :class:`Ask`.

    Its reply is read by :func:`code_from_reply`; a reply that only echoes the function's
    stub (signature and docstring, no body) is asked for once more on ``ctx``, saying so.
    The result is ``None`` when the reply holds no code.
    """
    prompt = FIRST_CALL[task_form(task, entry_point)]
    slots = prompt_slots(prompt, task=task, entry_point=entry_point, user_tests=user_tests)

    def ask(call_ctx: CallContext) -> str:
        return call_model(call_ctx, "generator", slots, prompt=(prompt.system, prompt.user), overrides=overrides)

    def read(reply: str) -> str | None:
        code = code_from_reply(reply, task=task, entry_point=entry_point)
        if code and is_stub(code, entry_point):
            code = ask_for_code(
                ctx,
                prompt,
                task=task,
                entry_point=entry_point,
                user_tests=user_tests,
                overrides=overrides,
                note=STUB_NOTE,
            )
        return code

    return Ask(ask, read)


def write_codes(
    ctx: CallContext,
    *,
    task: str,
    entry_point: str | None,
    user_tests: str | None,
    overrides: Sequence[dict[str, object]],
) -> list[str | None]:
    """Ask the generator for code once per entry of ``overrides`` (see :func:`code_ask`).

    ``overrides`` are per-call generation settings (a temperature and seed, for sampled
    candidates; ``{}`` for the role's own). The calls are made at once
    (:func:`roles.context.ask_together`: one batch, with a model that decodes calls
    together); only the model calls overlap, the replies are read one after another.
    """
    return ask_together(
        ctx, code_asks(ctx, task=task, entry_point=entry_point, user_tests=user_tests, overrides=overrides)
    )


def code_asks(
    ctx: CallContext,
    *,
    task: str,
    entry_point: str | None,
    user_tests: str | None,
    overrides: Sequence[dict[str, object]],
) -> list[Ask[str | None]]:
    """One :func:`code_ask` per entry of ``overrides``, to be asked together (with other roles' asks, or alone)."""
    return [code_ask(ctx, task=task, entry_point=entry_point, user_tests=user_tests, overrides=o) for o in overrides]


def write_code(
    ctx: CallContext,
    *,
    task: str,
    entry_point: str | None,
    user_tests: str | None,
    overrides: dict[str, object] | None = None,
) -> str | None:
    """Ask the generator for code once (see :func:`write_codes`); ``None`` when the reply holds none."""
    return write_codes(ctx, task=task, entry_point=entry_point, user_tests=user_tests, overrides=[overrides or {}])[0]
