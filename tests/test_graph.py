"""The graph's logic, with scripted fake models and the real sandbox."""

from __future__ import annotations

import ast
import json
import sqlite3
import threading
import uuid

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver

from graph import Settings, build_graph, route_after_review
from roles.context import CallContext
from tests.fakes import (
    ADD_TESTS,
    BAD_CODE,
    GOOD_CODE,
    GOOD_REVIEW,
    FakeBatchingModels,
    FakeMeetingChatModel,
    FakeScriptedModels,
    fenced,
    scripted_settings,
)


def _settings(tmp_path, **overrides) -> Settings:
    return scripted_settings(results_dir=str(tmp_path / "runs"), test_timeout_s=60.0, **overrides)


def _config(thread_id: str | None = None) -> dict:
    return {"configurable": {"thread_id": thread_id or uuid.uuid4().hex}}


def _state(passed: bool, score: float, iteration: int, budget: int = 3, in_process: int = 0) -> dict:
    validation = {"passed": passed, "passed_count": 2 if passed else 0, "in_process_tests": ["test_x"] * in_process}
    return {
        "task": "t",
        "validation": validation,
        "review": {"score": score},
        "iteration": iteration,
        "max_iterations": budget,
        "min_score": 7.0,
    }


class TestRouteAfterReview:
    def test_passing_and_good_review_finishes(self):
        assert route_after_review(_state(True, 8.0, 0)) == "finalize"

    def test_passing_with_weak_review_refines_while_budget_lasts(self):
        assert route_after_review(_state(True, 5.0, 0)) == "refine"

    def test_failing_refines_while_budget_lasts(self):
        assert route_after_review(_state(False, 9.0, 2)) == "refine"

    def test_budget_spent_finishes(self):
        assert route_after_review(_state(False, 1.0, 3)) == "finalize"

    def test_a_settled_attempt_finishes(self):
        assert route_after_review({**_state(False, 0.0, 1), "settled": True}) == "finalize"

    def test_zero_budget_finishes_after_first_attempt(self):
        assert route_after_review(_state(False, 1.0, 0, budget=0)) == "finalize"

    def test_a_spent_token_budget_finishes(self):
        spent = {**_state(False, 1.0, 1), "node_timings": [{"output_tokens": 600}, {"output_tokens": 500}]}
        assert route_after_review({**spent, "token_budget": 1100}) == "finalize"
        assert route_after_review({**spent, "token_budget": 1101}) == "refine"
        assert route_after_review({**spent, "token_budget": 0}) == "refine"  # 0: no limit

    def test_a_pass_judged_only_in_the_codes_process_is_not_enough_to_stop(self):
        assert route_after_review(_state(True, 9.0, 0, in_process=2)) == "refine"
        assert route_after_review(_state(True, 9.0, 0, in_process=1)) == "finalize"  # one judged outside
        assert route_after_review(_state(True, 9.0, 3, in_process=2)) == "finalize"  # budget spent


def test_finalize_prefers_a_pass_judged_outside_the_codes_process():
    from nodes.finalize import best_attempt

    def attempt(iteration: int, in_process: list[str]) -> dict:
        validation = {
            "passed": True, "passed_count": 2, "failed_count": 0, "errored_count": 0, "failures": [],
            "in_process_tests": in_process,
        }  # fmt: skip
        return {"iteration": iteration, "tests": "", "validation": validation, "review": {"score": 9.0}}

    strong, weak = attempt(0, []), attempt(1, ["test_a", "test_b"])
    assert best_attempt([strong, weak]) is strong


def test_finalize_keeps_the_earlier_attempt_when_the_tests_cannot_tell_them_apart():
    from nodes.finalize import best_attempt

    def attempt(iteration: int) -> dict:
        validation = {
            "passed": False, "passed_count": 1, "failed_count": 1, "errored_count": 0,
            "failures": [{"test": "test_mine", "message": "", "traceback": ""}], "in_process_tests": [],
        }  # fmt: skip
        return {"iteration": iteration, "tests": "", "validation": validation, "review": {"score": 5.0}}

    first, rewrite = attempt(0), attempt(1)
    assert best_attempt([first, rewrite]) is first


def test_tests_that_call_the_code_as_they_are_collected_are_written_again(tmp_path):
    from roles.checks import check_attempt

    tests = "from solution import add\n\nadd(1, 2)\n\ndef test_add():\n    assert add(1, 2) == 3\n"
    report, rewrite = check_attempt(GOOD_CODE, tests, _settings(tmp_path))
    assert not report["passed"] and "being collected" in report["error"]
    assert rewrite  # the tests' fault, not the code's: refine writes the tests again


@pytest.mark.parametrize("lean", [False, True])
def test_the_tester_is_asked_for_as_many_claims_as_the_settings_say(tmp_path, lean):
    from roles.tests import LEAN_TESTS, TESTS

    models = FakeScriptedModels(generator=[fenced(GOOD_CODE)], tester=[fenced(ADD_TESTS)], reviewer=[GOOD_REVIEW])
    app = build_graph(models, settings=_settings(tmp_path, lean_tests=lean), checkpointer=InMemorySaver())
    app.invoke({"task": "Write add(a, b)."}, _config())

    system = models.for_role("tester").received[0][0].content
    asked, other = (LEAN_TESTS, TESTS) if lean else (TESTS, LEAN_TESTS)
    assert f"Write {asked}." in system and other not in system


@pytest.mark.parametrize(
    ("task", "capped"),
    [
        ('def add(a, b):\n    """Add.\n    >>> add(1, 2)\n    3\n    """\n', True),  # states an example
        ("Write add(a, b).", False),  # states none: the model's tests are all the judge
    ],
)
def test_the_testers_reply_is_capped_only_where_the_task_gives_tests(tmp_path, task, capped):
    models = FakeScriptedModels(generator=[fenced(GOOD_CODE)], tester=[fenced(ADD_TESTS)], reviewer=[GOOD_REVIEW])
    settings = _settings(tmp_path, tester_tokens_with_examples=200)
    build_graph(models, settings=settings, checkpointer=InMemorySaver()).invoke({"task": task}, _config())

    asked = models.models["tester"].received_kwargs[0]
    assert asked.get("max_new_tokens") == (200 if capped else None)


def test_the_testers_reply_is_capped_for_tests_given_with_the_task(tmp_path):
    models = FakeScriptedModels(generator=[fenced(GOOD_CODE)], tester=[fenced(ADD_TESTS)], reviewer=[GOOD_REVIEW])
    given = "from solution import add\n\ndef test_given():\n    assert add(2, 2) == 4\n"
    settings = _settings(tmp_path, tester_tokens_with_examples=200)
    app = build_graph(models, settings=settings, checkpointer=InMemorySaver())
    app.invoke({"task": "Write add(a, b).", "user_tests": given}, _config())
    assert models.models["tester"].received_kwargs[0].get("max_new_tokens") == 200


