"""Five plain-language tasks through the whole loop on one model: solved count, time per node.

``python -m benchmarks.tasks [--model NAME] [--json]`` runs each task with a fresh
in-memory thread and reports, per task, whether the final code passed its tests, the
attempts used, and the wall time; then the time spent in each node across all tasks
and the generation speed (output tokens / model seconds).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from typing import Any

from langgraph.checkpoint.memory import InMemorySaver

from graph import Settings, build_graph
from graph.config import data_home
from graph.runtime import run_task

TASKS = (
    "Write a function is_palindrome(text) that returns True when text reads the same forwards and "
    "backwards, ignoring case, spaces and punctuation.",
    "Write a function fizzbuzz(n) that returns a list of strings for the numbers 1 to n: 'Fizz' for "
    "multiples of 3, 'Buzz' for multiples of 5, 'FizzBuzz' for multiples of both, else the number itself.",
    "Write a function word_frequencies(text) that returns a dict mapping each lowercase word in text to "
    "how many times it appears; words are separated by whitespace and surrounding punctuation is ignored.",
    "Write a function merge_sorted(a, b) that merges two sorted lists of integers into one sorted list "
    "without using sort() or sorted().",
    "Write a function roman_to_int(s) that converts a Roman numeral string such as 'MCMXCIV' to an integer.",
)


def main(argv: list[str] | None = None) -> int:
    """Run the five tasks and print the summary."""
    from llms import load_model

    parser = argparse.ArgumentParser(prog="python -m benchmarks.tasks", description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="model preset or path (default: the packaged model)")
    parser.add_argument("--max-iterations", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    model = load_model(args.model)
    load_s = time.perf_counter() - started
    settings = Settings(max_iterations=args.max_iterations, results_dir=str(data_home() / "bench-runs"))
    app = build_graph(model, settings=settings, checkpointer=InMemorySaver())
    rows: list[dict[str, Any]] = []
    per_node: defaultdict[str, float] = defaultdict(float)
    tokens = model_s = 0.0
    for task in TASKS:
        t0 = time.perf_counter()
        result = run_task(app, {"task": task})
        wall = time.perf_counter() - t0
        for timing in result["node_timings"]:
            per_node[timing["node"]] += timing["seconds"]
            tokens += timing["output_tokens"]
            model_s += timing["model_seconds"]
        rows.append({
            "task": task[:60], "passed": result["passed"], "attempts": result["iterations"],
            "disputed_tests": len(result.get("disputed_tests", [])), "wall_s": round(wall, 1),
        })  # fmt: skip
    summary = {
        "model": model.name,
        "engine": model.engine,
        "load_s": round(load_s, 2),
        "solved": sum(r["passed"] for r in rows),
        "tasks": rows,
        "seconds_per_node": {k: round(v, 2) for k, v in per_node.items()},
        "tokens_per_s": round(tokens / model_s, 1) if model_s else 0.0,
        "wall_s": round(time.perf_counter() - started, 1),
    }
    if args.json:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
        return 0
    out = sys.stdout
    out.write(f"model {summary['model']} ({summary['engine']}), loaded in {summary['load_s']}s\n")
    for row in rows:
        out.write(
            f"  {'PASS' if row['passed'] else 'FAIL'}  {row['attempts']} attempt(s)  {row['wall_s']:6.1f}s  "
            f"{row['task']}\n"
        )
    out.write(f"solved {summary['solved']} of {len(rows)}; generation {summary['tokens_per_s']} tokens/s\n")
    out.write("seconds per node: " + ", ".join(f"{k} {v}" for k, v in summary["seconds_per_node"].items()) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
