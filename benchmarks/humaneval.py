"""HumanEval (or the plain-language tasks): the loop against the strongest single call, side by side.

The benchmark's own tests are hidden from every row: each sees the prompt (signature and
docstring, or the task's words) and nothing else. The hidden tests judge only each row's
final code, in the sandbox, at the end. The rows (``--rows``; see ``benchmarks.baselines``):

- ``single_shot``: one greedy call in the prompt chosen as the strongest for the task's
  form, on development problems; ``single_shot:NAME`` runs prompt variant NAME instead;
- ``first_step``: the generator's own first step, as the loop takes it;
- ``best_of_k``: single_shot and up to k-1 seeded samples, ranked by the task's stated
  examples, with k matched to the loop's output tokens (``--best-of-k auto``);
- ``loop``: the whole graph.

Run it as ``starcoder-agents bench humaneval`` (``bench plain`` for the plain-language
tasks) or ``python -m benchmarks.humaneval``; results go to a JSON file, saved after each
problem, and a PNG chart.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from langgraph.checkpoint.memory import InMemorySaver

from analysis.parsing import parse_python
from benchmarks.baselines import (
    VARIANTS,
    Outcome,
    best_of_k,
    chosen_variant,
    describe_rows,
    first_step,
    k_from_run,
    single_call,
)
from benchmarks.budget import attempt_trail
from benchmarks.datasets import DATASETS, SPLITS, load_problems, problem_index
from graph import Settings, build_graph
from graph.config import data_home
from graph.runtime import run_task
from roles.candidates import has_task_tests
from roles.code import task_form
from roles.context import ModelProvider
from sandbox import SandboxLimits, run_tests

__all__ = [
    "ADDED_LATER",
    "ROWS",
    "SCHEMA",
    "BenchError",
    "Plan",
    "ResumeError",
    "saved_settings",
    "judge",
    "load_problems",
    "load_saved",
    "main",
    "parse_rows",
    "run_benchmark",
]

SCHEMA = 2
"""Layout of the results file: 2 has ``rows``; files without ``schema`` are the earlier layout."""

ADDED_LATER: dict[str, object] = {
    "token_budget": 0,
    "candidate_batch": 1,
    "tests_with_code": False,
    "agreement_ranking": False,
    "contest_passes": False,
    "tests_with_candidates": False,
    "tester_tokens_with_examples": 0,
    "rank_timeout_s": 30.0,
}
"""Settings added after some runs were saved, at the value that did what those runs did."""


def saved_settings(run: dict[str, Any]) -> dict[str, Any]:
    """A saved run's settings, with those added since it was saved at the value it ran with."""
    settings = {**ADDED_LATER, **run["settings"]}
    # Saved before the budget depended on the task's examples: one budget for every task.
    settings.setdefault("token_budget_with_examples", settings["token_budget"])
    return settings


ROWS = ("single_shot", "first_step", "best_of_k", "loop")
DEFAULT_K_FROM = Path(__file__).resolve().parents[1] / "docs" / "results" / "humaneval-heldout-candidate-batch5.json"


class BenchError(ValueError):
    """Options the benchmark cannot run with (an unknown row, a k it cannot work out)."""


class ResumeError(BenchError):
    """A saved results file that cannot be resumed (missing, unreadable, not a run of this benchmark)."""


def _prompt_imports(prompt: str) -> str:
    """The import lines of a HumanEval prompt, which a model's full rewrite may drop."""
    try:
        tree = parse_python(prompt + "    pass\n")
    except SyntaxError:
        return ""
    return "\n".join(ast.unparse(n) for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom))


def judge(code: str | None, problem: dict[str, Any], limits: SandboxLimits | None = None) -> bool:
    """Run the hidden tests on ``code`` in the sandbox; True when they pass."""
    if not code:
        return False
    solution = _prompt_imports(problem["prompt"]) + "\n\n" + code
    hidden = f"from solution import *\n\n{problem['test']}\n\ndef test_hidden():\n    check({problem['entry_point']})\n"
    return run_tests(solution, hidden, limits=limits or SandboxLimits(wall_timeout_s=20))["passed"]