def test_review_names_tests_judged_in_the_codes_process():
    from roles.review import review_code

    validation = {
        "passed": True, "passed_count": 1, "failed_count": 0, "errored_count": 0, "coverage": 100.0,
        "in_process_tests": ["test_boxes"],
    }  # fmt: skip
    ctx = CallContext(model=None, settings=Settings())  # type: ignore[arg-type]  # no model is asked
    report = review_code(ctx, task="t", code="def f(x):\n    return x\n", validation=validation, ask_model=False)
    assert report["recommendations"][0].startswith("Evidence: 1 test(s) judged in the code's own process")
    assert "test_boxes" in report["recommendations"][0]


def _fixable_run(
    tmp_path, task: str = "Write add(a, b) that returns the sum.", **settings
) -> tuple[FakeScriptedModels, dict]:
    """A run whose first code fails and whose refiner fixes it."""
    models = FakeScriptedModels(
        generator=[fenced(BAD_CODE)],
        tester=[fenced(ADD_TESTS)],
        arbiter=[fenced(GOOD_CODE)],
        refiner=[fenced(GOOD_CODE)],
        reviewer=[GOOD_REVIEW],
    )
    app = build_graph(models, settings=_settings(tmp_path, **settings), checkpointer=InMemorySaver())
    return models, app.invoke({"task": task}, _config())


def test_a_task_that_states_examples_runs_on_the_budget_for_such_tasks(tmp_path):
    with_example = "Write add(a, b) that returns the sum.\n>>> add(2, 2)\n4\n"
    _, result = _fixable_run(tmp_path, with_example, token_budget=100000, token_budget_with_examples=1)
    assert result["iterations"] == 1 and "of 1 output tokens" in result["node_timings"][-1]["summary"]
    _, result = _fixable_run(tmp_path, with_example, token_budget=1, token_budget_with_examples=100000)
    assert result["passed"] is True and result["iterations"] == 2
    _, result = _fixable_run(tmp_path, token_budget=100000, token_budget_with_examples=1)  # no example stated
    assert result["passed"] is True and result["iterations"] == 2


def test_a_token_budget_ends_the_run_after_the_attempt_that_spent_it(tmp_path):
    models, result = _fixable_run(tmp_path, token_budget=1)

    assert result["iterations"] == 1 and result["passed"] is False  # no refine: the budget was spent
    assert models.calls("refiner") == 0
    spent = sum(t["output_tokens"] for t in result["node_timings"])
    assert spent > 0
    assert result["node_timings"][-1]["summary"] == f"best attempt 0, token budget spent ({spent} of 1 output tokens)"
    _, result = _fixable_run(tmp_path, token_budget=100000)  # room in the budget: it goes on and passes
    assert result["passed"] is True and result["iterations"] == 2


def test_fails_first_then_passes_after_refine(tmp_path):
    models = FakeScriptedModels(
        generator=[fenced(BAD_CODE)],
        tester=[fenced(ADD_TESTS)],
        arbiter=[fenced(GOOD_CODE)],  # the reference sides with the tests
        refiner=[fenced(GOOD_CODE)],
        reviewer=[GOOD_REVIEW],
    )
    app = build_graph(models, settings=_settings(tmp_path), checkpointer=InMemorySaver())
    result = app.invoke({"task": "Write add(a, b) that returns the sum."}, _config("fix-me"))

    assert result["passed"] is True
    assert result["iterations"] == 2
    assert result["best_iteration"] == 1
    assert "a + b" in result["code"]
    first, second = result["attempts"]
    assert not first["validation"]["passed"] and first["validation"]["failed_count"] == 2
    assert first["review"]["model_review"].startswith("skipped")  # failing code: no model review
    assert second["validation"]["passed_count"] == 2
    assert result["review"]["model_score"] == 9
    assert result["disputed_tests"] == [] and models.calls("arbiter") == 1
    arbiter_prompt = models.for_role("arbiter").received[0][1].content
    assert "def add(a, b): ..." in arbiter_prompt and "a - b" not in arbiter_prompt  # interface only
    # The refiner was shown the real failure, not a paraphrase.
    refine_prompt = models.for_role("refiner").received[0][1].content
    assert "test_small" in refine_prompt and "assert" in refine_prompt
    # The tester never saw the code's body, only its interface.
    tester_prompt = models.for_role("tester").received[0][1].content
    assert "def add(a, b): ..." in tester_prompt and "a - b" not in tester_prompt
    record = json.loads((tmp_path / "runs" / "fix-me.json").read_text())
    assert record["passed"] is True and len(record["attempts"]) == 2
    assert [t["node"] for t in result["node_timings"]] == [
        "generate", "validate", "review", "refine", "validate", "review", "finalize",
    ]  # fmt: skip


def test_never_passing_stops_at_budget_with_best_attempt(tmp_path):
    almost = BAD_CODE.replace("a - b", "a + b if a > 0 else a - b")  # passes one test of two
    models = FakeScriptedModels(
        generator=[fenced(BAD_CODE)],
        tester=[fenced(ADD_TESTS)],
        refiner=[fenced(almost), fenced(BAD_CODE)],
    )
    settings = _settings(tmp_path, max_iterations=2, arbitrate_tests=False)
    app = build_graph(models, settings=settings, checkpointer=InMemorySaver())
    result = app.invoke({"task": "Write add(a, b)."}, _config())

    assert result["passed"] is False
    assert result["iterations"] == 3  # the first attempt and two refinements
    assert models.calls("refiner") == 2
    assert models.calls("reviewer") == 0
    assert [a["validation"]["passed_count"] for a in result["attempts"]] == [0, 1, 0]
    assert result["best_iteration"] == 1 and "a > 0" in result["code"]  # the most tests passed, not the latest


WRONG_TESTS = ADD_TESTS + "\n\ndef test_wrong():\n    assert add(2, 2) == 5\n"


def test_a_wrong_test_is_set_aside_when_the_arbiter_sides_with_the_code(tmp_path):
    models = FakeScriptedModels(
        generator=[fenced(GOOD_CODE)],
        tester=[fenced(WRONG_TESTS)],
        arbiter=[fenced(GOOD_CODE.replace("a + b", "sum((a, b))"))],
        reviewer=[GOOD_REVIEW],
    )
    app = build_graph(models, settings=_settings(tmp_path), checkpointer=InMemorySaver())
    result = app.invoke({"task": "Write add(a, b) that returns the sum."}, _config())

    assert result["passed"] is True and result["iterations"] == 2
    assert models.calls("refiner") == 0  # the code was right: it is kept as it was
    assert result["code"] == result["attempts"][0]["code"]
    assert result["disputed_tests"] == [
        {
            "test": "test_wrong",
            "call": "add(2, 2)",
            "expected": "5",
            "observed": "4",
            "reference": "agrees with the code",
            "iteration": 1,
        }
    ]
    assert "test_wrong" not in result["tests"] and result["validation"]["passed_count"] == 2


