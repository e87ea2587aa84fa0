"""The model-calling roles alone, and how a run's settings are resolved.

Roles are plain functions of a call context and inputs; the graph's nodes, the
single-agent routes, the command line and the benchmarks call the same ones.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid

import pytest
from langgraph.checkpoint.memory import InMemorySaver

import prompts
from analysis.probes import probes
from graph import Settings, build_graph
from graph.config import REQUEST_FIELDS, resolve_settings
from roles.context import Ask, CallContext, ask_together, call_model, call_together, prompt_names
from roles.fix import fix_code
from tests.fakes import (
    ADD_TESTS,
    BAD_CODE,
    GOOD_CODE,
    GOOD_REVIEW,
    FakeBatchingModels,
    FakeScriptedModels,
    fenced,
    scripted_settings,
)

ROLE_MODULES = ("context", "checks", "code", "tests", "fix", "review", "arbiter", "candidates", "rivals")
DEMO_CODE = GOOD_CODE + "\n\nprint(add(2, 3))\n"


def _context(models: FakeScriptedModels, **settings: object) -> CallContext:
    return CallContext(model=models, settings=scripted_settings(**settings))


@pytest.mark.parametrize("module", ROLE_MODULES)
def test_a_role_imports_neither_the_graph_its_callers_nor_the_model_layer(module):
    callers = "{'graph', 'nodes', 'service', 'cli', 'server', 'llms'}"
    code = f"import sys, roles.{module}\nprint(sorted({{n.split('.')[0] for n in sys.modules}} & {callers}))\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_call_model_takes_the_prompts_named_after_the_role():
    models = FakeScriptedModels(reviewer=["fine"])
    ctx = _context(models)
    slots = {"task": "Add numbers.", "code": "x = 1", "checks": "tests 1 passed, 0 failed."}
    assert call_model(ctx, "reviewer", slots) == "fine"
    system, user = models.for_role("reviewer").received[0]
    assert prompt_names("reviewer") == ("reviewer_system", "reviewer_user")
    assert system.content == prompts.render("reviewer_system", **slots)
    assert user.content == prompts.render("reviewer_user", **slots)
    assert ctx.usage.calls == 1 and ctx.usage.models == {"fake-scripted"}


def test_call_model_takes_another_prompt_pair_when_named():
    models = FakeScriptedModels(generator=["ok"])
    slots = {"task": "Add.", "task_lines": "Add.\n", "interface_hint": "", "hint_block": ""}
    call_model(_context(models), "generator", slots, prompt=("completion_system", "request_user"))
    system, user = models.for_role("generator").received[0]
    assert system.content == prompts.render("completion_system", **slots)
    assert user.content == prompts.render("request_user", **slots)


GENERATOR_SLOTS = {"task": "Add.", "task_lines": "Add.\n", "interface_hint": "", "hint_block": ""}


def _seeded_calls(seeds: list[int]) -> list:
    return [
        lambda c, s=s: call_model(c, "generator", GENERATOR_SLOTS, overrides={"temperature": 0.7, "seed": s})
        for s in seeds
    ]


def test_calls_made_together_overlap_and_come_back_in_order_with_their_cost_added_once():
    # The barrier lets the calls through only when all three wait at once: one after
    # another, the first would time out there.
    models = FakeBatchingModels({1: "one", 2: "two", 3: "three"}, together=3)
    ctx = _context(models)
    assert call_together(ctx, _seeded_calls([3, 1, 2])) == ["three", "one", "two"]
    assert ctx.usage.calls == 3 and ctx.usage.output_tokens == 21 and ctx.usage.models == {"fake-batching"}
    assert 0 < ctx.usage.model_seconds < 10


def test_calls_to_a_model_that_does_not_batch_run_one_after_another():
    models = FakeBatchingModels({1: "one", 2: "two"})
    models.decodes_together = False
    ctx = _context(models)
    assert call_together(ctx, _seeded_calls([2, 1])) == ["two", "one"]
    assert [k["seed"] for k in models.for_role("generator").received_kwargs] == [2, 1]
    assert ctx.usage.calls == 2


def test_asks_made_together_are_read_in_the_callers_thread_in_order():
    models = FakeBatchingModels({1: "one", 2: "two"}, together=2)
    read_in: list[tuple[str, str]] = []

    def read(reply: str) -> str:
        read_in.append((reply, threading.current_thread().name))
        return reply.upper()

    asks = [Ask(call, read) for call in _seeded_calls([2, 1])]
    assert ask_together(_context(models), asks) == ["TWO", "ONE"]
    assert read_in == [("two", threading.current_thread().name), ("one", threading.current_thread().name)]


def test_the_fix_drops_example_usage_from_the_refiners_code():
    models = FakeScriptedModels(refiner=[fenced(DEMO_CODE)])
    code = fix_code(_context(models), task="Write add(a, b).", code=BAD_CODE, problems="- wrong sign")
    assert code is not None and "def add" in code and "print(" not in code


def test_the_refine_agent_calls_the_same_fix(tmp_path):
    """The single-agent route once re-implemented the call and kept the example usage."""
    from service.agent_routes import agent_runnables

    models = FakeScriptedModels(refiner=[fenced(DEMO_CODE)])
    settings = scripted_settings(results_dir=str(tmp_path), test_timeout_s=60.0)
    result = agent_runnables(models, settings)["refine"].invoke(
        {"task": "Write add(a, b).", "code": BAD_CODE, "problems": "subtracts instead of adding"}
    )
    assert "def add" in result["code"] and "print(" not in result["code"]
    assert "subtracts instead of adding" in result["problems"]


class TestResolveSettings:
    def test_the_requests_choices_override_the_base(self):
        base = Settings(min_score=7.0, max_iterations=3)
        settings = resolve_settings({"configurable": {"min_score": 9, "thread_id": "t", "other": 1}}, base)
        assert settings.min_score == 9.0 and isinstance(settings.min_score, float)
        assert settings.max_iterations == 3
        assert resolve_settings({"configurable": {"min_score": None}}, base) is base
        assert resolve_settings(None, base) is base

    def test_a_context_mapping_wins_over_the_config_and_a_settings_context_is_taken_whole(self):
        base = Settings(min_score=7.0)
        config = {"configurable": {"min_score": 9}}
        assert resolve_settings(config, base, {"min_score": 8}).min_score == 8.0
        chosen = Settings(min_score=5.0)
        assert resolve_settings(config, base, chosen) is chosen

    @pytest.mark.parametrize(
        ("name", "value"),
        [("max_iterations", 11), ("max_iterations", 2.5), ("max_iterations", True), ("min_score", -1),
         ("min_score", "9"), ("candidates", 0), ("test_timeout_s", 10_000), ("review_failing", "yes")],
    )  # fmt: skip
    def test_bad_values_are_refused(self, name, value):
        with pytest.raises(ValueError, match=name):
            resolve_settings({"configurable": {name: value}}, Settings())

    def test_a_request_cannot_choose_where_records_are_written(self):
        base = Settings(results_dir="/srv/runs")
        assert "results_dir" not in REQUEST_FIELDS
        assert resolve_settings({"configurable": {"results_dir": "/etc"}}, base).results_dir == "/srv/runs"

    def test_the_environment_comes_before_the_default(self, monkeypatch):
        monkeypatch.setenv("STARCODER_MIN_SCORE", "9.5")
        assert Settings().min_score == 9.5
        assert resolve_settings({"configurable": {"min_score": 6}}).min_score == 6.0


def _passing_models() -> FakeScriptedModels:
    return FakeScriptedModels(
        generator=[fenced(GOOD_CODE)],
        tester=[fenced(ADD_TESTS)],
        reviewer=[GOOD_REVIEW] * 4,
        refiner=[fenced(GOOD_CODE)] * 3,
    )


def _run(tmp_path, task_input: dict, configurable: dict | None = None, **settings: object) -> dict:
    base = scripted_settings(results_dir=str(tmp_path / "runs"), test_timeout_s=60.0, **settings)
    app = build_graph(_passing_models(), settings=base, checkpointer=InMemorySaver())
    config = {"configurable": {**(configurable or {}), "thread_id": uuid.uuid4().hex}}
    return app.invoke({"task": "Write add(a, b) that returns the sum.", **task_input}, config)


class TestPrecedence:
    """max_iterations and min_score: the task's input, then the request, then the environment, then the default."""

    def test_the_request_reaches_the_nodes(self, tmp_path):
        assert _run(tmp_path, {})["iterations"] == 1  # passes with a review of about 9.5 out of 10
        assert _run(tmp_path, {}, {"min_score": 10, "max_iterations": 1})["iterations"] == 2

    def test_the_task_input_wins_over_the_request(self, tmp_path):
        result = _run(tmp_path, {"max_iterations": 0}, {"min_score": 10, "max_iterations": 2})
        assert result["iterations"] == 1

    def test_the_request_wins_over_the_programs_settings(self, tmp_path):
        assert _run(tmp_path, {}, {"min_score": 7}, min_score=10.0, max_iterations=1)["iterations"] == 1

    def test_the_environment_comes_before_the_default(self, tmp_path, monkeypatch):
        monkeypatch.setenv("STARCODER_MIN_SCORE", "10")
        monkeypatch.setenv("STARCODER_MAX_ITERATIONS", "1")
        base = Settings(results_dir=str(tmp_path), test_timeout_s=60.0, candidates=1, resample_repeats=False)
        app = build_graph(_passing_models(), settings=base)
        result = app.invoke({"task": "Write add(a, b) that returns the sum."}, {"configurable": {"thread_id": "env"}})
        assert result["iterations"] == 2


