"""The HumanEval harness's judging and bookkeeping, with the real hidden tests and a fake model."""

from __future__ import annotations

import json

import pytest

from benchmarks.compare import CompareError, compare, load_run, render
from benchmarks.humaneval import ResumeError, judge, load_problems, load_saved, run_benchmark
from graph import Settings
from tests.fakes import FakeScriptedModels, fenced, scripted_settings


def test_hidden_tests_judge_the_final_code():
    problem = load_problems(limit=1)[0]
    canonical = problem["prompt"] + problem["canonical_solution"]
    assert judge(canonical, problem) is True
    wrong = "def has_close_elements(numbers, threshold):\n    return True\n"
    assert judge(wrong, problem) is False
    assert judge(None, problem) is False
    # A full rewrite that drops the prompt's imports still runs: they are put back.
    body_only = canonical.split("from typing import List")[-1]
    assert judge(body_only, problem) is True


def test_loop_beats_single_shot_when_refinement_fixes_the_code(tmp_path):
    problem = load_problems(limit=1)[0]
    good = problem["prompt"] + problem["canonical_solution"]
    bad = "def has_close_elements(numbers, threshold):\n    return False\n"
    own_tests = (
        "from solution import has_close_elements\n\n"
        "def test_close():\n    assert has_close_elements([1.0, 1.05], 0.1)\n"
    )
    models = FakeScriptedModels(
        generator=[fenced(bad), fenced(bad)],  # single-shot, then the loop's first attempt
        tester=[fenced(own_tests)],
        arbiter=[fenced(good)],
        refiner=[fenced(good)],
        reviewer=['{"score": 9, "recommendations": []}'],
    )
    summary = run_benchmark(models, [problem], scripted_settings(results_dir=str(tmp_path)), progress=False)
    assert summary["single_shot"]["pass_at_1"] == 0.0
    assert summary["loop"]["pass_at_1"] == 1.0
    assert summary["problems"][0]["loop_iterations"] == 2
    assert 0.0 <= summary["loop"]["orchestration_overhead_share"] <= 1.0
    nodes = summary["loop"]["per_node_per_problem"]
    assert set(nodes) == {"generate", "validate", "review", "refine", "finalize"}
    assert nodes["generate"]["model_calls"] == 2 and nodes["refine"]["model_calls"] == 2  # arbiter + refiner
    assert nodes["validate"]["sandbox_seconds"] > 0 and nodes["validate"]["model_calls"] == 0


def test_a_long_run_leaves_its_results_behind_as_it_goes(tmp_path):
    problems = load_problems(limit=2)
    solutions = [fenced(p["prompt"] + p["canonical_solution"]) for p in problems]
    models = FakeScriptedModels(
        generator=[solutions[0], solutions[0], solutions[1], solutions[1]],
        tester=[fenced("def test_nothing_to_check():\n    assert True\n")] * 2,
        reviewer=['{"score": 9, "recommendations": []}'] * 2,
    )
    seen = []
    summary = run_benchmark(
        models, problems, scripted_settings(results_dir=str(tmp_path)), progress=False, on_summary=seen.append
    )
    assert [s["problems_run"] for s in seen] == [1, 2]
    assert seen[-1]["loop"]["pass_at_1"] == summary["loop"]["pass_at_1"] == 1.0


def test_a_stopped_run_resumes_from_its_saved_results(tmp_path):
    problems = load_problems(limit=3)
    solutions = [fenced(p["prompt"] + p["canonical_solution"]) for p in problems]
    models = FakeScriptedModels(
        generator=[solutions[0], solutions[0], solutions[1], solutions[1]],
        tester=[fenced("def test_nothing_to_check():\n    assert True\n")] * 2,
        reviewer=['{"score": 9, "recommendations": []}'] * 2,
    )
    saved = tmp_path / "run.json"

    def save(summary):
        saved.write_text(json.dumps({**summary, "settings": {"max_iterations": 3}, "offset": 0}))

    settings = scripted_settings(results_dir=str(tmp_path))
    first = run_benchmark(models, problems[:2], settings, progress=False, on_summary=save)
    data, done = load_saved(saved)
    assert [r.task_id for r in done] == ["HumanEval/0", "HumanEval/1"]

    models = FakeScriptedModels(  # the third problem, single-shot wrong and the loop never fixing it
        generator=[fenced("def " + problems[2]["entry_point"] + "(x):\n    return None\n")] * 9,
        tester=[fenced("def test_nothing_to_check():\n    assert True\n")] * 2,
        reviewer=['{"score": 9, "recommendations": []}'] * 2,
    )
    no_budget = scripted_settings(results_dir=str(tmp_path), max_iterations=0)
    resumed = run_benchmark(models, problems[2:], no_budget, progress=False, done=done, wall_before_s=data["wall_s"])
    assert [p["task_id"] for p in resumed["problems"]] == ["HumanEval/0", "HumanEval/1", "HumanEval/2"]
    assert resumed["single_shot"]["pass_at_1"] == resumed["loop"]["pass_at_1"] == pytest.approx(2 / 3, abs=1e-3)
    assert resumed["wall_s"] >= first["wall_s"]


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "{}",
        '{"problems": [{"task_id": "x"}], "settings": {}, "offset": 0}',
        '{"problems": [], "settings": {"no_such_lever": 1}, "offset": 0}',
    ],
)
def test_resuming_a_file_that_is_not_a_saved_run_is_refused(tmp_path, text):
    path = tmp_path / "run.json"
    path.write_text(text)
    with pytest.raises(ResumeError, match="cannot resume"):
        load_saved(path)