def test_a_test_stands_when_the_arbiter_sides_with_it(tmp_path):
    models = FakeScriptedModels(
        generator=[fenced(GOOD_CODE)],
        tester=[fenced(WRONG_TESTS)],
        arbiter=[fenced(GOOD_CODE.replace("a + b", "a + b + (a == b == 2)"))],  # agrees with the test
        refiner=[fenced(GOOD_CODE)],
    )
    settings = _settings(tmp_path, max_iterations=1)
    app = build_graph(models, settings=settings, checkpointer=InMemorySaver())
    result = app.invoke({"task": "Write add(a, b)."}, _config())
    assert result["disputed_tests"] == [] and models.calls("refiner") == 1
    assert result["passed"] is False and "test_wrong" in result["tests"]


def test_budget_from_the_input_overrides_settings(tmp_path):
    models = FakeScriptedModels(generator=[fenced(BAD_CODE)], tester=[fenced(ADD_TESTS)])
    app = build_graph(models, settings=_settings(tmp_path), checkpointer=InMemorySaver())
    result = app.invoke({"task": "Write add(a, b).", "max_iterations": 0}, _config())
    assert result["iterations"] == 1 and models.calls("refiner") == 0


def test_reply_without_code_is_a_failed_attempt_with_a_reason(tmp_path):
    models = FakeScriptedModels(
        generator=["I am sorry, I cannot help with that."],
        refiner=[fenced(GOOD_CODE)],
        tester=[fenced(ADD_TESTS)],
        reviewer=["Looks fine to me! Score: eight"],  # malformed: no JSON, no number
    )
    app = build_graph(models, settings=_settings(tmp_path), checkpointer=InMemorySaver())
    result = app.invoke({"task": "Write add(a, b)."}, _config())

    first = result["attempts"][0]
    assert first["generation_error"] and "no Python code" in first["generation_error"]
    assert first["validation"]["error"] == first["generation_error"]
    assert result["passed"] is True
    # The tests were written once the refiner produced code to describe.
    assert models.calls("tester") == 1
    assert result["review"]["model_score"] is None
    assert result["review"]["model_review"].startswith("unreadable")


def test_unrunnable_tests_are_written_again(tmp_path):
    models = FakeScriptedModels(
        generator=[fenced(GOOD_CODE)],
        tester=["```python\ndef test_broken(:\n    pass\n```", fenced(ADD_TESTS)],
        reviewer=[GOOD_REVIEW],
    )
    app = build_graph(models, settings=_settings(tmp_path), checkpointer=InMemorySaver())
    result = app.invoke({"task": "Write add(a, b)."}, _config())
    assert "syntax error in the tests" in result["attempts"][0]["validation"]["error"]
    assert models.calls("tester") == 2
    assert models.calls("refiner") == 0  # the code was never shown wrong: only the tests are redone
    retry_prompt = models.for_role("tester").received[1][1].content
    assert "previous tests could not run (syntax error in the tests" in retry_prompt
    assert result["passed"] is True and result["code"] == result["attempts"][0]["code"]


def test_demo_code_is_stripped_from_generated_modules(tmp_path):
    noisy = GOOD_CODE + "\n# Example usage:\nprint(add(1, 2))\nif __name__ == '__main__':\n    add(3, 4)\n"
    models = FakeScriptedModels(generator=[fenced(noisy)], tester=[fenced(ADD_TESTS)], reviewer=[GOOD_REVIEW])
    app = build_graph(models, settings=_settings(tmp_path), checkpointer=InMemorySaver())
    result = app.invoke({"task": "Write add(a, b)."}, _config())
    assert "print(" not in result["code"] and "__main__" not in result["code"]
    assert result["passed"] is True


def test_user_tests_are_run_too(tmp_path):
    user_tests = "from solution import add\n\ndef test_user_large():\n    assert add(10**6, 1) == 1000001\n"
    models = FakeScriptedModels(generator=[fenced(GOOD_CODE)], tester=[fenced(ADD_TESTS)], reviewer=[GOOD_REVIEW])
    app = build_graph(models, settings=_settings(tmp_path), checkpointer=InMemorySaver())
    result = app.invoke({"task": "Write add(a, b).", "user_tests": user_tests}, _config())
    assert result["validation"]["passed_count"] == 3
    assert "test_user_large" in result["tests"]
    assert "must also pass these tests" in models.for_role("generator").received[0][1].content


class _Crash(RuntimeError):
    pass


def test_interrupted_thread_resumes_from_sqlite_checkpoint(tmp_path):
    """A run that dies in refine resumes there from the file, in a fresh graph and connection."""
    db = tmp_path / "checkpoints.sqlite"
    config = _config("resumable")
    models = FakeScriptedModels(
        generator=[fenced(BAD_CODE)],
        tester=[fenced(ADD_TESTS)],
        arbiter=[],  # refine will crash
    )
    with sqlite3.connect(db, check_same_thread=False) as conn:
        app = build_graph(models, settings=_settings(tmp_path), checkpointer=SqliteSaver(conn))
        with pytest.raises(AssertionError, match="more often than scripted"):
            app.invoke({"task": "Write add(a, b)."}, config)
        saved = app.get_state(config)
        assert saved.next == ("refine",)
        assert len(saved.values["attempts"]) == 1

    # A new process: new models, new connection, same file and thread.
    fresh = FakeScriptedModels(arbiter=[fenced(GOOD_CODE)], refiner=[fenced(GOOD_CODE)], reviewer=[GOOD_REVIEW])
    with sqlite3.connect(db, check_same_thread=False) as conn:
        app = build_graph(fresh, settings=_settings(tmp_path), checkpointer=SqliteSaver(conn))
        result = app.invoke(None, config)
        history = list(app.get_state_history(config))
    assert result["passed"] is True and result["iterations"] == 2
    assert fresh.calls("generator") == 0 and fresh.calls("tester") == 0  # not redone
    assert fresh.calls("refiner") == 1
    assert len(history) >= 8


def test_a_second_task_on_the_same_thread_starts_afresh(tmp_path):
    models = FakeScriptedModels(
        generator=[fenced(GOOD_CODE), fenced(GOOD_CODE.replace("add", "plus"))],
        tester=[fenced(ADD_TESTS), fenced(ADD_TESTS.replace("add", "plus"))],
        reviewer=[GOOD_REVIEW, GOOD_REVIEW],
    )
    app = build_graph(models, settings=_settings(tmp_path), checkpointer=InMemorySaver())
    config = _config("two-tasks")
    app.invoke({"task": "Write add(a, b)."}, config)
    second = app.invoke({"task": "Write plus(a, b)."}, config)
    assert second["iterations"] == 1 and "def plus" in second["code"]
    assert [a["code"].count("plus") > 0 for a in second["attempts"]] == [True]
    assert [t["node"] for t in second["node_timings"]] == ["generate", "validate", "review", "finalize"]


