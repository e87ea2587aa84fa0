"""The benchmark harness's judging, rows and bookkeeping, with the real hidden tests and a fake model."""

from __future__ import annotations

import json

import pytest

from benchmarks.baselines import SINGLE_SHOT, VARIANTS, best_of_k, describe_rows, k_from_run, single_call
from benchmarks.compare import CompareError, compare, load_run, render
from benchmarks.datasets import load_plain, load_problems
from benchmarks.humaneval import (
    DEFAULT_K_FROM,
    Plan,
    ResumeError,
    build_parser,
    judge,
    load_saved,
    parse_rows,
    run_benchmark,
)
from graph import Settings
from sandbox import run_tests
from tests.fakes import FakeScriptedModels, fenced, scripted_settings

REVIEW = '{"score": 9, "recommendations": []}'
NO_OP_TESTS = fenced("def test_nothing_to_check():\n    assert True\n")


def _canonical(problem):
    return problem["prompt"] + problem["canonical_solution"]


def test_hidden_tests_judge_the_final_code():
    problem = load_problems(limit=1)[0]
    canonical = _canonical(problem)
    assert judge(canonical, problem) is True
    wrong = "def has_close_elements(numbers, threshold):\n    return True\n"
    assert judge(wrong, problem) is False
    assert judge(None, problem) is False
    # A full rewrite that drops the prompt's imports still runs: they are put back.
    body_only = canonical.split("from typing import List")[-1]
    assert judge(body_only, problem) is True


def test_the_splits_hold_the_even_and_the_odd_problems():
    dev, heldout = load_problems(split="dev"), load_problems(split="heldout")
    assert len(dev) == len(heldout) == 82
    assert all(int(p["task_id"].split("/")[1]) % 2 == 0 for p in dev)
    assert all(int(p["task_id"].split("/")[1]) % 2 == 1 for p in heldout)
    assert [p["task_id"] for p in load_problems(2, 1, split="heldout")] == ["HumanEval/3", "HumanEval/5"]
    assert len(load_problems()) == 164
    with pytest.raises(ValueError, match="unknown split"):
        load_problems(split="train")


def test_a_run_can_name_its_problems():
    chosen = load_problems(split="heldout", ids=["HumanEval/141", "79"])
    assert [p["task_id"] for p in chosen] == ["HumanEval/79", "HumanEval/141"]
    with pytest.raises(ValueError, match="not in the humaneval heldout split: 80"):
        load_problems(split="heldout", ids=["79", "80"])


def test_every_plain_task_is_solvable_and_its_hidden_tests_reject_a_wrong_answer():
    problems = load_plain()
    assert len(problems) >= 30
    assert len({p["entry_point"] for p in problems}) == len(problems)
    # Every reference against every task's hidden asserts, in one sandbox run.
    solution = "\n\n".join(p["reference"] for p in problems)
    hidden = "from solution import *\n\n" + "\n\n".join(
        p["test"].replace("def check(candidate):", f"def test_{p['entry_point']}():") for p in problems
    )
    report = run_tests(solution, hidden)
    assert report["passed"] is True, report["failures"]
    assert report["passed_count"] == len(problems)
    # The judge reads a plain task like a HumanEval problem.
    first = problems[0]
    assert judge(first["reference"], first) is True
    assert judge(f"def {first['entry_point']}(sentence):\n    return sentence\n", first) is False


def test_rows_run_in_a_fixed_order_and_unknown_rows_are_refused():
    assert parse_rows("loop,first_step,single_shot:generator,single_shot") == (
        "single_shot",
        "single_shot:generator",
        "first_step",
        "loop",
    )
    with pytest.raises(ValueError, match="unknown row 'single_shot:nope'"):
        parse_rows("single_shot:nope")
    with pytest.raises(ValueError, match="no rows"):
        parse_rows(" , ")