# -- rivals: a sampled pass probed against the other samples (roles.rivals) -----------

EXAMPLE_TESTS = (
    "from solution import add\n\n\n"
    "def test_task_example_1():\n    assert add(2, 2) == 4\n\n\n"
    "def test_small():\n    assert add(2, 3) == 5\n"
)


def _contest(code: str, others: list[str], tests: str = EXAMPLE_TESTS, entry_point: str | None = "add") -> list:
    from roles.rivals import contest

    ctx = CallContext(model=None, settings=Settings(test_timeout_s=60.0))  # type: ignore[arg-type]  # no model
    return contest(ctx, code, others, tests=tests, entry_point=entry_point)


def test_a_rival_that_answers_the_examples_alike_and_parts_elsewhere_contests_the_pass():
    rival = GOOD_CODE.replace("return a + b", "return a + b if b < 3 else a * b")  # add(2, 3) == 6: fails a test
    [found] = _contest(GOOD_CODE, [rival])
    a, b = eval(found["call"].removeprefix("add"))  # noqa: S307  # a tuple literal written by the probe
    assert b >= 3 and found["outcomes"] == f"chosen returned {a + b}, rival returned {a * b}"
    assert found["rival"] == rival and 0 < found["probes_parted"] < found["probes"]


def test_candidates_that_agree_everywhere_or_fail_an_example_are_no_rivals():
    same = GOOD_CODE.replace("return a + b", "return b + a")
    not_a_rival = BAD_CODE  # add(2, 2) == 0: the task's own example rules it out
    broken = "def add(a, b):\n    return undefined_name\n"  # raises where the chosen returns: on the example too
    assert _contest(GOOD_CODE, [same, not_a_rival, broken, GOOD_CODE, ""]) == []