def test_the_tasks_examples_are_tests_the_arbiter_never_sets_aside(tmp_path):
    task = "Write add(a, b) returning the sum.\n>>> add(2, 2)\n4\n"
    models = FakeScriptedModels(
        generator=[fenced(BAD_CODE)],
        tester=[fenced("from solution import add\n\ndef test_x():\n    assert add(1, 1) == 2\n")],
        arbiter=[fenced(BAD_CODE)],  # a reference that agrees with the wrong code
        refiner=[fenced(GOOD_CODE)],
        reviewer=[GOOD_REVIEW],
    )
    app = build_graph(models, settings=_settings(tmp_path), checkpointer=InMemorySaver())
    result = app.invoke({"task": task}, _config())
    first = result["attempts"][0]
    assert "def test_task_example_1():\n    assert add(2, 2) == 4" in first["tests"]
    assert {f["test"] for f in first["validation"]["failures"]} == {"test_x", "test_task_example_1"}
    # The reference sided with the code on test_x only; the example stood, so the code was refined.
    assert [d["test"] for d in result["disputed_tests"]] == ["test_x"]
    assert result["passed"] is True and models.calls("refiner") == 1


STUB = 'def add(a, b):\n    """Return the sum of a and b."""\n'


def test_a_reply_that_echoes_the_stub_is_asked_for_again(tmp_path):
    models = FakeScriptedModels(
        generator=[fenced(STUB), fenced(GOOD_CODE)], tester=[fenced(ADD_TESTS)], reviewer=[GOOD_REVIEW]
    )
    app = build_graph(models, settings=_settings(tmp_path), checkpointer=InMemorySaver())
    result = app.invoke({"task": "Write add(a, b).", "entry_point": "add"}, _config())

    assert result["passed"] is True and result["iterations"] == 1 and "a + b" in result["code"]
    assert models.calls("generator") == 2
    assert "without a body" in models.for_role("generator").received[1][1].content
    assert "without a body" not in models.for_role("generator").received[0][1].content


def test_candidates_replace_a_failing_first_attempt(tmp_path):
    models = FakeScriptedModels(
        # the greedy code fails; the first sample repeats it (not run again); the second passes
        generator=[fenced(BAD_CODE), fenced(BAD_CODE), fenced(GOOD_CODE)],
        tester=[fenced(ADD_TESTS)],
        reviewer=[GOOD_REVIEW],
    )
    app = build_graph(models, settings=_settings(tmp_path, candidates=3), checkpointer=InMemorySaver())
    result = app.invoke({"task": "Write add(a, b)."}, _config())

    assert result["passed"] is True and result["iterations"] == 1 and "a + b" in result["code"]
    assert models.calls("refiner") == 0
    sampled = models.for_role("generator").received_kwargs
    assert sampled[0] == {} and [(k["temperature"], k["seed"]) for k in sampled[1:]] == [(0.7, 1), (0.7, 2)]
    assert "candidate 3 of 3 tried" in result["node_timings"][0]["summary"]
    assert result["node_timings"][0]["sandbox_seconds"] > 0  # the candidates' runs are counted


def test_no_candidates_are_sampled_when_the_first_passes(tmp_path):
    models = FakeScriptedModels(generator=[fenced(GOOD_CODE)], tester=[fenced(ADD_TESTS)], reviewer=[GOOD_REVIEW])
    app = build_graph(models, settings=_settings(tmp_path, candidates=3), checkpointer=InMemorySaver())
    result = app.invoke({"task": "Write add(a, b)."}, _config())

    assert result["passed"] is True and models.calls("generator") == 1
    assert "candidate 1 of 1 tried" in result["node_timings"][0]["summary"]


WRONG_OWN_TEST = "from solution import add\n\ndef test_wrong():\n    assert add(1, 1) == 3\n"


@pytest.mark.parametrize("on_example_failure", [True, False])
def test_candidates_can_wait_for_a_failed_task_example(tmp_path, on_example_failure):
    # The greedy code passes the task's example and fails only a wrong self-written test.
    task = "Write add(a, b) returning the sum.\n>>> add(2, 2)\n4\n"
    models = FakeScriptedModels(
        generator=[fenced(GOOD_CODE), fenced(BAD_CODE), fenced(BAD_CODE.replace("a - b", "a * b"))],
        tester=[fenced(WRONG_OWN_TEST)],
    )
    settings = _settings(tmp_path, candidates=3, candidates_on_example_failure=on_example_failure, max_iterations=0)
    app = build_graph(models, settings=settings, checkpointer=InMemorySaver())
    result = app.invoke({"task": task}, _config())

    assert "a + b" in result["code"]  # kept either way: it is the one passing the example
    assert models.calls("generator") == (1 if on_example_failure else 3)


def test_candidates_waiting_for_an_example_still_come_when_one_fails(tmp_path):
    task = "Write add(a, b) returning the sum.\n>>> add(2, 2)\n4\n"
    models = FakeScriptedModels(
        generator=[fenced(BAD_CODE), fenced(GOOD_CODE)], tester=[fenced(ADD_TESTS)], reviewer=[GOOD_REVIEW]
    )
    settings = _settings(tmp_path, candidates=2, candidates_on_example_failure=True)
    app = build_graph(models, settings=settings, checkpointer=InMemorySaver())
    result = app.invoke({"task": task}, _config())

    assert result["passed"] is True and "a + b" in result["code"] and models.calls("generator") == 2


def _candidate_models(together: int | None) -> FakeBatchingModels:
    """Greedy code failing the task's example; sampled candidates by seed, the second one right."""
    wrong = {seed: fenced(BAD_CODE.replace("a - b", f"a * b + {seed}")) for seed in range(1, 6)}  # fail add(2, 2)
    return FakeBatchingModels(
        {**wrong, 2: fenced(GOOD_CODE)},
        together=together,
        generator=[fenced(BAD_CODE)],
        tester=[fenced(ADD_TESTS)],
        reviewer=[GOOD_REVIEW],
    )


def test_batched_candidates_are_asked_for_at_once_and_the_first_that_passes_wins(tmp_path):
    task = "Write add(a, b) returning the sum.\n>>> add(2, 2)\n4\n"
    models = _candidate_models(together=5)  # the five samples must arrive together
    settings = _settings(tmp_path, candidates=6, candidate_batch=5)
    result = build_graph(models, settings=settings, checkpointer=InMemorySaver()).invoke({"task": task}, _config())

    assert result["passed"] is True and "a + b" in result["code"]
    assert models.calls("generator") == 6  # the greedy call, then all five samples at once
    assert "candidate 3 of 6 tried" in result["node_timings"][0]["summary"]