def _saved_run(path, outcomes, first=0):
    """A results file as ``bench humaneval`` saves it; outcomes are (single, loop, own verdict)."""
    problems = [
        {
            "task_id": f"HumanEval/{first + i}",
            "single_shot_passed": single,
            "loop_passed": loop,
            "loop_self_tests_passed": own,
            "loop_iterations": 2,
            "loop_tokens": 100 * (i + 1),
            "loop_s": 10.0,
        }
        for i, (single, loop, own) in enumerate(outcomes)
    ]
    path.write_text(json.dumps({"model": "m", "problems": problems}))
    return str(path)


def test_compare_names_what_each_run_gained_and_lost_against_the_baseline(tmp_path):
    base = _saved_run(tmp_path / "base.json", [(True, True, True), (False, False, False), (False, True, True)])
    # A lever that solves problem 1, loses problem 2, and stops on a false pass in problem 2.
    lever = _saved_run(tmp_path / "lever.json", [(True, True, True), (False, True, True), (False, False, True)])
    report = compare({base: load_run(base), lever: load_run(lever)})
    assert report["baseline"] == base and report["problems"] == 3
    first, second = report["runs"]
    assert first["loop_gained"] == first["loop_lost"] == [] and first["false_passes"] == 0
    assert second["loop_gained"] == ["HumanEval/1"] and second["loop_lost"] == ["HumanEval/2"]
    assert second["false_passes"] == 1 and second["single_shot_differs"] == []
    assert second["loop_minus_single_points"] == pytest.approx(100 / 3, abs=0.1)
    assert second["tokens_per_problem"] == 200.0
    assert "loop gained 1; lost 2" in render(report)


def test_compare_joins_runs_of_disjoint_problems_and_keeps_the_shared_ones(tmp_path):
    head = _saved_run(tmp_path / "head.json", [(True, True, True)] * 2)
    tail = _saved_run(tmp_path / "tail.json", [(False, True, True)], first=2)
    prefix = _saved_run(tmp_path / "prefix.json", [(True, False, False)] * 3)
    joined = f"{head}+{tail}"
    report = compare({joined: load_run(joined), prefix: load_run(prefix)})
    assert report["problems"] == 3
    assert report["runs"][0]["loop_passed"] == 3 and report["runs"][0]["single_shot_passed"] == 2
    assert report["runs"][1]["loop_lost"] == ["HumanEval/0", "HumanEval/1", "HumanEval/2"]
    assert report["runs"][1]["single_shot_differs"] == ["HumanEval/2"]


def test_compare_refuses_files_that_are_not_runs_or_share_no_problem(tmp_path):
    (tmp_path / "junk.json").write_text('{"problems": [{"task_id": "HumanEval/0"}]}')
    with pytest.raises(CompareError, match="cannot read"):
        load_run(str(tmp_path / "junk.json"))
    twice = _saved_run(tmp_path / "a.json", [(True, True, True)])
    with pytest.raises(CompareError, match="appears twice"):
        load_run(f"{twice}+{twice}")
    other = _saved_run(tmp_path / "b.json", [(True, True, True)], first=5)
    with pytest.raises(CompareError, match="no problem in common"):
        compare({twice: load_run(twice), other: load_run(other)})


def test_the_benchmark_runs_the_loops_own_defaults_and_each_lever_turns_off(monkeypatch):
    from benchmarks.humaneval import build_parser

    defaults = Settings()
    args = build_parser().parse_args([])
    assert (args.max_iterations, args.min_score) == (defaults.max_iterations, defaults.min_score)
    assert (args.candidates, args.resample_repeats) == (defaults.candidates, defaults.resample_repeats) == (3, True)
    off = build_parser().parse_args(["--candidates", "1", "--no-resample-repeats"])
    assert (off.candidates, off.resample_repeats) == (1, False)
    monkeypatch.setenv("STARCODER_CANDIDATES", "5")
    assert build_parser().parse_args([]).candidates == 5