def test_each_row_asks_in_its_own_prompt_and_the_loop_is_judged_like_them(tmp_path):
    problem = load_problems(limit=1)[0]
    good = _canonical(problem)
    bad = "def has_close_elements(numbers, threshold):\n    return False\n"
    own_tests = (
        "from solution import has_close_elements\n\n"
        "def test_close():\n    assert has_close_elements([1.0, 1.05], 0.1)\n"
    )
    models = FakeScriptedModels(
        # single_shot, the generator prompt as one call, first_step, then the loop's first attempt
        generator=[fenced(good), fenced(bad), fenced(bad), fenced(bad)],
        tester=[fenced(own_tests)],
        arbiter=[fenced(good)],
        refiner=[fenced(good)],
        reviewer=[REVIEW],
    )
    plan = Plan(rows=parse_rows("single_shot,single_shot:generator,first_step,loop"))
    summary = run_benchmark(models, [problem], scripted_settings(results_dir=str(tmp_path)), plan=plan, progress=False)
    rows = summary["rows"]
    assert summary["schema"] == 2 and list(rows) == list(plan.rows)
    assert [rows[r]["pass_at_1"] for r in plan.rows] == [1.0, 0.0, 0.0, 1.0]
    sent = [call[1].content for call in models.for_role("generator").received]
    systems = [call[0].content for call in models.for_role("generator").received]
    # HumanEval is stub-shaped: single_shot and first_step hand the stub over as code to complete.
    assert sent[0] == f"Complete the following Python function:\n```python\n{problem['prompt']}```\n"
    assert sent[2] == sent[0] and systems[2] == systems[0]
    assert sent[1].startswith("Task:\n") and "Name the main function `has_close_elements`." in sent[1]
    record = summary["problems"][0]
    assert record["form"] == "stub"
    assert record["single_shot"]["variant"] == "completion" and "abs(" in record["single_shot"]["code"]
    assert record["loop"]["iterations"] == 2 and record["loop"]["self_tests_passed"] is True
    assert record["loop"]["calls"] == 5  # generator, tester, arbiter, refiner, reviewer
    loop = rows["loop"]
    assert loop["first_attempt_share"] == 0.0 and loop["mean_iterations"] == 2 and loop["false_passes"] == 0
    assert 0.0 <= loop["orchestration_overhead_share"] <= 1.0
    nodes = loop["per_node_per_problem"]
    assert set(nodes) == {"generate", "validate", "review", "refine", "finalize"}
    assert nodes["generate"]["model_calls"] == 2 and nodes["refine"]["model_calls"] == 2  # arbiter + refiner
    assert nodes["validate"]["sandbox_seconds"] > 0 and nodes["validate"]["model_calls"] == 0
    for row in plan.rows:
        assert rows[row]["tokens_per_problem"] > 0 and rows[row]["seconds_per_problem"] >= 0


def test_best_of_k_samples_until_a_candidate_passes_the_tasks_examples():
    problem = load_problems(limit=1)[0]  # two examples: one expects False, one True
    always_false = "def has_close_elements(numbers, threshold):\n    return False\n"
    always_true = "def has_close_elements(numbers, threshold):\n    return True\n"
    models = FakeScriptedModels(
        generator=[fenced(always_false), fenced(always_true), fenced(_canonical(problem))],
    )
    outcome = best_of_k(models, problem, 5, Settings())
    assert models.calls("generator") == 3  # every example passed on the third: no fourth or fifth
    assert "abs(" in outcome.code and judge(outcome.code, problem) is True
    assert outcome.details | {"sandbox_s": 0} == {
        "variant": "completion",
        "drawn": 3,
        "picked": 2,
        "examples": 2,
        "examples_passed": 2,
        "sandbox_s": 0,
    }
    kwargs = models.for_role("generator").received_kwargs
    assert kwargs[0] == {} and [(k["temperature"], k["seed"]) for k in kwargs[1:]] == [(0.7, 1), (0.7, 2)]
    assert outcome.calls == 3 and outcome.tokens == sum(
        len(fenced(c).split()) for c in (always_false, always_true, _canonical(problem))
    )


def test_best_of_k_keeps_the_greedy_call_when_no_sample_does_better_or_the_task_states_no_example():
    problem = load_problems(limit=1)[0]
    always_false = "def has_close_elements(numbers, threshold):\n    return False\n"
    models = FakeScriptedModels(generator=[fenced(always_false)] * 3)
    greedy = single_call(models, "completion", problem)
    outcome = best_of_k(models, problem, 3, Settings(), greedy=greedy)
    assert models.calls("generator") == 3 and outcome.details["picked"] == 0
    assert outcome.code == greedy.code and outcome.details["examples_passed"] == 1
    assert outcome.tokens == 3 * greedy.tokens and outcome.seconds >= greedy.seconds

    plain = next(p for p in load_plain() if p["entry_point"] == "reverse_words")  # no example in its words
    models = FakeScriptedModels(generator=[fenced(plain["reference"])])
    outcome = best_of_k(models, plain, 9, Settings())
    assert models.calls("generator") == 1 and outcome.details["examples"] == 0 and judge(outcome.code, plain)
    # A task in plain words goes as it is, with the name to use (the prompt chosen for that form).
    assert outcome.details["variant"] == "request"
    assert models.for_role("generator").received[0][1].content == (
        plain["task"] + "\n\nName the main function `reverse_words`.\n"
    )