def test_the_tests_are_written_in_the_same_batch_as_the_candidates_when_an_example_fails(tmp_path):
    task = "Write add(a, b) returning the sum.\n>>> add(2, 2)\n4\n"
    models = _candidate_models(together=None)
    meeting = threading.Barrier(6, timeout=10)  # the tester's call and the five samples must arrive together
    models.for_role("generator").barrier = meeting
    models.models["tester"] = FakeMeetingChatModel(
        role="tester", replies=[fenced(ADD_TESTS)], received=[], received_kwargs=[], barrier=meeting
    )
    settings = _settings(tmp_path, candidates=6, candidate_batch=5, tests_with_candidates=True)
    result = build_graph(models, settings=settings, checkpointer=InMemorySaver()).invoke({"task": task}, _config())

    assert result["passed"] is True and "a + b" in result["code"]
    assert models.calls("tester") == 1 and models.calls("generator") == 6
    assert "def add(a, b): ..." in models.for_role("tester").received[0][-1].content  # the first code's interface
    assert "assert add(2, 3) == 5" in result["tests"] and "assert add(2, 2) == 4" in result["tests"]
    assert "candidate 3 of 6 tried" in result["node_timings"][0]["summary"]


@pytest.mark.parametrize("task", ["Write add(a, b) returning the sum.\n>>> add(2, 2)\n4\n", "Write add(a, b)."])
def test_the_tester_is_asked_alone_when_no_example_fails_or_the_task_states_none(tmp_path, task):
    # With examples, the first code passes them: nothing is sampled. Without, the tests come
    # first and decide (the first code fails one here, so the candidates follow them).
    models = _candidate_models(together=None)
    models.models["generator"].replies = [fenced(GOOD_CODE if ">>>" in task else BAD_CODE)]
    settings = _settings(tmp_path, candidates=6, candidate_batch=5, tests_with_candidates=True)
    result = build_graph(models, settings=settings, checkpointer=InMemorySaver()).invoke({"task": task}, _config())

    assert result["passed"] is True and "a + b" in result["code"] and models.calls("tester") == 1
    assert models.calls("generator") == (1 if ">>>" in task else 6)


@pytest.mark.parametrize(("wave", "seeds", "tried"), [(1, [1, 2], 3), (2, [1, 2], 3), (3, [1, 2, 3], 4)])
def test_candidates_come_in_waves_and_stop_after_the_wave_holding_one_that_passes(tmp_path, wave, seeds, tried):
    task = "Write add(a, b) returning the sum.\n>>> add(2, 2)\n4\n"
    models = _candidate_models(together=wave if wave > 1 else None)  # a wave's samples arrive together
    settings = _settings(tmp_path, candidates=6, candidate_batch=wave)
    result = build_graph(models, settings=settings, checkpointer=InMemorySaver()).invoke({"task": task}, _config())

    assert result["passed"] is True and "a + b" in result["code"]
    assert sorted(k["seed"] for k in models.for_role("generator").received_kwargs[1:]) == seeds
    assert f"candidate 3 of {tried} tried" in result["node_timings"][0]["summary"]


RIVAL_CODE = GOOD_CODE.replace("return a + b", "return a + b if a < 3 else a * b")  # add(2, 2) == 4 too


@pytest.mark.parametrize("contest_passes", [True, False])
def test_a_sampled_pass_that_a_rival_parts_from_is_contested_not_passed(tmp_path, contest_passes):
    # The greedy code fails the example; sample 2 passes everything; sample 4 answers the
    # example alike (and passes the model's tests too) but parts from it at add(3, 3).
    task = "Write add(a, b) returning the sum.\n>>> add(2, 2)\n4\n"
    models = _candidate_models(together=5)
    models.for_role("generator").by_seed[4] = fenced(RIVAL_CODE)
    settings = _settings(tmp_path, candidates=6, candidate_batch=5, contest_passes=contest_passes)
    result = build_graph(models, settings=settings, checkpointer=InMemorySaver()).invoke({"task": task}, _config())

    assert "a + b" in result["code"] and "a * b" not in result["code"] and result["validation"]["passed"] is True
    if not contest_passes:
        assert result["passed"] is True and result["contested"] == []
        return
    assert result["passed"] is False
    [rival] = result["contested"]
    a, b = ast.literal_eval(rival["call"].removeprefix("add"))
    assert a >= 3 and rival["outcomes"] == f"chosen returned {a + b}, rival returned {a * b}"
    assert rival["rival"].strip() == RIVAL_CODE.strip() and 0 < rival["probes_parted"] < rival["probes"]
    assert "contested by 1 rival(s)" in result["node_timings"][0]["summary"]


def test_a_model_that_does_not_batch_gets_its_candidates_one_at_a_time(tmp_path):
    task = "Write add(a, b) returning the sum.\n>>> add(2, 2)\n4\n"
    models = _candidate_models(together=None)
    models.decodes_together = False
    settings = _settings(tmp_path, candidates=6, candidate_batch=5)
    result = build_graph(models, settings=settings, checkpointer=InMemorySaver()).invoke({"task": task}, _config())

    assert [k.get("seed") for k in models.for_role("generator").received_kwargs] == [None, 1, 2]
    assert "candidate 3 of 3 tried" in result["node_timings"][0]["summary"]


ADD_STUB = 'def add(a, b):\n    """Return the sum of a and b.\n    >>> add(2, 2)\n    4\n    """\n'
CODE_WITH_HELPER = GOOD_CODE + "\n\ndef helper():\n    return 0\n"


def test_tests_with_code_writes_a_stub_tasks_tests_from_its_stub_in_the_same_batch(tmp_path):
    barrier = threading.Barrier(2, timeout=10)  # the code and the tests must be asked for at once
    models = FakeScriptedModels(reviewer=[GOOD_REVIEW])
    models.decodes_together = True
    for role, reply in (("generator", CODE_WITH_HELPER), ("tester", ADD_TESTS)):
        models.models[role] = FakeMeetingChatModel(
            role=role, replies=[fenced(reply)], received=[], received_kwargs=[], barrier=barrier
        )
    settings = _settings(tmp_path, tests_with_code=True)
    result = build_graph(models, settings=settings, checkpointer=InMemorySaver()).invoke({"task": ADD_STUB}, _config())

    assert result["passed"] is True and "a + b" in result["code"]
    asked = models.for_role("tester").received[0][-1].content
    assert "def add(a, b): ..." in asked and "helper" not in asked  # the stub's interface, not the code's
    assert "from solution import add" in result["tests"] and "assert add(2, 2) == 4" in result["tests"]
    assert models.calls("generator") == 1 and models.calls("tester") == 1


