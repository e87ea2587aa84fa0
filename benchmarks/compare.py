"""Compare saved benchmark runs problem by problem against a baseline run.

Pass@1 over a few dozen problems moves by one or two problems between levers, so the
figure alone hides what changed. This reads the JSON files ``bench humaneval`` (and
``bench plain``) save and says, for each run against the first (the baseline) and each
row both hold (single_shot, first_step, best_of_k, loop...), which problems it gained
and lost, and how often the loop's own verdict was wrong. Runs of the same settings
over disjoint problem ranges join with ``+`` (``first.json+second.json``). Only the
problems every run holds are compared.

Files saved before the rows existed hold two outcomes per problem, ``single_shot`` and
``loop``; their single-shot was the generator's own first call, so it is read as the
``first_step`` row.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["CompareError", "compare", "load_run", "main"]

ROW_ORDER = ("single_shot", "first_step", "best_of_k", "loop")


class CompareError(ValueError):
    """A results file that cannot be read as a benchmark run."""


def _bool(value: Any, task_id: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{task_id}: outcomes are not true/false")
    return value


def _earlier_layout(row: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A problem of a file saved before the rows existed: single-shot was the generator's first call."""
    task_id = row["task_id"]
    first = {"passed": _bool(row["single_shot_passed"], task_id)}
    loop: dict[str, Any] = {"passed": _bool(row["loop_passed"], task_id)}
    for key, into in (("single_shot_tokens", first), ("loop_tokens", loop)):
        if key in row:
            into["tokens"] = row[key]
    for key, into in (("single_shot_s", first), ("loop_s", loop)):
        if key in row:
            into["seconds"] = row[key]
    if "loop_self_tests_passed" in row:
        loop["self_tests_passed"] = row["loop_self_tests_passed"]
    if "loop_iterations" in row:
        loop["iterations"] = row["loop_iterations"]
    return {"first_step": first, "loop": loop}


def _rows_of(problem: dict[str, Any]) -> dict[str, dict[str, Any]]:
    task_id = problem["task_id"]
    rows = {name: value for name, value in problem.items() if isinstance(value, dict) and "passed" in value}
    if not rows:
        raise KeyError(f"{task_id}: no outcomes")
    for value in rows.values():
        _bool(value["passed"], task_id)
    return rows


def load_run(spec: str) -> dict[str, dict[str, dict[str, Any]]]:
    """Per-problem outcomes of one run (``a.json+b.json`` joins runs): task id -> row -> outcome."""
    problems: dict[str, dict[str, dict[str, Any]]] = {}
    for part in spec.split("+"):
        try:
            data = json.loads(Path(part).read_text())
            current = isinstance(data, dict) and "schema" in data
            for problem in data["problems"] if isinstance(data, dict) else data:
                rows = _rows_of(problem) if current else _earlier_layout(problem)
                if problem["task_id"] in problems:
                    raise ValueError(f"{problem['task_id']} appears twice")
                problems[problem["task_id"]] = rows
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CompareError(f"cannot read {part} as a HumanEval run (or one of bench plain): {exc!r}") from exc
    return problems


def _index(task_id: str) -> int:
    return int(task_id.rsplit("/", 1)[-1])


def _mean(outcomes: list[dict[str, Any]], key: str) -> float | None:
    values = [o[key] for o in outcomes if key in o]
    return round(sum(values) / len(values), 2) if values and len(values) == len(outcomes) else None


def _row_order(name: str) -> tuple[int, str]:
    return (ROW_ORDER.index(name) if name in ROW_ORDER else 1, name)


def compare(runs: dict[str, dict[str, dict[str, dict[str, Any]]]]) -> dict[str, Any]:
    """Each run against the first, row by row, over the problems all runs hold."""
    names = list(runs)
    shared = sorted(set.intersection(*(set(r) for r in runs.values())), key=_index)
    if not shared:
        raise CompareError("the runs hold no problem in common")
    base = runs[names[0]]
    report_runs = []
    for name in names:
        run = runs[name]
        row_names = sorted(set.intersection(*(set(run[t]) for t in shared)), key=_row_order)
        rows: dict[str, Any] = {}
        for row in row_names:
            outcomes = [run[t][row] for t in shared]
            passed = sum(o["passed"] for o in outcomes)
            entry: dict[str, Any] = {
                "passed": passed,
                "pass_at_1": round(passed / len(shared), 4),
                "tokens_per_problem": _mean(outcomes, "tokens"),
                "seconds_per_problem": _mean(outcomes, "seconds"),
            }
            if all(row in base[t] for t in shared):
                entry["gained"] = [t for t in shared if run[t][row]["passed"] and not base[t][row]["passed"]]
                entry["lost"] = [t for t in shared if base[t][row]["passed"] and not run[t][row]["passed"]]
            if row == "loop":
                verdicts = [o for o in outcomes if "self_tests_passed" in o]
                entry["false_passes"] = (
                    sum(o["self_tests_passed"] and not o["passed"] for o in verdicts)
                    if len(verdicts) == len(outcomes)
                    else None
                )
                entry["mean_iterations"] = _mean(outcomes, "iterations")
            rows[row] = entry
        if "loop" in rows:
            loop = rows["loop"]["passed"]
            rows["loop"]["minus_points"] = {
                row: round(100 * (loop - entry["passed"]) / len(shared), 1)
                for row, entry in rows.items()
                if row != "loop"
            }
        report_runs.append({"run": name, "problems": len(shared), "rows": rows})
    return {"baseline": names[0], "problems": len(shared), "runs": report_runs}


def _ids(task_ids: list[str]) -> str:
    return ", ".join(str(_index(t)) for t in task_ids) or "-"


def render(report: dict[str, Any]) -> str:
    """The comparison as plain text, one line per row of each run."""
    lines = [f"{report['problems']} problems every run holds; baseline {report['baseline']}"]
    for run in report["runs"]:
        lines.append(run["run"])
        for row, entry in run["rows"].items():
            line = (
                f"  {row:<24} {entry['pass_at_1']:.3f} ({entry['passed']})"
                f"  tokens/problem {entry['tokens_per_problem']}, s/problem {entry['seconds_per_problem']}"
            )
            if "gained" in entry:
                line += f"; gained {_ids(entry['gained'])}; lost {_ids(entry['lost'])}"
            lines.append(line)
            if row == "loop":
                minus = ", ".join(f"{other} {points:+.1f}" for other, points in entry["minus_points"].items())
                lines.append(
                    f"  {'':<24} false passes {entry['false_passes']}, mean attempts {entry['mean_iterations']}"
                    + (f"; loop minus (points): {minus}" if minus else "")
                )
    return "\n".join(lines) + "\n"


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """Options of the comparison (shared with the command line)."""
    parser = parser or argparse.ArgumentParser(prog="python -m benchmarks.compare", description=__doc__.split("\n")[0])
    parser.add_argument(
        "runs",
        nargs="+",
        metavar="RUN",
        help="saved results JSON, the first is the baseline; join runs of disjoint problems with '+'",
    )
    parser.add_argument("--json", action="store_true", help="print the comparison as JSON")
    return parser


def main(args: argparse.Namespace | None = None) -> int:
    """Compare the runs named in ``args``; returns an exit code."""
    args = args or build_parser().parse_args()
    report = compare({spec: load_run(spec) for spec in args.runs})
    sys.stdout.write(json.dumps(report, indent=2) + "\n" if args.json else render(report))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except CompareError as exc:
        sys.exit(f"error: {exc}")