def test_a_long_run_leaves_its_results_behind_as_it_goes(tmp_path):
    problems = load_problems(limit=2)
    solutions = [fenced(_canonical(p)) for p in problems]
    models = FakeScriptedModels(
        generator=[solutions[0], solutions[0], solutions[1], solutions[1]],
        tester=[NO_OP_TESTS] * 2,
        reviewer=[REVIEW] * 2,
    )
    seen = []
    summary = run_benchmark(
        models,
        problems,
        scripted_settings(results_dir=str(tmp_path)),
        plan=Plan(rows=("single_shot", "loop")),
        progress=False,
        on_summary=seen.append,
    )
    assert [s["problems_run"] for s in seen] == [1, 2]
    assert seen[-1]["rows"]["loop"]["pass_at_1"] == summary["rows"]["loop"]["pass_at_1"] == 1.0
    assert summary["rows"]["loop"]["first_attempt_share"] == 1.0


def _save_as_main_does(path, summary, rows):
    options = {"dataset": "humaneval", "split": "all", "limit": None, "offset": 0, "model": None, "rows": list(rows)}
    path.write_text(json.dumps({**summary, "settings": {"max_iterations": 3}, "options": {**options, "k": 1}}))


def test_a_stopped_run_resumes_from_its_saved_results(tmp_path):
    problems = load_problems(limit=3)
    solutions = [fenced(_canonical(p)) for p in problems]
    rows = ("single_shot", "loop")
    models = FakeScriptedModels(
        generator=[solutions[0], solutions[0], solutions[1], solutions[1]],
        tester=[NO_OP_TESTS] * 2,
        reviewer=[REVIEW] * 2,
    )
    saved = tmp_path / "run.json"
    settings = scripted_settings(results_dir=str(tmp_path))
    first = run_benchmark(
        models,
        problems[:2],
        settings,
        plan=Plan(rows=rows),
        progress=False,
        on_summary=lambda s: _save_as_main_does(saved, s, rows),
    )
    data, done = load_saved(saved)
    assert [r["task_id"] for r in done] == ["HumanEval/0", "HumanEval/1"]

    models = FakeScriptedModels(  # the third problem, single-shot wrong and the loop never fixing it
        generator=[fenced("def " + problems[2]["entry_point"] + "(x):\n    return None\n")] * 9,
        tester=[NO_OP_TESTS] * 2,
        reviewer=[REVIEW] * 2,
    )
    no_budget = scripted_settings(results_dir=str(tmp_path), max_iterations=0)
    resumed = run_benchmark(
        models,
        problems[2:],
        no_budget,
        plan=Plan(rows=rows),
        progress=False,
        done=done,
        wall_before_s=data["wall_s"],
    )
    assert [p["task_id"] for p in resumed["problems"]] == ["HumanEval/0", "HumanEval/1", "HumanEval/2"]
    assert resumed["rows"]["single_shot"]["pass_at_1"] == pytest.approx(2 / 3, abs=1e-3)
    assert resumed["rows"]["loop"]["pass_at_1"] == pytest.approx(2 / 3, abs=1e-3)
    assert resumed["wall_s"] >= first["wall_s"]


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "{}",
        '{"schema": 2, "problems": [{"task_id": "x"}], "settings": {}, "options": {"rows": ["loop"], "offset": 0}}',
        '{"schema": 2, "problems": [], "settings": {"no_such_lever": 1}, "options": {"rows": ["loop"], "offset": 0}}',
    ],
)
def test_resuming_a_file_that_is_not_a_saved_run_is_refused(tmp_path, text):
    path = tmp_path / "run.json"
    path.write_text(text)
    with pytest.raises(ResumeError, match="cannot resume"):
        load_saved(path)


