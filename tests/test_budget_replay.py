"""Replaying token budgets over saved loop runs (benchmarks.budget), and a budgeted run ending where it says."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.budget import attempt_trail, replay, replay_run
from benchmarks.compare import CompareError


def _attempt(iteration: int, code: str, passed: bool, passed_count: int) -> dict:
    validation = {
        "passed": passed, "passed_count": passed_count, "failed_count": 0 if passed else 1, "errored_count": 0,
        "failures": [] if passed else [{"test": "test_x", "message": "", "traceback": ""}], "in_process_tests": [],
    }  # fmt: skip
    return {"iteration": iteration, "code": code, "tests": "", "validation": validation, "review": {"score": 8.0}}


def _timing(node: str, iteration: int, tokens: int, seconds: float) -> dict:
    return {"node": node, "iteration": iteration, "output_tokens": tokens, "seconds": seconds}


RESULT = {
    "attempts": [_attempt(0, "wrong", False, 1), _attempt(1, "worse", False, 0), _attempt(2, "right", True, 2)],
    "node_timings": [
        _timing("generate", 0, 500, 10.0), _timing("validate", 0, 0, 1.0), _timing("review", 0, 0, 0.5),
        _timing("refine", 1, 300, 6.0), _timing("validate", 1, 0, 1.0), _timing("review", 1, 0, 0.5),
        _timing("refine", 2, 200, 4.0), _timing("validate", 2, 0, 1.0), _timing("review", 2, 60, 2.0),
        _timing("finalize", 2, 0, 0.0),
    ],
}  # fmt: skip


def test_the_trail_says_what_each_stop_would_have_handed_back():
    judged = []

    def judge(code: str) -> bool:
        judged.append(code)
        return code == "right"

    trail = attempt_trail(RESULT, judge)
    points = [(p["iteration"], p["tokens"], p["seconds"]) for p in trail]
    assert points == [(0, 500, 11.5), (1, 800, 19.0), (2, 1060, 26.0)]
    # After attempt 1, finalize would still hand back attempt 0 (it passes more tests than 1)
    assert [(p["passed"], p["self_passed"]) for p in trail] == [(False, False), (False, False), (True, True)]
    assert judged == ["wrong", "right"]  # each code judged once


def test_a_contested_first_attempt_is_no_claim_on_the_trail_and_a_later_pass_is():
    rival = {"call": "f(1)", "outcomes": "", "rival": "", "probes_parted": 1, "probes": 2}
    contested = {
        "attempts": [_attempt(0, "first", True, 2), _attempt(1, "second", True, 3)],
        "node_timings": RESULT["node_timings"][:6],
        "contested": [rival],
    }
    trail = attempt_trail(contested, lambda code: True)
    assert [(p["iteration"], p["self_passed"]) for p in trail] == [(0, False), (1, True)]


def test_a_budget_replays_to_the_first_stop_at_or_over_it():
    loop = {"passed": True, "self_tests_passed": True, "tokens": 1060, "seconds": 26.1}
    loop["trail"] = attempt_trail(RESULT, lambda code: code == "right")
    assert replay(loop, 0) == {"passed": True, "self_passed": True, "tokens": 1060, "seconds": 26.1, "cut": False}
    assert replay(loop, 500)["tokens"] == 500 and replay(loop, 500)["cut"] is True
    assert replay(loop, 501) == {"passed": False, "self_passed": False, "tokens": 800, "seconds": 19.0, "cut": True}
    assert replay(loop, 801)["passed"] is True and replay(loop, 801)["cut"] is False  # the run ends there anyway
    with pytest.raises(KeyError, match="trail"):
        replay({k: v for k, v in loop.items() if k != "trail"}, 500)


def _run_file(tmp_path, with_trail: bool = True) -> str:
    loop = {"passed": True, "self_tests_passed": True, "tokens": 1060, "seconds": 26.1, "code": "right"}
    if with_trail:
        loop["trail"] = attempt_trail(RESULT, lambda code: code == "right")
    problems = [
        {"task_id": "HumanEval/1", "single_shot": {"passed": False, "tokens": 200, "seconds": 5.0}, "loop": loop},
        {
            "task_id": "HumanEval/3",
            "single_shot": {"passed": True, "tokens": 100, "seconds": 3.0},
            "loop": {"passed": True, "self_tests_passed": True, "tokens": 400, "seconds": 9.0, "trail": []},
        },
    ]
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"schema": 2, "problems": problems}))
    return str(path)


def test_a_saved_run_replays_under_each_budget(tmp_path):
    report = replay_run(_run_file(tmp_path), (0, 600))
    assert report["problems"] == 2 and report["single_shot_passed"] == 1
    whole, cut = report["rows"]
    assert (whole["passed"], whole["tokens_per_problem"], whole["seconds_x_single"]) == (2, 730.0, 4.39)
    assert (cut["passed"], cut["cut"], cut["tokens_per_problem"], cut["tokens_x_single"]) == (1, 1, 600.0, 4.0)
    with pytest.raises(CompareError, match="no trail"):
        replay_run(_run_file(tmp_path, with_trail=False))


def test_the_command_prints_the_table(tmp_path):
    path = _run_file(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "bench", "budget", path, "--budgets", "0,600"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "2 problems, single_shot 1" in done.stdout
    assert "   none  1.000 (  2)" in done.stdout and "    600  0.500 (  1)" in done.stdout


def test_a_budgeted_run_ends_where_the_replay_of_the_whole_run_says(tmp_path):
    from langgraph.checkpoint.memory import InMemorySaver

    from graph import build_graph
    from tests.fakes import ADD_TESTS, BAD_CODE, GOOD_CODE, GOOD_REVIEW, FakeScriptedModels, fenced, scripted_settings

    def run(budget: int) -> dict:
        models = FakeScriptedModels(
            generator=[fenced(BAD_CODE)], tester=[fenced(ADD_TESTS)], arbiter=[fenced(GOOD_CODE)],
            refiner=[fenced(GOOD_CODE)], reviewer=[GOOD_REVIEW],
        )  # fmt: skip
        settings = scripted_settings(results_dir=str(tmp_path), test_timeout_s=60.0, token_budget=budget)
        app = build_graph(models, settings=settings, checkpointer=InMemorySaver())
        config = {"configurable": {"thread_id": str(budget)}}
        return app.invoke({"task": "Write add(a, b) that returns the sum."}, config)

    whole = run(0)
    trail = attempt_trail(whole, lambda code: "a + b" in code)
    assert len(trail) == 2 and [p["passed"] for p in trail] == [False, True]
    cut = run(trail[0]["tokens"])
    assert len(cut["attempts"]) == 1 and sum(t["output_tokens"] for t in cut["node_timings"]) == trail[0]["tokens"]
    assert run(trail[0]["tokens"] + 1)["passed"] is True


def test_tasks_without_examples_can_replay_a_budget_of_their_own(tmp_path):
    path = Path(_run_file(tmp_path))
    data = json.loads(path.read_text())
    data["problems"][0]["loop"]["examples"] = False  # its task states no example
    data["problems"][1]["loop"]["examples"] = True
    path.write_text(json.dumps(data))
    [row] = replay_run(str(path), (600,), plain_budget=0)["rows"]
    assert (row["passed"], row["cut"]) == (2, 0)  # the plain task ran on with no budget
    [row] = replay_run(str(path), (600,))["rows"]
    assert (row["passed"], row["cut"]) == (1, 1)


def test_a_task_s_form_is_read_from_its_dataset_when_the_run_did_not_save_it():
    from benchmarks.budget import states_examples

    assert states_examples(["HumanEval/0", "Plain/0"]) == {"HumanEval/0": True, "Plain/0": False}
