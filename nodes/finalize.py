"""finalize: pick the best attempt and persist the run's JSON record.

Best means passing first (a pass resting only on tests judged in the code's own process
counts below one judged outside it), then the most of the task's examples passed, then
the most tests passed, then the higher review score, then the earlier attempt: a
rewrite that the tests cannot tell apart from the first attempt has no evidence for it,
and the first attempt is the strongest single call (:func:`roles.candidates.best_attempt`,
which `bench budget` uses too).
"passed" is withheld when the chosen attempt is a sampled first attempt whose rivals part
from it (``contested``): its tests passed (``validation``), but they cannot tell which of
two answers is right.
The record is written to ``<results_dir>/<thread_id>.json`` atomically, so running
finalize twice for a thread (a resumed run) rewrites the same file.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from langgraph.runtime import Runtime

from graph.config import Settings
from graph.state import AgentState, tokens_spent
from nodes.common import node_timing, run_settings
from roles.candidates import best_attempt

__all__ = ["best_attempt", "finalize"]

logger = logging.getLogger(__name__)


def _write_record(folder: str, thread_id: str, record: dict) -> str:
    path = Path(folder).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    safe_id = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in thread_id) or "run"
    target = path / f"{safe_id}.json"
    with tempfile.NamedTemporaryFile("w", dir=path, suffix=".tmp", delete=False, encoding="utf-8") as tmp:
        json.dump(record, tmp, indent=2, default=str)
    os.replace(tmp.name, target)
    return str(target)


def finalize(state: AgentState, runtime: Runtime[Settings]) -> dict:
    """Choose the best attempt, write the record, and fill the output fields."""
    started = time.perf_counter()
    attempts = state.get("attempts", [])
    best = best_attempt(attempts)
    thread_id = str((runtime.execution_info and runtime.execution_info.thread_id) or "run")
    # Rivals part from the first attempt's code (roles.rivals): its tests cannot settle it.
    contested = state.get("contested", []) if best["iteration"] == 0 and best["validation"]["passed"] else []
    output = {
        "task": state["task"],
        "passed": best["validation"]["passed"] and not contested,
        "contested": contested,
        "code": best["code"],
        "tests": best["tests"],
        "validation": best["validation"],
        "review": best["review"],
        "best_iteration": best["iteration"],
        "iterations": len(attempts),
        "settled": bool(state.get("settled")),
        "model": state.get("model", ""),
        # Tests were set aside cumulatively: everything dropped up to the chosen attempt.
        "disputed_tests": [
            d for a in attempts if a["iteration"] <= best["iteration"] for d in a.get("disputed_tests", [])
        ],
    }
    summary = f"best attempt {best['iteration']}"
    if 0 < (budget := state.get("token_budget", 0)) <= (spent := tokens_spent(state)):
        summary += f", token budget spent ({spent} of {budget} output tokens)"
    timing = node_timing("finalize", state.get("iteration", 0), started, summary)
    record = {
        **output,
        "thread_id": thread_id,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "attempts": attempts,
        "node_timings": [*state.get("node_timings", []), timing],
    }
    try:
        result_path: str | None = _write_record(run_settings(runtime).results_dir, thread_id, record)
    except OSError as exc:  # a full or read-only disk must not lose the answer itself
        logger.warning("could not write the run record: %s", exc)
        result_path = None
    return {**output, "result_path": result_path, "node_timings": [timing]}