@pytest.mark.parametrize(("task", "tests_with_code"), [(ADD_STUB, False), ("Write add(a, b) returning the sum.", True)])
def test_tests_come_after_the_code_from_its_interface_otherwise(tmp_path, task, tests_with_code):
    models = FakeScriptedModels(
        generator=[fenced(CODE_WITH_HELPER)], tester=[fenced(ADD_TESTS)], reviewer=[GOOD_REVIEW]
    )
    models.decodes_together = True  # a task in plain words has no stub to write tests from
    settings = _settings(tmp_path, tests_with_code=tests_with_code)
    result = build_graph(models, settings=settings, checkpointer=InMemorySaver()).invoke({"task": task}, _config())

    assert result["passed"] is True
    assert "def helper(): ..." in models.for_role("tester").received[0][-1].content


def test_examples_first_draws_candidates_before_the_tester_writes_any(tmp_path):
    task = "Write add(a, b) returning the sum.\n>>> add(2, 2)\n4\n"
    wrong_product = BAD_CODE.replace("a - b", "a * b")  # passes add(2, 2) == 4 too: it is not sampled
    models = FakeScriptedModels(
        generator=[fenced(BAD_CODE), fenced(GOOD_CODE), fenced(wrong_product)],
        tester=[fenced(ADD_TESTS)],
        reviewer=[GOOD_REVIEW],
    )
    settings = _settings(tmp_path, candidates=3, examples_first=True)
    app = build_graph(models, settings=settings, checkpointer=InMemorySaver())
    result = app.invoke({"task": task}, _config())

    assert result["passed"] is True and "a + b" in result["code"]
    assert models.calls("generator") == 2  # stopped at the first candidate passing the example
    assert models.calls("tester") == 1  # tests written once, for the chosen code
    assert "candidate 2 of 2 tried" in result["node_timings"][0]["summary"]


def test_examples_first_samples_for_a_failing_given_test_and_leaves_tasks_without_tests_alone(tmp_path):
    given = "from solution import add\n\ndef test_given():\n    assert add(2, 3) == 5\n"
    models = FakeScriptedModels(
        generator=[fenced(BAD_CODE), fenced(GOOD_CODE)], tester=[fenced(ADD_TESTS)], reviewer=[GOOD_REVIEW]
    )
    settings = _settings(tmp_path, candidates=2, examples_first=True, candidates_on_example_failure=True)
    app = build_graph(models, settings=settings, checkpointer=InMemorySaver())
    result = app.invoke({"task": "Write add(a, b).", "user_tests": given}, _config())
    assert result["passed"] is True and models.calls("generator") == 2 and "a + b" in result["code"]

    # No examples and no given tests: the candidates come after the tests, as without the lever.
    models = FakeScriptedModels(
        generator=[fenced(BAD_CODE), fenced(GOOD_CODE)], tester=[fenced(ADD_TESTS)], reviewer=[GOOD_REVIEW]
    )
    app = build_graph(models, settings=settings, checkpointer=InMemorySaver())
    result = app.invoke({"task": "Write add(a, b)."}, _config())
    assert result["passed"] is True and models.calls("generator") == 2
    assert "candidate 2 of 2 tried" in result["node_timings"][0]["summary"]


@pytest.mark.parametrize("stop", [True, False])
def test_code_passing_the_tasks_examples_is_not_rewritten_to_fit_a_wrong_own_test(tmp_path, stop):
    task = "Write add(a, b) returning the sum.\n>>> add(2, 2)\n4\n"
    models = FakeScriptedModels(
        generator=[fenced(GOOD_CODE)],
        tester=[fenced(WRONG_OWN_TEST)],
        arbiter=[fenced(GOOD_CODE.replace("a + b", "a + b + 1"))],  # no help: it sides with the wrong test
        refiner=[fenced(BAD_CODE.replace("a - b", "a + b + (a == b == 1)"))] * 3,  # fits the wrong test
        reviewer=[GOOD_REVIEW],
    )
    settings = _settings(tmp_path, candidates=1, stop_on_task_tests=stop, resample_repeats=False)
    app = build_graph(models, settings=settings, checkpointer=InMemorySaver())
    result = app.invoke({"task": task}, _config())

    if stop:
        assert models.calls("refiner") == 0 and models.calls("arbiter") == 1
        assert result["passed"] is False and result["iterations"] == 2  # the kept code, validated once more
        assert "a + b" in result["code"] and "a == b" not in result["code"]
        settled = result["node_timings"][3]["summary"]
        assert "task's own tests pass, 1 self-written test(s) disagree: code kept" in settled
        assert [t["node"] for t in result["node_timings"]][-2:] == ["review", "finalize"]
        assert result["settled"] is True  # the answer says why it stopped with passed false
    else:
        assert models.calls("refiner") >= 1  # the wrong test drives a rewrite
        assert result["settled"] is False


def test_stop_on_task_tests_does_not_stop_code_failing_an_example(tmp_path):
    task = "Write add(a, b) returning the sum.\n>>> add(2, 2)\n4\n"
    models = FakeScriptedModels(
        generator=[fenced(BAD_CODE)], tester=[fenced(ADD_TESTS)], refiner=[fenced(GOOD_CODE)], reviewer=[GOOD_REVIEW]
    )
    settings = _settings(tmp_path, candidates=1, stop_on_task_tests=True, arbitrate_tests=False)
    app = build_graph(models, settings=settings, checkpointer=InMemorySaver())
    result = app.invoke({"task": task}, _config())

    assert result["passed"] is True and models.calls("refiner") == 1 and "a + b" in result["code"]


class TestOnlyOwnTestsFail:
    TESTS = "def test_task_example_1():\n    pass\n\ndef test_mine():\n    pass\n\ndef test_given():\n    pass\n"

    @staticmethod
    def _report(failing: list[str], passed: int = 2, in_process: list[str] | None = None, **extra) -> dict:
        failures = [{"test": f"test_solution.py::{name}", "message": "", "traceback": ""} for name in failing]
        return {
            "passed_count": passed, "failed_count": len(failing), "errored_count": 0, "timed_out": False,
            "failures": failures, "in_process_tests": in_process or [], **extra,
        }  # fmt: skip

    def test_only_a_self_written_test_fails(self):
        from roles.candidates import only_own_tests_fail

        assert only_own_tests_fail(self._report(["test_mine"]), self.TESTS, None)

    def test_a_failing_example_or_given_test_is_the_tasks_word(self):
        from roles.candidates import only_own_tests_fail

        given = "def test_given():\n    assert True\n"
        assert not only_own_tests_fail(self._report(["test_task_example_1"]), self.TESTS, None)
        assert not only_own_tests_fail(self._report(["test_given[1]"]), self.TESTS, given)
        assert only_own_tests_fail(self._report(["test_given"]), self.TESTS, None)  # not given: the model's

    def test_no_evidence_is_no_stop(self):
        from roles.candidates import only_own_tests_fail

        no_task_tests = "def test_mine():\n    pass\n"
        assert not only_own_tests_fail(self._report(["test_mine"]), no_task_tests, None)  # the task gave none
        assert not only_own_tests_fail(self._report([]), self.TESTS, None)  # nothing fails
        assert not only_own_tests_fail(self._report(["test_mine"], passed=0) | {"failed_count": 0}, self.TESTS, None)
        assert not only_own_tests_fail(self._report(["test_mine"], timed_out=True), self.TESTS, None)
        weak = self._report(["test_mine"], in_process=["test_task_example_1"])
        assert not only_own_tests_fail(weak, self.TESTS, None)  # the example's pass is weaker evidence