def test_a_raise_where_the_chosen_code_returns_is_a_parting():
    rival = GOOD_CODE.replace("return a + b", "if a < 0:\n        raise ValueError(a)\n    return a + b")
    [found] = _contest(GOOD_CODE, [rival])
    assert found["outcomes"].endswith("rival raised 'ValueError'") and found["call"].startswith("add(-")


def test_no_contest_without_examples_to_agree_on_or_a_function_to_call():
    rival = GOOD_CODE.replace("return a + b", "return a * b")
    own_tests_only = "from solution import add\n\n\ndef test_small():\n    assert add(2, 3) == 5\n"
    assert _contest(GOOD_CODE, [rival], tests=own_tests_only) == []
    two_functions = GOOD_CODE + "\n\ndef sub(a, b):\n    return a - b\n"
    assert _contest(two_functions, [rival], entry_point=None) == []


def test_a_rival_that_hangs_on_a_probe_gives_no_opinion_there_and_the_others_still_count():
    from roles.rivals import CALL_TIMEOUT_S, contest

    rival = GOOD_CODE.replace("return a + b", "while a > 100:\n        pass\n    return a + b")
    ctx = CallContext(model=None, settings=Settings(test_timeout_s=30.0))  # type: ignore[arg-type]
    tests = EXAMPLE_TESTS.replace("add(2, 3) == 5", "add(200, 3) == 203")
    parting = GOOD_CODE.replace("return a + b", "return a * b if a == 3 else a + b")
    [found] = contest(ctx, GOOD_CODE, [rival, parting], tests=tests, entry_point="add")
    assert found["rival"] == parting and found["call"] == "add(3, 2)"
    hung = sum(1 for args in probes(tests, "add") if args[0] > 100)  # each call stopped at the limit
    assert hung * CALL_TIMEOUT_S <= ctx.usage.sandbox_seconds < hung * CALL_TIMEOUT_S + 8.0


