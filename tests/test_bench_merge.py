"""More first-attempt candidates over a saved run, re-running only what they change (benchmarks.merge)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from benchmarks.compare import CompareError
from benchmarks.humaneval import NODE_FIELDS
from benchmarks.merge import drew_every_candidate, exhausted_ids, merge, sampled_ids

SETTINGS = {"max_iterations": 3, "candidates": 3, "token_budget": 0, "min_score": 7.0}


def _loop(passed: bool, generate_calls: int, tokens: int = 900) -> dict:
    return {
        "passed": passed, "self_tests_passed": passed, "tokens": tokens, "seconds": 20.0, "calls": generate_calls + 1,
        "iterations": 1, "model_s": 19.0, "sandbox_s": 0.5, "trail": [],
        "nodes": {"generate": {**dict.fromkeys(NODE_FIELDS, 0.0), "model_calls": float(generate_calls)}},
    }  # fmt: skip


def _run(problems: list[dict], **settings) -> dict:
    return {
        "schema": 2, "model": "qwen2.5-coder-0.5b-instruct", "dataset": "humaneval", "split": "dev",
        "rows": {"single_shot": {}, "loop": {}}, "problems_run": len(problems), "wall_s": 100.0,
        "problems": problems, "settings": {**SETTINGS, **settings},
    }  # fmt: skip


def _problem(index: int, loop: dict, single: bool = False) -> dict:
    single_shot = {"passed": single, "tokens": 200, "seconds": 5.0, "calls": 1}
    return {"task_id": f"HumanEval/{index}", "single_shot": single_shot, "loop": loop}


BASE = _run(
    [
        _problem(0, _loop(True, 2)),  # the greedy code passed: no candidate drawn
        _problem(2, _loop(True, 3)),  # the second candidate passed
        _problem(4, _loop(False, 4)),  # drew all three
        _problem(6, _loop(True, 4), single=True),  # drew all three; the third passed
    ]
)


def test_a_problem_that_drew_every_candidate_is_told_from_one_that_stopped_early():
    assert [drew_every_candidate(p["loop"], 3) for p in BASE["problems"]] == [False, False, True, True]
    assert not drew_every_candidate(_loop(False, 9), 1)  # one candidate: nothing more was ever drawn
    assert exhausted_ids(BASE) == ["HumanEval/4", "HumanEval/6"]


def test_the_rerun_replaces_just_its_problems_and_the_figures_follow():
    rerun = _run([_problem(4, _loop(True, 6, tokens=1500)), _problem(6, _loop(True, 5))], candidates=6)
    rerun["rows"] = {"loop": {}}
    for problem in rerun["problems"]:
        del problem["single_shot"]
    merged = merge(BASE, rerun, "base.json", "rerun.json")

    assert [p["merged_from"] for p in merged["problems"]] == ["base.json", "base.json", "rerun.json", "rerun.json"]
    assert merged["problems"][2]["loop"]["passed"] is True and merged["problems"][2]["single_shot"]["passed"] is False
    assert merged["rows"]["loop"]["passed"] == 4 and merged["rows"]["single_shot"]["passed"] == 1
    assert merged["rows"]["loop"]["tokens_per_problem"] == pytest.approx((900 * 3 + 1500) / 4, abs=0.1)
    assert merged["settings"]["candidates"] == 6 and merged["wall_s"] == 200.0
    assert merged["merged"]["rerun_ids"] == ["HumanEval/4", "HumanEval/6"]


@pytest.mark.parametrize(
    ("rerun", "message"),
    [
        (_run([_problem(4, _loop(True, 6)), _problem(6, _loop(True, 5))], candidates=6, max_iterations=2), "alone"),
        (_run([_problem(4, _loop(True, 2)), _problem(6, _loop(True, 2))], candidates=2), "not fewer"),
        (_run([_problem(4, _loop(True, 6))], candidates=6), r"not run again: \['HumanEval/6'\]"),
        (_run([_problem(4, _loop(True, 6)), _problem(6, _loop(True, 5)), _problem(8, _loop(True, 2))], candidates=6),
         "does not"),
        ({**_run([_problem(4, _loop(True, 6)), _problem(6, _loop(True, 5))], candidates=6), "split": "heldout"},
         "split"),
        (_run([_problem(4, _loop(True, 7)), _problem(6, _loop(True, 7))], candidates=6, candidate_batch=2),
         "in batches"),
    ],
)  # fmt: skip
def test_a_merge_that_would_not_be_exact_is_refused(rerun, message):
    with pytest.raises(CompareError, match=message):
        merge(BASE, rerun, "base.json", "rerun.json")


def test_a_base_saved_before_the_token_budget_reads_as_no_budget():
    base = _run(BASE["problems"])
    del base["settings"]["token_budget"]
    rerun = _run([_problem(4, _loop(True, 6)), _problem(6, _loop(True, 5))], candidates=6)
    assert merge(base, rerun, "a", "b")["rows"]["loop"]["passed"] == 4
    with pytest.raises(CompareError, match="token_budget"):
        merge(base, _run(rerun["problems"], candidates=6, token_budget=1250), "a", "b")


def test_the_command_lists_the_problems_to_run_again_and_writes_the_merge(tmp_path):
    base, rerun, out = tmp_path / "base.json", tmp_path / "rerun.json", tmp_path / "merged.json"
    base.write_text(json.dumps(BASE))
    rerun.write_text(json.dumps(_run([_problem(4, _loop(True, 6)), _problem(6, _loop(True, 5))], candidates=6)))
    command = [sys.executable, "-m", "benchmarks.merge", str(base)]
    listed = subprocess.run([*command, "--exhausted"], capture_output=True, text=True, check=True)
    assert listed.stdout == "4,6\n"
    done = subprocess.run([*command, str(rerun), "--out", str(out)], capture_output=True, text=True, check=True)
    assert "loop 1.000 (4)" in done.stdout and json.loads(out.read_text())["rows"]["loop"]["passed"] == 4
    refused = subprocess.run([*command, str(tmp_path / "missing.json")], capture_output=True, text=True)
    assert refused.returncode != 0 and "cannot read" in refused.stderr


def test_a_rerun_stopped_part_way_merges_up_to_where_it_got():
    rerun = _run([_problem(4, _loop(True, 6))], candidates=6)
    merged = merge(BASE, rerun, "base.json", "rerun.json", upto=4)
    assert [p["task_id"] for p in merged["problems"]] == ["HumanEval/0", "HumanEval/2", "HumanEval/4"]
    assert merged["rows"]["loop"]["passed"] == 3 and "up to 4" in merged["note"]


def test_a_rerun_saved_in_two_parts_joins(tmp_path):
    first, second, base = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "base.json"
    base.write_text(json.dumps(BASE))
    first.write_text(json.dumps(_run([_problem(4, _loop(True, 6))], candidates=6)))
    second.write_text(json.dumps(_run([_problem(6, _loop(False, 7))], candidates=6)))
    command = [sys.executable, "-m", "benchmarks.merge", str(base), f"{first}+{second}"]
    merged = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
    assert merged["rows"]["loop"]["passed"] == 3 and merged["merged"]["rerun_ids"] == ["HumanEval/4", "HumanEval/6"]
    clash = subprocess.run([*command[:-1], f"{first}+{first}"], capture_output=True, text=True)
    assert clash.returncode != 0 and "share problems" in clash.stderr


def test_a_sampling_lever_reruns_the_problems_with_examples_that_drew_a_candidate():
    # Batched candidates merge here: the lever changes nothing where no candidate was drawn.
    base = _run(
        [
            _problem(0, _loop(True, 2) | {"examples": True}),  # passed its examples: no candidate
            _problem(2, _loop(True, 7) | {"examples": True}),  # failed one and sampled
            _problem(4, _loop(False, 7) | {"examples": False}),  # sampled, but states no example
            _problem(6, _loop(False, 3)),  # saved before the task's form was recorded: counts as examples
        ],
        candidate_batch=5,
    )
    assert sampled_ids(base) == ["HumanEval/2", "HumanEval/6"]
    rerun = _run([_problem(2, _loop(True, 7)), _problem(6, _loop(True, 7))], candidate_batch=5)
    rerun["settings"]["tests_with_candidates"] = True
    merged = merge(base, rerun, "base.json", "rerun.json")

    assert [p["merged_from"] for p in merged["problems"]] == ["base.json", "rerun.json", "base.json", "rerun.json"]
    assert merged["rows"]["loop"]["passed"] == 3 and merged["settings"]["tests_with_candidates"] is True
    assert "stated examples and drew a candidate" in merged["note"]
    with pytest.raises(CompareError, match=r"not run again: \['HumanEval/6'\]"):
        merge(base, {**rerun, "problems": rerun["problems"][:1]}, "base.json", "rerun.json")
    rerun["settings"]["max_iterations"] = 2  # a lever beside it changes every problem: a candidates merge, refused
    with pytest.raises(CompareError, match="in batches"):
        merge(base, rerun, "base.json", "rerun.json")
