"""More first-attempt candidates over a whole saved run, re-running only the problems they can change.

``Settings.candidates`` is read in one place: the first attempt samples more code only
while none of the candidates so far passes all its tests, up to ``candidates`` in all
(``roles.candidates.pick_candidate``). Each sample has its own seed (1, 2, ...), so the
first ``c`` candidates of a run with ``candidates`` ``C > c`` are those of a run with
``c``. A problem whose first attempt stopped before drawing its last candidate therefore
runs the same with more; only the problems that drew every candidate can change. So a
larger ``candidates`` over a whole split is: the saved run of the smaller one, with just
those problems run again. That is exact up to llama.cpp's run-to-run differences, and
it costs a fraction of a whole run.

    starcoder-agents bench merge BASE.json --exhausted          # the problems to run again
    starcoder-agents bench humaneval --split S --ids ... --rows loop --candidates 6 --token-budget 0
    starcoder-agents bench merge BASE.json RERUN.json --out MERGED.json

A lever that acts only once the first code fails one of the task's examples
(``Settings.tests_with_candidates``, :data:`SAMPLING_LEVERS`) merges the same way: a
problem whose first attempt drew no candidate, or whose task states no example, runs as
before with it, so only the problems with examples that drew one are run again
(``--sampled`` lists them), in batches or not.

The merge refuses what would not be exact: settings that differ in more than
``candidates`` (or fewer candidates in the re-run), a different model, dataset or
split, a base problem that drew every candidate but was not run again, and a run that
drew its candidates in batches (``Settings.candidate_batch`` above 1: a sample decoded
in a batch depends on the batch, so the premise above does not hold). The merged
file records where each outcome came from; ``bench budget`` and ``bench compare`` read
it like any run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from benchmarks.compare import CompareError
from benchmarks.datasets import problem_index
from benchmarks.humaneval import SCHEMA, saved_settings, summarize

__all__ = ["SAMPLING_LEVERS", "build_parser", "drew_every_candidate", "exhausted_ids", "main", "merge", "sampled_ids"]

SAMPLING_LEVERS = frozenset({"tests_with_candidates"})
"""Settings that change a run only where its first code failed one of the task's examples and drew candidates."""


def _generate_calls(loop: dict[str, Any]) -> float:
    calls = loop.get("nodes", {}).get("generate", {}).get("model_calls")
    if calls is None:
        raise KeyError("a loop outcome without its per-node calls")
    return float(calls)


def drew_every_candidate(loop: dict[str, Any], candidates: int) -> bool:
    """Whether a saved loop outcome's first attempt drew all ``candidates`` code candidates.

    The generate node makes one call per code candidate and then one for the tests, so
    it drew them all when it made ``candidates + 1`` calls or more. A reply asked for
    again (one that echoed the stub) adds a call: such a problem counts as drawing every
    candidate and is run again, which costs time but never makes the merge inexact.
    """
    return candidates > 1 and _generate_calls(loop) >= candidates + 1


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise CompareError(f"cannot read {path}: {exc!r}") from exc
    if not isinstance(data, dict) or data.get("schema") != SCHEMA or "settings" not in data:
        raise CompareError(f"{path} is not a saved run of this benchmark's current layout")
    return data


def _joined(spec: str) -> dict[str, Any]:
    """A re-run saved in parts (``a.json+b.json``, the same settings): one run with all their problems."""
    parts = [_read(Path(part)) for part in spec.split("+")]
    for part in parts[1:]:
        for key in ("model", "dataset", "split", "settings"):
            if part.get(key) != parts[0].get(key):
                raise CompareError(f"the parts of {spec} differ in {key}")
    problems = [problem for part in parts for problem in part["problems"]]
    if len({p["task_id"] for p in problems}) < len(problems):
        raise CompareError(f"the parts of {spec} share problems")
    wall_s = sum(float(part.get("wall_s", 0.0)) for part in parts)
    return {**parts[0], "problems": problems, "wall_s": wall_s}


def exhausted_ids(base: dict[str, Any]) -> list[str]:
    """The base run's problems whose first attempt drew every candidate: those more candidates can change."""
    candidates = int(base["settings"]["candidates"])
    try:
        return [p["task_id"] for p in base["problems"] if drew_every_candidate(p["loop"], candidates)]
    except KeyError as exc:
        raise CompareError(f"the base run has loop outcomes without per-node calls: {exc!r}") from exc


def sampled_ids(base: dict[str, Any]) -> list[str]:
    """The base run's problems that state examples and whose first attempt drew a candidate.

    It drew one when the generate node made more than the code's and the tests' calls; a
    reply asked for again (one that echoed the stub) adds a call too, and such a problem
    is run again. A run saved before outcomes recorded the task's form counts every task
    as stating examples.
    """
    try:
        return [
            p["task_id"] for p in base["problems"] if _generate_calls(p["loop"]) > 2 and p["loop"].get("examples", True)
        ]
    except KeyError as exc:
        raise CompareError(f"the base run has loop outcomes without per-node calls: {exc!r}") from exc