def test_a_rival_that_hangs_on_an_example_is_no_rival():
    from roles.rivals import contest

    rival = GOOD_CODE.replace("return a + b", "while a == 2:\n        pass\n    return a * b")  # add(2, 2): hangs
    ctx = CallContext(model=None, settings=Settings(test_timeout_s=30.0))  # type: ignore[arg-type]
    assert contest(ctx, GOOD_CODE, [rival], tests=EXAMPLE_TESTS, entry_point="add") == []


def test_one_probe_run_holds_every_rival():
    from roles.rivals import probe_run

    code, tests = probe_run(GOOD_CODE, ["r1", "r2"], "add", [(1, 2), (3, 4), (5, 6)], examples={0})
    assert code.startswith(GOOD_CODE.rstrip()) and "['r1', 'r2']" in code
    assert tests.count("def test_probe_") == 6 and "def test_probe_2_1():\n    _probe(2, 1, (5, 6), False)" in tests
    assert "_probe(0, 0, (1, 2), True)" in tests


# -- ranking runs stop sooner than the verdict's (Settings.rank_timeout_s) --------------


def test_a_looping_code_is_ranked_as_failing_at_the_ranking_limit_not_the_verdicts():
    from roles.candidates import fails_an_example
    from roles.checks import check_attempt

    looping = "def add(a, b):\n    while True:\n        pass\n"
    settings = Settings(test_timeout_s=60.0, rank_timeout_s=1.0)
    ctx = CallContext(model=None, settings=settings)  # type: ignore[arg-type]  # no model
    assert fails_an_example(ctx, looping, EXAMPLE_TESTS)
    assert ctx.usage.sandbox_seconds < 15.0  # the 1 s limit and the sandbox's start, far from 60 s
    report, _ = check_attempt(looping, EXAMPLE_TESTS, settings, ranking=True)
    assert report["timed_out"] and "timed out after 1s" in (report["error"] or "")
    lower, _ = check_attempt(looping, EXAMPLE_TESTS, Settings(test_timeout_s=2.0, rank_timeout_s=5.0), ranking=True)
    assert lower["timed_out"] and "timed out after 2s" in (lower["error"] or "")  # never above the verdict's