def parse_rows(text: str) -> tuple[str, ...]:
    """``single_shot,loop`` -> the rows to run, in the order they run (single calls first, the loop last)."""
    rows = [r.strip() for r in text.split(",") if r.strip()]
    for row in rows:
        variant = row.split(":", 1)[1] if row.startswith("single_shot:") else None
        if row not in ROWS and variant not in VARIANTS:
            known = ", ".join([*ROWS, *(f"single_shot:{v}" for v in VARIANTS)])
            raise ValueError(f"unknown row {row!r}; known: {known}")
    if not rows:
        raise ValueError("no rows to run")
    order = {name: i for i, name in enumerate(ROWS)}
    return tuple(sorted(dict.fromkeys(rows), key=lambda r: (order.get(r, 0.5), r)))


@dataclass(frozen=True)
class Plan:
    """Which rows run, and best_of_k's k."""

    rows: tuple[str, ...] = ROWS
    k: int = 1


NODE_FIELDS = ("seconds", "model_seconds", "sandbox_seconds", "model_calls", "output_tokens")


def per_node(timings: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Time, model calls and tokens of each node, summed over its runs."""
    nodes: dict[str, dict[str, float]] = {}
    for timing in timings:
        totals = nodes.setdefault(timing["node"], dict.fromkeys(NODE_FIELDS, 0.0))
        for name in NODE_FIELDS:
            totals[name] = round(totals[name] + timing[name], 3)
    return nodes


def _loop(app: Any, problem: dict[str, Any]) -> tuple[Outcome, dict[str, Any]]:

    started = time.perf_counter()
    task = {"task": problem["prompt"], "entry_point": problem["entry_point"]}
    result = run_task(app, task, thread_id=f"bench-{uuid.uuid4().hex}")
    seconds = round(time.perf_counter() - started, 2)
    timings = result.get("node_timings", [])
    outcome = Outcome(
        result.get("code") or None,
        tokens=sum(t["output_tokens"] for t in timings),
        seconds=seconds,
        calls=sum(t["model_calls"] for t in timings),
    )
    first = next(iter(result.get("attempts", [])), None)
    extra = {
        "self_tests_passed": bool(result.get("passed")),
        # The task's own examples (or given tests) were among the first attempt's tests: its token budget
        # was Settings.token_budget_with_examples (nodes.generate).
        "examples": has_task_tests(first["tests"]) if first else False,
        # Tests passed but rival samples part from the code (roles.rivals): "passed" withheld.
        "contested": len(result.get("contested", [])),
        "iterations": int(result.get("iterations", 0)),
        "model_s": round(sum(t["model_seconds"] for t in timings), 2),
        "sandbox_s": round(sum(t["sandbox_seconds"] for t in timings), 2),
        "nodes": per_node(timings),
        # After the run's seconds are taken: the hidden tests judge each attempt it could have
        # stopped at, so `bench budget` can replay token budgets (benchmarks.budget).
        "trail": attempt_trail(result, lambda code: judge(code, problem)),
    }
    return outcome, extra


def run_problem(
    model: ModelProvider, app: Any, problem: dict[str, Any], plan: Plan, settings: Settings
) -> dict[str, Any]:
    """Solve one problem each way of the plan, and judge each row's code with the hidden tests."""
    record: dict[str, Any] = {
        "task_id": problem["task_id"],
        "form": task_form(problem["prompt"], problem["entry_point"]),
    }
    greedy: Outcome | None = None
    for row in plan.rows:
        extra: dict[str, Any] = {}
        if row == "single_shot":
            outcome = greedy = single_call(model, chosen_variant(problem), problem)
        elif row.startswith("single_shot:"):
            outcome = single_call(model, row.split(":", 1)[1], problem)
        elif row == "first_step":
            outcome = first_step(model, problem)
        elif row == "best_of_k":
            outcome = best_of_k(model, problem, plan.k, settings, greedy=greedy)
        else:
            outcome, extra = _loop(app, problem)
        record[row] = {
            "passed": judge(outcome.code, problem),
            "tokens": outcome.tokens,
            "seconds": outcome.seconds,
            "calls": outcome.calls,
            **outcome.details,
            **extra,
            "code": outcome.code or "",
        }
    return record


def _mean(values: list[float], digits: int = 1) -> float:
    return round(sum(values) / len(values), digits) if values else 0.0


def _loop_summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    n = max(1, len(runs))
    wall = sum(r["seconds"] for r in runs)
    accounted = sum(r["model_s"] + r["sandbox_s"] for r in runs)
    nodes: dict[str, dict[str, float]] = {}
    for r in runs:
        for node, totals in r["nodes"].items():
            into = nodes.setdefault(node, dict.fromkeys(NODE_FIELDS, 0.0))
            for name in NODE_FIELDS:
                into[name] += totals[name]
    return {
        "first_attempt_share": round(sum(r["iterations"] == 1 for r in runs) / n, 4),
        "mean_iterations": round(sum(r["iterations"] for r in runs) / n, 2),
        "self_tests_pass_rate": round(sum(r["self_tests_passed"] for r in runs) / n, 4),
        "false_passes": sum(r["self_tests_passed"] and not r["passed"] for r in runs),
        # Contested runs, and how many of them the hidden tests found right (a claim withheld in vain).
        "contested": sum(bool(r.get("contested")) for r in runs),
        "contested_but_right": sum(bool(r.get("contested")) and r["passed"] for r in runs),
        "model_share": round(sum(r["model_s"] for r in runs) / wall, 4) if wall else 0.0,
        "sandbox_share": round(sum(r["sandbox_s"] for r in runs) / wall, 4) if wall else 0.0,
        "orchestration_overhead_share": round((wall - accounted) / wall, 4) if wall else 0.0,
        "per_node_per_problem": {node: {k: round(v / n, 2) for k, v in t.items()} for node, t in nodes.items()},
    }


def summarize(results: list[dict[str, Any]], model_name: str, wall_s: float, rows: tuple[str, ...]) -> dict[str, Any]:
    """Aggregate per-problem results into the benchmark's summary: pass@1, tokens and seconds per row."""
    summary_rows: dict[str, Any] = {}
    for row in rows:
        runs = [r[row] for r in results if row in r]
        passed = sum(r["passed"] for r in runs)
        entry: dict[str, Any] = {
            "problems": len(runs),
            "passed": passed,
            "pass_at_1": round(passed / max(1, len(runs)), 4),
            "tokens_per_problem": _mean([r["tokens"] for r in runs]),
            "seconds_per_problem": _mean([r["seconds"] for r in runs], 2),
            "calls_per_problem": _mean([r["calls"] for r in runs], 2),
        }
        if row == "best_of_k":
            entry["candidates_per_problem"] = _mean([r["drawn"] for r in runs], 2)
        if row == "loop":
            entry.update(_loop_summary(runs))
        summary_rows[row] = entry
    return {
        "schema": SCHEMA,
        "model": model_name,
        "problems_run": len(results),
        "rows": summary_rows,
        "wall_s": round(wall_s, 1),
        "problems": results,
    }


def draw_chart(summary: dict[str, Any], path: Path, title: str = "HumanEval") -> None:
    """Per-problem outcome of each row (and the loop's attempts, when it ran), as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    problems = summary["problems"]
    rows = list(summary["rows"])
    xs = [problem_index(p["task_id"]) for p in problems]
    with_loop = "loop" in rows
    fig, axes = plt.subplots(
        2 if with_loop else 1,
        1,
        figsize=(max(8, len(problems) * 0.12), 2 + 0.4 * len(rows) + (2 if with_loop else 0)),
        sharex=True,
        squeeze=False,
        gridspec_kw={"height_ratios": [len(rows), 4]} if with_loop else None,
    )
    top = axes[0][0]
    for y, row in enumerate(reversed(rows)):
        colours = ["tab:green" if p.get(row, {}).get("passed") else "tab:red" for p in problems]
        top.scatter(xs, [y] * len(problems), c=colours, marker="s", s=20)
    top.set_yticks(range(len(rows)), [f"{r} {summary['rows'][r]['pass_at_1']:.0%}" for r in reversed(rows)])
    top.set_title(f"{title}, {summary['model']}: hidden tests passed (green) per problem")
    if with_loop:
        bottom = axes[1][0]
        bottom.bar(xs, [p["loop"]["iterations"] if "loop" in p else 0 for p in problems], color="tab:blue")
        bottom.set_ylabel("loop attempts")
    axes[-1][0].set_xlabel("problem index")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_benchmark(
    model: ModelProvider,
    problems: list[dict[str, Any]],
    settings: Settings,
    *,
    plan: Plan | None = None,
    progress: bool = True,
    on_summary: Callable[[dict[str, Any]], None] | None = None,
    done: list[dict[str, Any]] | None = None,
    wall_before_s: float = 0.0,
) -> dict[str, Any]:
    """Run every problem each way of ``plan`` (all rows, k=1, by default) and return the summary.

    ``on_summary`` gets the summary so far after each problem, so a long run that is
    stopped part-way still leaves its results behind. ``done`` and ``wall_before_s``
    are the results and wall time of a stopped run being resumed: the summary covers
    them and ``problems`` (the ones still to run) together.
    """
    from tqdm import tqdm

    plan = plan or Plan()
    app = build_graph(model, settings=settings, checkpointer=InMemorySaver()) if "loop" in plan.rows else None
    started = time.perf_counter()
    results = list(done or [])

    def wall() -> float:
        return wall_before_s + time.perf_counter() - started

    bar = tqdm(problems, disable=not progress, file=sys.stderr, unit="problem")
    for problem in bar:
        results.append(run_problem(model, app, problem, plan, settings))
        bar.set_postfix({row: f"{sum(r[row]['passed'] for r in results if row in r)}" for row in plan.rows})
        if on_summary:
            on_summary(summarize(results, model.name, wall(), plan.rows))
    return summarize(results, model.name, wall(), plan.rows)


def load_saved(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A saved results file and its per-problem results, to resume a stopped run."""
    try:
        saved = json.loads(path.read_text())
        if not isinstance(saved, dict) or saved.get("schema") != SCHEMA:
            raise ResumeError(
                f"cannot resume from {path}: it was saved by an earlier version of the benchmark "
                "(whose single-shot row was the generator's own first step); start a new run, "
                "or set it beside one with 'bench compare'"
            )
        results = saved["problems"]
        rows = parse_rows(",".join(saved["options"]["rows"]))
        for problem in results:
            if not all(isinstance(problem[row]["passed"], bool) for row in rows):
                raise TypeError(f"{problem['task_id']}: outcomes are not true/false")
        unknown = set(saved["settings"]) - {f.name for f in fields(Settings)}
        int(saved["options"]["offset"])
    except ResumeError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ResumeError(f"cannot resume from {path}: {exc!r}") from exc
    if unknown:
        raise ResumeError(f"cannot resume from {path}: unknown settings {sorted(unknown)}")
    return saved, results


def build_parser(
    parser: argparse.ArgumentParser | None = None, *, dataset: str = "humaneval"
) -> argparse.ArgumentParser:
    """Options of the benchmark (shared with the command line); ``dataset`` is the default problem set."""
    parser = parser or argparse.ArgumentParser(
        prog="python -m benchmarks.humaneval", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--dataset", choices=DATASETS, default=dataset, help=f"problem set (default: {dataset})")
    parser.add_argument(
        "--split",
        choices=SPLITS,
        default="all",
        help="dev: even-indexed problems (for choosing prompts and settings); heldout: odd-indexed (for reporting)",
    )
    parser.add_argument("--limit", type=int, help="number of problems of the split (default: all)")
    parser.add_argument("--offset", type=int, default=0, help="problems of the split to skip first")
    parser.add_argument(
        "--ids",
        type=lambda text: [i.strip() for i in text.split(",") if i.strip()],
        help="only these problems of the split, comma-separated task ids or numbers (e.g. 79,89)",
    )
    parser.add_argument(
        "--rows",
        default=",".join(ROWS),
        help=f"rows to run, comma-separated (default: {','.join(ROWS)}; single_shot:NAME runs prompt variant NAME, "
        f"one of {', '.join(VARIANTS)})",
    )
    parser.add_argument(
        "--best-of-k",
        default="auto",
        metavar="K",
        help="candidates of the best_of_k row: a number, or 'auto' for the loop's output tokens per problem over "
        "single_shot's in the run --k-from names",
    )
    parser.add_argument(
        "--k-from",
        metavar="JSON",
        default=str(DEFAULT_K_FROM),
        help="saved run that --best-of-k auto takes the token ratio from (default: the README's defaults run)",
    )
    parser.add_argument("--model", help="model preset or path (default: the packaged model)")
    defaults = Settings()  # the loop's own defaults, so the benchmark measures what users run
    parser.add_argument(
        "--max-iterations", type=int, default=defaults.max_iterations, help="refinements per problem in the loop"
    )
    parser.add_argument("--no-arbiter", action="store_true", help="turn off the arbiter of disputed tests (a lever)")
    parser.add_argument(
        "--min-score",
        type=float,
        default=defaults.min_score,
        help="review score a passing attempt needs to stop (0: tests alone decide)",
    )
    parser.add_argument(
        "--no-examples", action="store_true", help="do not add the prompt's doctest examples to the tests (a lever)"
    )
    parser.add_argument(
        "--candidates",
        type=int,
        default=defaults.candidates,
        help="code candidates for the loop's first attempt, ranked by execution (a lever; 1: off)",
    )
    parser.add_argument(
        "--candidate-batch",
        type=int,
        default=defaults.candidate_batch,
        help="sampled candidates asked for at once, decoded as one batch (a lever; 1: one at a time)",
    )
    parser.add_argument(
        "--agreement-ranking",
        action=argparse.BooleanOptionalAction,
        default=defaults.agreement_ranking,
        help="rank candidates for a task without examples by how many of them agree, as CodeT does (a lever)",
    )
    parser.add_argument(
        "--candidates-on-example-failure",
        action=argparse.BooleanOptionalAction,
        default=defaults.candidates_on_example_failure,
        help="sample candidates only when the first code fails one of the task's examples (a lever)",
    )
    parser.add_argument(
        "--stop-on-task-tests",
        action=argparse.BooleanOptionalAction,
        default=defaults.stop_on_task_tests,
        help="stop when the task's examples pass and only self-written tests fail (a lever)",
    )
    parser.add_argument(
        "--examples-first",
        action=argparse.BooleanOptionalAction,
        default=defaults.examples_first,
        help="choose among the candidates by the task's own tests before writing any (a lever)",
    )
    parser.add_argument(
        "--resample-repeats",
        action=argparse.BooleanOptionalAction,
        default=defaults.resample_repeats,
        help="when the refiner repeats an earlier attempt, ask again with sampling (a lever)",
    )
    parser.add_argument(
        "--lean-tests",
        action=argparse.BooleanOptionalAction,
        default=defaults.lean_tests,
        help="ask the tester for 3 or 4 one-assert tests (a lever: fewer tokens, fewer wrong claims)",
    )
    parser.add_argument(
        "--token-budget",
        type=int,
        default=defaults.token_budget,
        help="output tokens a loop run may spend before no new attempt starts, on a task that states no "
        "example (a lever; 0: no limit)",
    )
    parser.add_argument(
        "--token-budget-with-examples",
        type=int,
        default=defaults.token_budget_with_examples,
        help="the same budget for a task whose own examples are among its tests (a lever; 0: no limit)",
    )
    parser.add_argument(
        "--tests-with-code",
        action=argparse.BooleanOptionalAction,
        default=defaults.tests_with_code,
        help="write a stub-shaped task's tests from its stub, beside the first code (a lever)",
    )
    parser.add_argument(
        "--tests-with-candidates",
        action=argparse.BooleanOptionalAction,
        default=defaults.tests_with_candidates,
        help="write the tests in the same batch as the sampled candidates, when the first code fails "
        "one of the task's examples (a lever)",
    )
    parser.add_argument(
        "--tester-tokens-with-examples",
        type=int,
        default=defaults.tester_tokens_with_examples,
        help="the most tokens the tester may write for a task that gives tests of its own (a lever; 0: no cap)",
    )
    parser.add_argument(
        "--rank-timeout-s",
        type=float,
        default=defaults.rank_timeout_s,
        help="wall-clock seconds for a sandbox run that only ranks code (a lever; the verdict's run keeps "
        "STARCODER_TEST_TIMEOUT_S, 30 s by default)",
    )
    parser.add_argument(
        "--contest-passes",
        action=argparse.BooleanOptionalAction,
        default=defaults.contest_passes,
        help="withhold 'passed' when rival samples part from a sampled first attempt (roles.rivals)",
    )
    parser.add_argument(
        "--tester-sees-code",
        action="store_true",
        help="show the tester the whole code, not its interface (a lever: tests no longer independent)",
    )
    parser.add_argument(
        "--no-failure-details",
        action="store_true",
        help="tell the refiner only how many tests failed, not which or how (a lever)",
    )
    parser.add_argument("--out", help="folder for the JSON and PNG results")
    parser.add_argument(
        "--resume",
        metavar="JSON",
        help="continue a stopped run from its saved JSON (its model, problems, rows and levers win over the flags)",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    return parser


def _best_of_k(rows: tuple[str, ...], value: str, k_from: str) -> tuple[int, str]:
    if "best_of_k" not in rows:
        return 1, "best_of_k not run"
    if value == "auto":
        try:
            return k_from_run(Path(k_from))
        except ValueError as exc:
            raise BenchError(str(exc)) from exc
    try:
        k = int(value)
    except ValueError:
        raise BenchError(f"--best-of-k must be a number or 'auto', not {value!r}") from None
    if k < 1:
        raise BenchError("--best-of-k must be at least 1")
    return k, "--best-of-k"


def _report(summary: dict[str, Any], where: Path) -> str:
    lines = [
        f"model {summary['model']}, {summary['dataset']} {summary['split']}, {summary['problems_run']} problems",
        f"{'row':<24} {'pass@1':>14} {'tokens/problem':>15} {'s/problem':>10}",
    ]
    for name, row in summary["rows"].items():
        score = f"{row['pass_at_1']:.3f} ({row['passed']})"
        lines.append(f"{name:<24} {score:>14} {row['tokens_per_problem']:>15} {row['seconds_per_problem']:>10}")
    if loop := summary["rows"].get("loop"):
        lines.append(
            f"loop: stopped after the first attempt {loop['first_attempt_share']:.1%}, mean attempts "
            f"{loop['mean_iterations']}, false passes {loop['false_passes']}, contested {loop.get('contested', 0)} "
            f"({loop.get('contested_but_right', 0)} of them right), orchestration overhead "
            f"{loop['orchestration_overhead_share']:.1%}"
        )
        lines.append(
            "loop per node, s/problem (output tokens): "
            + ", ".join(
                f"{k} {v['seconds']} ({v['output_tokens']:.0f})" for k, v in loop["per_node_per_problem"].items()
            )
        )
    lines.append(f"results: {where}.json and .png")
    return "\n".join(lines) + "\n"


def main(args: argparse.Namespace | None = None) -> int:
    """Run the benchmark from parsed options; returns an exit code."""
    from llms import load_model

    args = args or build_parser().parse_args()
    done: list[dict[str, Any]] = []
    wall_before_s = 0.0
    levers = {
        "max_iterations": args.max_iterations,
        "arbitrate_tests": not args.no_arbiter,
        "task_examples": not args.no_examples,
        "min_score": args.min_score,
        "candidates": args.candidates,
        "candidate_batch": args.candidate_batch,
        "agreement_ranking": args.agreement_ranking,
        "candidates_on_example_failure": args.candidates_on_example_failure,
        "stop_on_task_tests": args.stop_on_task_tests,
        "lean_tests": args.lean_tests,
        "token_budget": args.token_budget,
        "token_budget_with_examples": args.token_budget_with_examples,
        "examples_first": args.examples_first,
        "resample_repeats": args.resample_repeats,
        "tester_sees_code": args.tester_sees_code,
        "tests_with_code": args.tests_with_code,
        "tests_with_candidates": args.tests_with_candidates,
        "tester_tokens_with_examples": args.tester_tokens_with_examples,
        "rank_timeout_s": args.rank_timeout_s,
        "contest_passes": args.contest_passes,
        "failure_details": not args.no_failure_details,
    }
    if args.resume:
        path = Path(args.resume)
        saved, done = load_saved(path)
        options = saved["options"]
        levers = {**levers, **saved_settings(saved)}
        wall_before_s = float(saved.get("wall_s", 0.0))
        out, stem = path.parent, path.stem
    else:
        try:
            rows = parse_rows(args.rows)
        except ValueError as exc:
            raise BenchError(str(exc)) from exc
        k, k_source = _best_of_k(rows, args.best_of_k, args.k_from)
        options = {
            "dataset": args.dataset,
            "split": args.split,
            "limit": args.limit,
            "offset": args.offset,
            "ids": args.ids,
            "model": args.model,
            "rows": list(rows),
            "k": k,
            "k_source": k_source,
        }
        out = Path(args.out or data_home() / "bench")
        stem = f"{args.dataset}-{args.split}-{time.strftime('%Y%m%d-%H%M%S')}"
    plan = Plan(rows=tuple(options["rows"]), k=int(options["k"]))
    model = load_model(options["model"])
    finished = {r["task_id"] for r in done}
    try:
        selected = load_problems(
            options["limit"], options["offset"], dataset=options["dataset"], split=options["split"],
            ids=options.get("ids"),
        )  # fmt: skip
    except ValueError as exc:
        raise BenchError(str(exc)) from exc
    problems = [p for p in selected if p["task_id"] not in finished]
    settings = Settings(**levers, results_dir=str(data_home() / "bench-runs"))
    out.mkdir(parents=True, exist_ok=True)
    extra = {
        "dataset": options["dataset"],
        "split": options["split"],
        "options": options,
        "settings": levers,
        "row_settings": describe_rows(list(plan.rows), model, k=plan.k, k_source=options["k_source"], levers=levers),
        "machine": machine_description(),
    }

    def save(summary: dict[str, Any]) -> None:
        (out / f"{stem}.json").write_text(json.dumps({**summary, **extra}, indent=2))

    summary = {
        **run_benchmark(model, problems, settings, plan=plan, on_summary=save, done=done, wall_before_s=wall_before_s),
        **extra,
    }
    save(summary)
    draw_chart(summary, out / f"{stem}.png", title="HumanEval" if options["dataset"] == "humaneval" else "Plain tasks")
    if args.json:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    else:
        sys.stdout.write(_report(summary, out / stem))
    return 0


def machine_description() -> str:
    """A short description of where the benchmark ran."""
    import os
    import platform

    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip() + ", "
                break
    except OSError:
        pass
    python = f"{platform.python_implementation()} {platform.python_version()}"
    return f"{cpu}{platform.machine()} {os.cpu_count()} cores, {python}"


if __name__ == "__main__":
    sys.exit(main())