def test_a_sample_no_better_than_the_greedy_code_does_not_replace_it(tmp_path):
    almost = BAD_CODE.replace("a - b", "a + b if a > 0 else a - b")  # passes one test of two
    also_almost = BAD_CODE.replace("a - b", "a + b if a > 0 else 7")  # also one of two
    models = FakeScriptedModels(
        generator=[fenced(almost), fenced(also_almost), fenced(BAD_CODE)],
        tester=[fenced(ADD_TESTS)],
    )
    settings = _settings(tmp_path, candidates=3, max_iterations=0)
    app = build_graph(models, settings=settings, checkpointer=InMemorySaver())
    result = app.invoke({"task": "Write add(a, b)."}, _config())

    assert "a + b if a > 0 else a - b" in result["code"]  # the tie keeps the greedy code
    assert "candidate 1 of 3 tried" in result["node_timings"][0]["summary"]


def test_a_refinement_that_repeats_an_earlier_attempt_is_sampled_again(tmp_path):
    reformatted = BAD_CODE.replace("return a - b", "return (a - b)  # same program")
    models = FakeScriptedModels(
        generator=[fenced(BAD_CODE)],
        tester=[fenced(ADD_TESTS)],
        refiner=[fenced(reformatted), fenced(GOOD_CODE)],
        reviewer=[GOOD_REVIEW],
    )
    settings = _settings(tmp_path, resample_repeats=True, arbitrate_tests=False)
    app = build_graph(models, settings=settings, checkpointer=InMemorySaver())
    result = app.invoke({"task": "Write add(a, b)."}, _config())

    assert result["passed"] is True and result["iterations"] == 2 and "a + b" in result["code"]
    asked = models.for_role("refiner").received_kwargs
    assert asked == [{}, {"temperature": 0.7, "seed": 1}]
    assert "1 sampled re-ask(s) after a repeat" in result["node_timings"][-4]["summary"]


def test_when_the_refiner_keeps_repeating_the_generator_samples_afresh(tmp_path):
    models = FakeScriptedModels(
        generator=[fenced(BAD_CODE), fenced(GOOD_CODE)],
        tester=[fenced(ADD_TESTS)],
        refiner=[fenced(BAD_CODE), fenced(BAD_CODE)],
        reviewer=[GOOD_REVIEW],
    )
    settings = _settings(tmp_path, resample_repeats=True, arbitrate_tests=False)
    app = build_graph(models, settings=settings, checkpointer=InMemorySaver())
    result = app.invoke({"task": "Write add(a, b)."}, _config())

    assert result["passed"] is True and "a + b" in result["code"]
    assert models.for_role("generator").received_kwargs == [{}, {"temperature": 0.7, "seed": 1}]


def test_without_resampling_a_repeated_refinement_is_tried_as_it_is(tmp_path):
    models = FakeScriptedModels(
        generator=[fenced(BAD_CODE)], tester=[fenced(ADD_TESTS)], refiner=[fenced(BAD_CODE)] * 2
    )
    settings = _settings(tmp_path, max_iterations=2, arbitrate_tests=False)
    app = build_graph(models, settings=settings, checkpointer=InMemorySaver())
    result = app.invoke({"task": "Write add(a, b)."}, _config())

    assert result["passed"] is False and models.calls("refiner") == 2 and models.calls("generator") == 1
    assert all(kwargs == {} for kwargs in models.for_role("refiner").received_kwargs)


def test_candidates_are_ranked_by_the_tasks_examples_first():
    from roles.candidates import rank

    tests = "def test_a():\n    pass\n\ndef test_task_example_1():\n    pass\n\ndef test_task_example_2():\n    pass\n"

    def report(passed: int, failures: list[str]) -> dict:
        failed = [{"test": name, "message": "", "traceback": ""} for name in failures]
        return {
            "passed_count": passed, "failed_count": len(failed), "errored_count": 0, "failures": failed,
            "in_process_tests": [],
        }  # fmt: skip

    examples_right = rank(report(2, ["test_a"]), tests)
    own_tests_right = rank(report(2, ["test_task_example_2"]), tests)
    assert examples_right == (2, 2, 2) and own_tests_right == (1, 2, 2) and examples_right > own_tests_right
    assert rank(report(0, []), tests) == (0, 0, 0)  # nothing ran: no example counts as passed
    in_process = {**report(2, ["test_a"]), "in_process_tests": ["test_task_example_1"]}
    assert rank(in_process, tests) == (2, 1, 2) < examples_right  # judged in the code's process: weaker


WRONG_CLAIM_TESTS = """
from solution import add


def test_small():
    assert add(2, 3) == 5


def test_wrong_claim():
    assert add(1, 1) == 3
"""


@pytest.mark.parametrize(("agreement", "kept"), [(True, "return a + b\n"), (False, "(a == b == 1)")])
def test_agreement_ranking_keeps_what_most_candidates_agree_on_for_a_task_without_examples(tmp_path, agreement, kept):
    # Three candidates (the greedy one, samples 1 and 2) fail only the wrong claim; sample 3
    # fits the wrong claim and passes everything; 4 and 5 fail both tests.
    fits_the_claim = GOOD_CODE.replace("return a + b", "return a + b + (a == b == 1)")
    alike = {1: GOOD_CODE.replace("a + b", "b + a"), 2: GOOD_CODE}
    models = FakeBatchingModels(
        {**{seed: fenced(code) for seed, code in alike.items()}, 3: fenced(fits_the_claim), 4: fenced(BAD_CODE),
         5: fenced(BAD_CODE.replace("a - b", "b - a"))},
        together=5,
        generator=[fenced(GOOD_CODE)],
        tester=[fenced(WRONG_CLAIM_TESTS)],
        reviewer=[GOOD_REVIEW],
    )  # fmt: skip
    settings = _settings(tmp_path, candidates=6, candidate_batch=5, agreement_ranking=agreement, max_iterations=0)
    task = "Write add(a, b) returning the sum."
    result = build_graph(models, settings=settings, checkpointer=InMemorySaver()).invoke({"task": task}, _config())

    assert kept in result["code"]
    assert models.calls("generator") == 6