def test_a_run_saved_before_the_rows_existed_is_not_resumed_but_says_why(tmp_path):
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"problems": [], "settings": {}, "offset": 0}))
    with pytest.raises(ResumeError, match="earlier version of the benchmark.*generator's own first step"):
        load_saved(path)


def _saved_run(path, outcomes, first=0):
    """A results file in the layout saved before the rows existed; outcomes are (single, loop, own verdict)."""
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


def _saved_rows_run(path, outcomes):
    """A results file with rows; outcomes are (single_shot, best_of_k, loop) per problem."""
    problems = [
        {
            "task_id": f"HumanEval/{i}",
            "form": "stub",
            "single_shot": {"passed": single, "tokens": 200, "seconds": 5.0, "calls": 1, "code": ""},
            "best_of_k": {"passed": best, "tokens": 600, "seconds": 15.0, "calls": 3, "drawn": 3, "code": ""},
            "loop": {
                "passed": loop,
                "tokens": 2000,
                "seconds": 90.0,
                "calls": 8,
                "self_tests_passed": loop,
                "iterations": 1,
                "code": "",
            },
        }
        for i, (single, best, loop) in enumerate(outcomes)
    ]
    path.write_text(json.dumps({"schema": 2, "model": "m", "problems": problems}))
    return str(path)


def test_compare_names_what_each_run_gained_and_lost_against_the_baseline(tmp_path):
    base = _saved_run(tmp_path / "base.json", [(True, True, True), (False, False, False), (False, True, True)])
    # A lever that solves problem 1, loses problem 2, and stops on a false pass in problem 2.
    lever = _saved_run(tmp_path / "lever.json", [(True, True, True), (False, True, True), (False, False, True)])
    report = compare({base: load_run(base), lever: load_run(lever)})
    assert report["baseline"] == base and report["problems"] == 3
    first, second = (run["rows"] for run in report["runs"])
    # The earlier layout's single-shot was the generator's own first call.
    assert set(first) == set(second) == {"first_step", "loop"}
    assert first["loop"]["gained"] == first["loop"]["lost"] == [] and first["loop"]["false_passes"] == 0
    assert second["loop"]["gained"] == ["HumanEval/1"] and second["loop"]["lost"] == ["HumanEval/2"]
    assert second["loop"]["false_passes"] == 1 and second["first_step"]["gained"] == []
    assert second["loop"]["minus_points"]["first_step"] == pytest.approx(100 / 3, abs=0.1)
    assert second["loop"]["tokens_per_problem"] == 200.0
    assert "gained 1; lost 2" in render(report)


def test_compare_sets_runs_with_rows_beside_runs_saved_before_them(tmp_path):
    old = _saved_run(tmp_path / "old.json", [(True, True, True), (False, False, False), (False, True, True)])
    new = _saved_rows_run(tmp_path / "new.json", [(True, True, True), (True, True, False), (False, False, False)])
    report = compare({old: load_run(old), new: load_run(new)})
    rows = report["runs"][1]["rows"]
    assert list(rows) == ["single_shot", "best_of_k", "loop"]
    assert "gained" not in rows["single_shot"]  # the old run has no such row to gain against
    assert rows["loop"]["gained"] == [] and rows["loop"]["lost"] == ["HumanEval/2"]
    assert rows["loop"]["minus_points"] == {"single_shot": -33.3, "best_of_k": -33.3}
    assert rows["best_of_k"]["tokens_per_problem"] == 600.0 and rows["loop"]["false_passes"] == 0
    assert "best_of_k" in render(report)


def test_compare_joins_runs_of_disjoint_problems_and_keeps_the_shared_ones(tmp_path):
    head = _saved_run(tmp_path / "head.json", [(True, True, True)] * 2)
    tail = _saved_run(tmp_path / "tail.json", [(False, True, True)], first=2)
    prefix = _saved_run(tmp_path / "prefix.json", [(True, False, False)] * 3)
    joined = f"{head}+{tail}"
    report = compare({joined: load_run(joined), prefix: load_run(prefix)})
    assert report["problems"] == 3
    joined_rows, prefix_rows = (run["rows"] for run in report["runs"])
    assert joined_rows["loop"]["passed"] == 3 and joined_rows["first_step"]["passed"] == 2
    assert prefix_rows["loop"]["lost"] == ["HumanEval/0", "HumanEval/1", "HumanEval/2"]
    assert prefix_rows["first_step"]["gained"] == ["HumanEval/2"]