def merge(
    base: dict[str, Any], rerun: dict[str, Any], base_name: str, rerun_name: str, upto: int | None = None
) -> dict[str, Any]:
    """The base run with the re-run's outcomes in place of its own, checked to be exact (see the module).

    ``upto``: keep only the problems numbered up to it, for a re-run stopped part way.
    """
    if upto is not None:
        base = {**base, "problems": [p for p in base["problems"] if problem_index(p["task_id"]) <= upto]}
        rerun = {**rerun, "problems": [p for p in rerun["problems"] if problem_index(p["task_id"]) <= upto]}
    for key in ("model", "dataset", "split"):
        if base.get(key) != rerun.get(key):
            raise CompareError(f"the runs differ in {key}: {base.get(key)!r} and {rerun.get(key)!r}")
    was, now = (saved_settings(run) for run in (base, rerun))
    differ = sorted(k for k in {*was, *now} if was.get(k) != now.get(k))
    ids = {p["task_id"] for p in base["problems"]}
    redone = {p["task_id"]: p for p in rerun["problems"]}
    if extra := sorted(set(redone) - ids):
        raise CompareError(f"the re-run holds problems the base run does not: {extra}")
    if differ and set(differ) <= SAMPLING_LEVERS:
        must, why, what = sampled_ids(base), "stated examples and drew a candidate", f"with {', '.join(differ)} changed"
    else:
        _check_more_candidates(was, now, differ)
        must, why = exhausted_ids(base), "drew every candidate"
        what = f"with candidates {rerun['settings']['candidates']}"
    if missing := sorted(set(must) - set(redone)):
        raise CompareError(f"these problems {why} in the base run and were not run again: {missing}")
    problems = []
    for problem in base["problems"]:
        again = redone.get(problem["task_id"])
        outcomes = {k: v for k, v in (again or {}).items() if k != "task_id"}
        problems.append({**problem, **outcomes, "merged_from": rerun_name if again else base_name})
    wall_s = base.get("wall_s", 0.0) + rerun.get("wall_s", 0.0)
    summary = summarize(problems, base["model"], wall_s, tuple(base["rows"]))
    return {
        **{k: v for k, v in base.items() if k not in summary},
        **summary,
        "settings": rerun["settings"],
        "merged": {"base": base_name, "rerun": rerun_name, "rerun_ids": sorted(redone), "upto": upto},
        "note": (
            f"{base_name} with the {len(redone)} problems whose first attempt {why} run again {what} "
            f"({rerun_name}); the other problems run the same with the re-run's settings, so their outcomes "
            "stand (benchmarks/merge.py). wall_s is the two runs' sum."
            + (f" Only the problems numbered up to {upto}." if upto is not None else "")
        ),
    }


def _check_more_candidates(was: dict[str, Any], now: dict[str, Any], differ: list[str]) -> None:
    """Refuse a candidates merge that would not be exact (see the module)."""
    if int(was["candidate_batch"]) > 1 or int(now["candidate_batch"]) > 1:
        raise CompareError(
            "a run that draws its candidates in batches (candidate_batch above 1) does not merge: decoded "
            "together, the samples depend on the batch; run with --candidate-batch 1"
        )
    if differ != ["candidates"]:
        levers = ", ".join(sorted(SAMPLING_LEVERS))
        raise CompareError(f"the runs must differ in candidates alone (or in {levers}), not in {differ}")
    if now["candidates"] < was["candidates"]:
        raise CompareError("the re-run must draw more candidates than the base run, not fewer")


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(prog="python -m benchmarks.merge", description=__doc__.split("\n")[0])
    parser.add_argument("base", help="a saved bench humaneval/plain run (with a loop row)")
    parser.add_argument(
        "rerun", nargs="?", help="same settings, more candidates, on the base's exhausted problems (a+b joins parts)"
    )
    parser.add_argument("--exhausted", action="store_true", help="print the problems to run again, as --ids takes them")
    parser.add_argument(
        "--sampled",
        action="store_true",
        help="print the problems with examples whose first attempt drew a candidate (to rerun for a sampling lever)",
    )
    parser.add_argument("--out", help="where to write the merged run (default: print it)")
    parser.add_argument(
        "--upto", type=int, metavar="N", help="keep only the problems numbered up to N (a re-run stopped part way)"
    )
    return parser


def main(args: argparse.Namespace | None = None) -> int:
    args = args or build_parser().parse_args()
    base = _read(Path(args.base))
    if args.sampled or args.exhausted or not args.rerun:
        ids = sampled_ids(base) if args.sampled else exhausted_ids(base)
        sys.stdout.write(",".join(t.rsplit("/", 1)[-1] for t in ids) + "\n")
        return 0
    merged = merge(base, _joined(args.rerun), Path(args.base).name, args.rerun, args.upto)
    text = json.dumps(merged, indent=2) + "\n"
    if args.out:
        Path(args.out).write_text(text)
        rows = merged["rows"]
        sys.stdout.write(
            ", ".join(f"{name} {row['pass_at_1']:.3f} ({row['passed']})" for name, row in rows.items())
            + f" over {merged['problems_run']} problems: {args.out}\n"
        )
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except CompareError as exc:
        sys.exit(f"error: {exc}")