def test_agreement_groups_candidates_by_the_tests_they_fail_and_counts_repeats():
    from roles.candidates import by_agreement, has_task_tests

    def report(passed: int, failures: list[str]) -> dict:
        failed = [{"test": name, "message": "", "traceback": ""} for name in failures]
        return {"passed_count": passed, "failed_count": len(failed), "errored_count": 0, "failures": failed,
                "in_process_tests": []}  # fmt: skip

    tests = "def test_a():\n    pass\n\ndef test_b():\n    pass\n\ndef test_c():\n    pass\n"
    lone_best, agreed = report(3, []), report(2, ["test_c"])
    drawn = [(0, "x", report(1, ["test_b", "test_c"])), (1, "y", lone_best), (2, "z", agreed), (4, "z", agreed)]
    pick = by_agreement(drawn, tests, tried=6)
    assert (pick.code, pick.index, pick.tried) == ("z", 2, 6)  # 2 agree x 2 passed beats 1 x 3
    nothing_ran = report(0, [])
    assert by_agreement([(0, "x", nothing_ran), (1, "y", nothing_ran)], tests, tried=2).code == "x"
    assert by_agreement([(0, "x", agreed), (1, "y", report(2, ["test_a"]))], tests, tried=2).code == "x"  # tie
    assert not has_task_tests(tests)
    assert has_task_tests(tests + "\ndef test_task_example_1():\n    pass\n")
    assert has_task_tests(tests + "\n# Tests given with the task\ndef test_d():\n    pass\n")


def test_the_levers_that_hide_failures_and_show_the_tester_the_code(tmp_path):
    models = FakeScriptedModels(
        generator=[fenced(BAD_CODE)],
        tester=[fenced(ADD_TESTS)],
        refiner=[fenced(GOOD_CODE)],
        reviewer=[GOOD_REVIEW],
    )
    settings = _settings(tmp_path, tester_sees_code=True, failure_details=False, arbitrate_tests=False)
    app = build_graph(models, settings=settings, checkpointer=InMemorySaver())
    result = app.invoke({"task": "Write add(a, b)."}, _config())

    assert result["passed"] is True
    assert "a - b" in models.for_role("tester").received[0][1].content  # the whole code, body and all
    refine_prompt = models.for_role("refiner").received[0][1].content
    assert "2 of 2 tests failed." in refine_prompt
    assert "test_small" not in refine_prompt and "assert" not in refine_prompt


STUB_TASK = '''from typing import List


def total(xs: List[int]) -> int:
    """Return the sum of xs.
    >>> total([1, 2])
    3
    """
'''


def test_a_stub_shaped_task_is_handed_over_as_code_to_complete(tmp_path):
    # The reply drops the task's import, which the signature needs: it is put back.
    reply = "def total(xs: List[int]) -> int:\n    return sum(xs)\n"
    tests = "from solution import total\n\ndef test_total():\n    assert total([4, 5]) == 9\n"
    models = FakeScriptedModels(generator=[fenced(reply)], tester=[fenced(tests)], reviewer=[GOOD_REVIEW])
    app = build_graph(models, settings=_settings(tmp_path), checkpointer=InMemorySaver())
    result = app.invoke({"task": STUB_TASK, "entry_point": "total"}, _config())

    system, user = (m.content for m in models.for_role("generator").received[0])
    assert system.startswith("You are an expert Python programmer. Reply with the complete function")
    assert user == f"Complete the following Python function:\n```python\n{STUB_TASK}```\n"
    assert result["code"].startswith("from typing import List\n") and "return sum(xs)" in result["code"]
    assert result["passed"] is True and result["validation"]["passed_count"] == 2  # its test and the task's example


def test_a_task_in_plain_words_goes_as_it_is_with_the_name_to_use(tmp_path):
    models = FakeScriptedModels(generator=[fenced(GOOD_CODE)], tester=[fenced(ADD_TESTS)], reviewer=[GOOD_REVIEW])
    app = build_graph(models, settings=_settings(tmp_path), checkpointer=InMemorySaver())
    app.invoke({"task": "Write a function that adds two numbers.", "entry_point": "add"}, _config())

    system, user = (m.content for m in models.for_role("generator").received[0])
    assert system.startswith("You are an expert Python programmer. Reply with the complete function")
    assert user == "Write a function that adds two numbers.\n\nName the main function `add`.\n"


def test_helpers_a_stub_shaped_task_defines_are_kept_when_the_reply_leaves_them_out(tmp_path):
    task = (
        "def double(x):\n    return 2 * x\n\n\n"
        'def quadruple(x):\n    """Return four times x, using double.\n    >>> quadruple(2)\n    8\n    """\n'
    )
    reply = "def quadruple(x):\n    return double(double(x))\n"
    tests = "from solution import quadruple\n\ndef test_three():\n    assert quadruple(3) == 12\n"
    models = FakeScriptedModels(generator=[fenced(reply)], tester=[fenced(tests)], reviewer=[GOOD_REVIEW])
    app = build_graph(models, settings=_settings(tmp_path), checkpointer=InMemorySaver())
    result = app.invoke({"task": task, "entry_point": "quadruple"}, _config())

    assert result["code"].startswith("def double(x):\n    return 2 * x\n") and "double(double(x))" in result["code"]
    assert result["passed"] is True  # the task's example ran against the completed module


def test_the_task_form_is_read_from_the_task_itself():
    from roles.code import task_form

    assert task_form(STUB_TASK, "total") == "stub"
    assert task_form(STUB_TASK, None) == "stub"
    assert task_form("def f(x):\n    import math\n    '''Floor of x.'''\n", "f") == "stub"  # HumanEval/115's shape
    assert task_form("def f(x):\n    return x\n", "f") == "plain"  # already written: nothing to complete
    assert task_form("Write a function f(x) that returns x.", "f") == "plain"


def test_more_candidates_repeat_a_run_that_stopped_before_its_last(tmp_path):
    """What ``bench merge`` rests on: the first candidates of a run with more are those of one with fewer."""
    runs = []
    for candidates in (3, 6):
        models = FakeScriptedModels(
            generator=[fenced(BAD_CODE), fenced(BAD_CODE.replace("a - b", "b - a")), fenced(GOOD_CODE)],
            tester=[fenced(ADD_TESTS)],
            reviewer=[GOOD_REVIEW],
        )
        app = build_graph(models, settings=_settings(tmp_path, candidates=candidates), checkpointer=InMemorySaver())
        result = app.invoke({"task": "Write add(a, b)."}, _config())
        runs.append((result["code"], result["passed"], models.for_role("generator").received_kwargs))

    assert runs[0] == runs[1] and runs[0][1] is True
    assert [k.get("seed") for k in runs[0][2]] == [None, 1, 2]  # the third candidate passed: no fourth drawn
