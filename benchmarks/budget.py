"""Replay saved loop runs under output-token budgets, without running a model again.

A token budget (``Settings.token_budget``) only ends a run earlier: after each attempt's
review the router sends the run to finalize once its model calls have written that many
tokens, and finalize hands back the best attempt so far. Up to that review the run is the
same run. So ``bench humaneval`` saves, with each loop outcome, its *trail*: after each
attempt's review, the output tokens and node seconds spent so far, and the hidden tests'
verdict (and the loop's own) on the attempt finalize would hand back if the run stopped
there. Replaying a budget is then reading the trail: the first point at or over the
budget, or the whole run when it never gets there. The replayed figures are what
``bench humaneval --token-budget B`` gives on the same problems, up to llama.cpp's
run-to-run differences; seconds of a cut run are the nodes' own (the whole run's are
wall time, which adds the graph's overhead, about 0.1%).

A run's budget depends on the task's form (``Settings.token_budget_with_examples`` where
the task's own examples are among its tests, ``Settings.token_budget`` where it states
none): ``--budgets`` replays each budget on every task, unless ``--plain-budget`` gives
tasks without examples a budget of their own. A loop outcome says which form its task
had (``examples``); one saved before it did is read from its dataset's task.

    starcoder-agents bench budget RUN.json [RUN2.json+RUN3.json] [--budgets 0,1000,1500] [--plain-budget 1500]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from analysis.testcases import examples_as_tests
from benchmarks.compare import CompareError, load_run
from benchmarks.datasets import load_problems
from roles.candidates import best_attempt

__all__ = ["attempt_trail", "build_parser", "main", "render", "replay", "replay_run", "states_examples"]

DEFAULT_BUDGETS = (0, 600, 800, 1000, 1250, 1500, 2000, 2500)


def attempt_trail(result: dict[str, Any], judge_code: Callable[[str], bool]) -> list[dict[str, Any]]:
    """The run's trail: one point per attempt, at the end of its review (see the module's docstring).

    ``result`` is a finished run's output (its ``attempts`` and ``node_timings``);
    ``judge_code`` runs the hidden tests on code. Each distinct code is judged once.
    """
    attempts, verdicts = result.get("attempts", []), {}
    tokens = seconds = 0.0
    trail = []
    for timing in result.get("node_timings", []):
        tokens += timing["output_tokens"]
        seconds += timing["seconds"]
        if timing["node"] != "review":
            continue
        reached = [a for a in attempts if a["iteration"] <= timing["iteration"]]
        if not reached:
            continue
        best = best_attempt(reached)
        if best["code"] not in verdicts:
            verdicts[best["code"]] = bool(best["code"]) and judge_code(best["code"])
        trail.append(
            {
                "iteration": timing["iteration"],
                "tokens": int(tokens),
                "seconds": round(seconds, 2),
                "passed": verdicts[best["code"]],
                # A first attempt's pass that rivals contest is no claim (nodes.finalize).
                "self_passed": bool(best["validation"]["passed"])
                and not (best["iteration"] == 0 and result.get("contested")),
            }
        )
    return trail


def replay(loop: dict[str, Any], budget: int) -> dict[str, Any]:
    """A saved loop outcome as it would have ended under ``budget`` output tokens (0: no budget)."""
    if "trail" not in loop:
        raise KeyError("a loop outcome without its trail (saved before trails were recorded)")
    whole = {
        "passed": loop["passed"],
        "self_passed": loop["self_tests_passed"],
        "tokens": loop["tokens"],
        "seconds": loop["seconds"],
        "cut": False,
    }
    if budget <= 0:
        return whole
    for point in loop["trail"][:-1]:  # at the last review the run ends anyway
        if point["tokens"] >= budget:
            return {**{key: point[key] for key in ("passed", "self_passed", "tokens", "seconds")}, "cut": True}
    return whole


def states_examples(task_ids: list[str]) -> dict[str, bool]:
    """Whether each task (of HumanEval or the plain-language set) states examples the loop turns into tests."""
    found = {}
    for dataset in {"plain" if task_id.startswith("Plain/") else "humaneval" for task_id in task_ids}:
        for problem in load_problems(dataset=dataset):
            names = [problem["entry_point"]]
            found[problem["task_id"]] = bool(examples_as_tests(problem["prompt"], names))
    return {task_id: found[task_id] for task_id in task_ids}


def replay_run(
    spec: str, budgets: tuple[int, ...] = DEFAULT_BUDGETS, plain_budget: int | None = None
) -> dict[str, Any]:
    """Every budget over one run (``a.json+b.json`` joins runs): pass@1, false passes, cost.

    ``plain_budget``: the budget of tasks that state no example, where each of ``budgets``
    is that of tasks that do (None: each budget for every task).
    """
    problems = load_run(spec)
    loops = {task_id: rows["loop"] for task_id, rows in problems.items() if "loop" in rows}
    if not loops:
        raise CompareError(f"{spec} holds no loop outcomes")
    missing = sorted(task_id for task_id, loop in loops.items() if "trail" not in loop)
    if missing:
        raise CompareError(f"{spec}: {len(missing)} loop outcomes have no trail (saved before trails were recorded)")
    n = len(loops)
    single = [problems[t]["single_shot"] for t in loops if "single_shot" in problems[t]]
    single_s = sum(s["seconds"] for s in single) / n if len(single) == n else None
    single_tokens = sum(s["tokens"] for s in single) / n if len(single) == n else None
    unknown = [task_id for task_id, loop in loops.items() if "examples" not in loop]
    examples = {**states_examples(unknown), **{t: loop["examples"] for t, loop in loops.items() if t not in unknown}}
    rows = []
    for budget in budgets:
        ends = [
            replay(loop, budget if examples[t] or plain_budget is None else plain_budget) for t, loop in loops.items()
        ]
        passed = sum(e["passed"] for e in ends)
        tokens = sum(e["tokens"] for e in ends) / n
        seconds = sum(e["seconds"] for e in ends) / n
        rows.append(
            {
                "budget": budget,
                "passed": passed,
                "pass_at_1": round(passed / n, 4),
                "false_passes": sum(e["self_passed"] and not e["passed"] for e in ends),
                "cut": sum(e["cut"] for e in ends),
                "tokens_per_problem": round(tokens, 1),
                "seconds_per_problem": round(seconds, 2),
                "tokens_x_single": round(tokens / single_tokens, 2) if single_tokens else None,
                "seconds_x_single": round(seconds / single_s, 2) if single_s else None,
            }
        )
    return {
        "run": spec,
        "problems": n,
        "without_examples": sum(not e for e in examples.values()),
        "plain_budget": plain_budget,
        "single_shot_passed": sum(s["passed"] for s in single) if len(single) == n else None,
        "rows": rows,
    }


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(prog="python -m benchmarks.budget", description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", help="saved bench humaneval/plain JSON files (a.json+b.json joins parts)")
    parser.add_argument(
        "--budgets",
        type=lambda text: tuple(int(b) for b in text.split(",") if b.strip()),
        default=DEFAULT_BUDGETS,
        help="output-token budgets to replay, comma-separated (0: none; default "
        f"{','.join(map(str, DEFAULT_BUDGETS))})",
    )
    parser.add_argument(
        "--plain-budget",
        type=int,
        default=None,
        help="the budget of tasks that state no example of their own, where --budgets are those of tasks that "
        "do (default: each budget for every task)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser


def render(report: dict[str, Any]) -> str:
    """The report as a table, one row per budget."""
    single = report["single_shot_passed"]
    plain = report.get("plain_budget")
    lines = [
        f"{report['run']}: {report['problems']} problems" + (f", single_shot {single}" if single is not None else ""),
        f"{report.get('without_examples', 0)} state no example"
        + (f"; their budget is {plain or 'none'}, the rows' that of the others" if plain is not None else ""),
        f"{'budget':>7} {'pass@1':>12} {'false':>6} {'cut':>4} {'tokens':>8} {'s':>7} {'x tokens':>9} {'x s':>6}",
    ]
    for row in report["rows"]:
        lines.append(
            f"{row['budget'] or 'none':>7} {row['pass_at_1']:>6.3f} ({row['passed']:>3}) {row['false_passes']:>6} "
            f"{row['cut']:>4} {row['tokens_per_problem']:>8.0f} {row['seconds_per_problem']:>7.1f} "
            f"{row['tokens_x_single'] or '-':>9} {row['seconds_x_single'] or '-':>6}"
        )
    return "\n".join(lines) + "\n"


def main(args: argparse.Namespace | None = None) -> int:
    args = args or build_parser().parse_args()
    reports = [replay_run(spec, args.budgets, args.plain_budget) for spec in args.runs]
    sys.stdout.write(json.dumps(reports, indent=2) + "\n" if args.json else "\n".join(map(render, reports)))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except CompareError as exc:
        sys.exit(f"error: {exc}")
