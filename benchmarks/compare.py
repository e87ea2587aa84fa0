"""Compare saved HumanEval runs problem by problem against a baseline run.

Pass@1 over a few dozen problems moves by one or two problems between levers, so the
figure alone hides what changed. This reads the JSON files ``bench humaneval`` saves and
says, for each run against the first (the baseline), which problems the loop gained and
lost, where single-shot differed, and how often the loop's own verdict was wrong. Runs
of the same settings over disjoint problem ranges join with ``+``
(``first.json+second.json``). Only the problems every run holds are compared.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["CompareError", "compare", "load_run", "main"]


class CompareError(ValueError):
    """A results file that cannot be read as a HumanEval run."""


def load_run(spec: str) -> dict[str, dict[str, Any]]:
    """Per-problem results of one run (``a.json+b.json`` joins runs), keyed by task id."""
    problems: dict[str, dict[str, Any]] = {}
    for part in spec.split("+"):
        try:
            data = json.loads(Path(part).read_text())
            rows = data["problems"] if isinstance(data, dict) else data
            for row in rows:
                if not isinstance(row["single_shot_passed"], bool) or not isinstance(row["loop_passed"], bool):
                    raise TypeError(f"{row['task_id']}: outcomes are not true/false")
                if row["task_id"] in problems:
                    raise ValueError(f"{row['task_id']} appears twice")
                problems[row["task_id"]] = row
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CompareError(f"cannot read {part} as a HumanEval run: {exc!r}") from exc
    return problems


def _index(task_id: str) -> int:
    return int(task_id.rsplit("/", 1)[-1])


def _mean(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [row[key] for row in rows if key in row]
    return round(sum(values) / len(values), 2) if values and len(values) == len(rows) else None


def compare(runs: dict[str, dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """Each run against the first, over the problems all runs hold."""
    names = list(runs)
    shared = sorted(set.intersection(*(set(r) for r in runs.values())), key=_index)
    if not shared:
        raise CompareError("the runs hold no problem in common")
    base = runs[names[0]]
    rows = []
    for name in names:
        run = [runs[name][t] for t in shared]
        n = max(1, len(run))
        single = sum(p["single_shot_passed"] for p in run)
        loop = sum(p["loop_passed"] for p in run)
        verdicts = [p for p in run if "loop_self_tests_passed" in p]
        rows.append(
            {
                "run": name,
                "problems": len(run),
                "single_shot_passed": single,
                "loop_passed": loop,
                "single_shot_pass_at_1": round(single / n, 4),
                "loop_pass_at_1": round(loop / n, 4),
                "loop_minus_single_points": round(100 * (loop - single) / n, 1),
                "loop_gained": [t for t in shared if runs[name][t]["loop_passed"] and not base[t]["loop_passed"]],
                "loop_lost": [t for t in shared if base[t]["loop_passed"] and not runs[name][t]["loop_passed"]],
                "single_shot_differs": [
                    t for t in shared if runs[name][t]["single_shot_passed"] != base[t]["single_shot_passed"]
                ],
                "false_passes": (
                    sum(p["loop_self_tests_passed"] and not p["loop_passed"] for p in verdicts)
                    if len(verdicts) == len(run)
                    else None
                ),
                "mean_iterations": _mean(run, "loop_iterations"),
                "tokens_per_problem": _mean(run, "loop_tokens"),
                "seconds_per_problem": _mean(run, "loop_s"),
            }
        )
    return {"baseline": names[0], "problems": len(shared), "runs": rows}


def _ids(task_ids: list[str]) -> str:
    return ", ".join(str(_index(t)) for t in task_ids) or "-"


def render(report: dict[str, Any]) -> str:
    """The comparison as a plain-text table."""
    lines = [f"{report['problems']} problems every run holds; baseline {report['baseline']}"]
    for row in report["runs"]:
        lines.append(
            f"{row['run']}\n"
            f"  single-shot {row['single_shot_pass_at_1']:.3f} ({row['single_shot_passed']})"
            f"   loop {row['loop_pass_at_1']:.3f} ({row['loop_passed']})"
            f"   loop - single {row['loop_minus_single_points']:+.1f} points\n"
            f"  loop gained {_ids(row['loop_gained'])}; lost {_ids(row['loop_lost'])};"
            f" single-shot differs on {_ids(row['single_shot_differs'])}\n"
            f"  false passes {row['false_passes']}, mean attempts {row['mean_iterations']},"
            f" tokens/problem {row['tokens_per_problem']}, s/problem {row['seconds_per_problem']}"
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