def test_compare_refuses_files_that_are_not_runs_or_share_no_problem(tmp_path):
    (tmp_path / "junk.json").write_text('{"problems": [{"task_id": "HumanEval/0"}]}')
    with pytest.raises(CompareError, match="cannot read"):
        load_run(str(tmp_path / "junk.json"))
    (tmp_path / "junk2.json").write_text('{"schema": 2, "problems": [{"task_id": "HumanEval/0", "loop": {}}]}')
    with pytest.raises(CompareError, match="no outcomes"):
        load_run(str(tmp_path / "junk2.json"))
    twice = _saved_run(tmp_path / "a.json", [(True, True, True)])
    with pytest.raises(CompareError, match="appears twice"):
        load_run(f"{twice}+{twice}")
    other = _saved_run(tmp_path / "b.json", [(True, True, True)], first=5)
    with pytest.raises(CompareError, match="no problem in common"):
        compare({twice: load_run(twice), other: load_run(other)})


def test_best_of_k_matches_the_loops_tokens_of_a_saved_run(tmp_path):
    earlier = DEFAULT_K_FROM.parent / "humaneval-defaults-0-143.json"
    k, source = k_from_run(earlier)  # the earlier layout: 2053 / 229 tokens per problem
    assert k == 9 and "the generator's first call" in source
    k, source = k_from_run(DEFAULT_K_FROM)  # the README's held-out run of the current defaults: 1381 / 234
    assert k == 6 and source.startswith("humaneval-heldout-candidate-batch5.json: loop 1381 / single_shot 234")
    new = tmp_path / "new.json"
    new.write_text(json.dumps({"schema": 2, "rows": {"single_shot": {"tokens_per_problem": 250.0}, "loop": {
        "tokens_per_problem": 1600.0}}}))  # fmt: skip
    assert k_from_run(new)[0] == 6
    new.write_text(json.dumps({"schema": 2, "rows": {"loop": {"tokens_per_problem": 1600.0}}}))
    with pytest.raises(ValueError, match="cannot take k"):
        k_from_run(new)


def test_the_results_file_records_each_rows_prompts_and_settings():
    models = FakeScriptedModels()
    described = describe_rows(
        ["single_shot", "single_shot:request", "first_step", "best_of_k", "loop"],
        models,
        k=9,
        k_source="test",
        levers={"candidates": 3},
    )
    single = described["single_shot"]
    assert single["variant_by_form"] == SINGLE_SHOT
    assert (
        single["prompts"]["stub"]["user"]
        == "Complete the following Python function:\n```python\n$task_lines```$hint_block\n"
    )
    assert single["prompts"]["stub"]["system"].startswith("You are an expert Python programmer. Reply with")
    assert described["single_shot:request"]["prompt"]["user_file"] == "prompts/request_user.md"
    assert set(described["first_step"]["prompts"]) == {"stub", "plain"}
    assert described["best_of_k"]["k"] == 9 and described["best_of_k"]["seeds"] == list(range(1, 9))
    assert described["loop"]["settings"] == {"candidates": 3}
    assert set(VARIANTS) >= set(SINGLE_SHOT.values())


def test_the_benchmark_runs_the_loops_own_defaults_and_each_lever_turns_off(monkeypatch):
    defaults = Settings()
    args = build_parser().parse_args([])
    assert (args.max_iterations, args.min_score) == (defaults.max_iterations, defaults.min_score)
    assert (args.candidates, args.resample_repeats) == (defaults.candidates, defaults.resample_repeats) == (6, True)
    assert (args.dataset, args.split, args.best_of_k) == ("humaneval", "all", "auto")
    assert parse_rows(args.rows) == ("single_shot", "first_step", "best_of_k", "loop")
    off = build_parser().parse_args(["--candidates", "1", "--no-resample-repeats", "--split", "dev"])
    assert (off.candidates, off.resample_repeats, off.split) == (1, False, "dev")
    assert build_parser(dataset="plain").parse_args([]).dataset == "plain"
    monkeypatch.setenv("STARCODER_CANDIDATES", "5")
    assert build_parser().parse_args([]).candidates == 5
