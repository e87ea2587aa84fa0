"""Parsing model replies, reconciling tests and scoring: deterministic, no model."""

from __future__ import annotations

import ast
import threading
from pathlib import Path

import pytest

from analysis.complexity import measure_complexity
from analysis.interface import interface_of, is_stub, public_names, reconcile_tests, strip_demo_code
from analysis.parsing import extract_code, parse_review
from analysis.scoring import combined_score
from graph.state import InvalidTaskError, check_task_input


class TestExtractCode:
    def test_fenced_python_block(self):
        assert extract_code("Sure!\n```python\ndef f():\n    return 1\n```\nDone.") == "def f():\n    return 1\n"

    def test_fence_without_language(self):
        assert extract_code("```\nx = 1\n```") == "x = 1\n"

    def test_prefers_a_block_that_parses(self):
        text = "```python\ndef f(:\n```\n\n```python\ndef g():\n    return 2\n```"
        assert extract_code(text).startswith("def g")

    def test_unclosed_block_cut_off_by_the_budget(self):
        assert extract_code("```python\ndef f():\n    return 1\n") == "def f():\n    return 1\n"

    def test_bare_code_without_fences(self):
        assert extract_code("def f():\n    return 1") == "def f():\n    return 1\n"

    def test_truncated_block_is_trimmed_to_its_last_complete_statement(self):
        text = '```python\ndef test_a():\n    assert f(1) == 1\n    assert f("Was it a car'
        assert extract_code(text) == "def test_a():\n    assert f(1) == 1\n"

    @pytest.mark.parametrize("text", ["", "I cannot do that.", "```bash\nls -la\n```", "x = "])
    def test_no_usable_code(self, text):
        assert extract_code(text) is None


class TestParseReview:
    def test_json_object(self):
        verdict = parse_review('{"score": 8, "summary": "ok", "recommendations": ["a", "b"]}')
        assert verdict.score == 8 and verdict.recommendations == ["a", "b"]

    def test_json_in_prose_with_trailing_comma(self):
        verdict = parse_review('My review:\n{"score": 6, "recommendations": ["x",],}\nThanks')
        assert verdict.score == 6 and verdict.recommendations == ["x"]

    def test_score_is_clamped(self):
        assert parse_review('{"score": 42}').score == 10

    def test_prose_score_and_bullets(self):
        verdict = parse_review("Score: 7/10\n- use a set\n- rename x")
        assert verdict.score == 7 and verdict.recommendations == ["use a set", "rename x"]

    @pytest.mark.parametrize("text", ["", "great code", '{"score": "high"}', "{not json"])
    def test_unreadable_score_is_none(self, text):
        assert parse_review(text).score is None


CODE = '''
import math

def _helper(x):
    return x

def area(r: float) -> float:
    """Area of a circle."""
    return math.pi * r * r

class Stack:
    def __init__(self):
        self.items = []
    def push(self, item):
        self.items.append(item)
    def _secret(self):
        pass
'''


def test_interface_hides_bodies():
    interface = interface_of(CODE)
    assert "def area(r: float) -> float: ..." in interface
    assert "class Stack:" in interface and "    def push(self, item): ..." in interface
    assert "_helper" not in interface and "_secret" not in interface and "math.pi" not in interface
    assert public_names(CODE) == ["area", "Stack"]


def test_reconcile_points_imports_at_solution_and_drops_copies():
    tests = (
        "from my_module import area\nimport math\n\n"
        "def area(r):\n    return 0\n\n"
        "def test_area():\n    assert area(1) == pytest.approx(math.pi)\n"
    )
    fixed = reconcile_tests(tests, CODE)
    tree = ast.parse(fixed)
    imports = [n for n in tree.body if isinstance(n, ast.ImportFrom)]
    assert {n.module for n in imports} == {"solution"}
    assert [n.name for n in tree.body if isinstance(n, ast.FunctionDef)] == ["test_area"]
    assert "import pytest" in fixed
    assert reconcile_tests(fixed, CODE) == fixed  # idempotent


def test_reconcile_keeps_stdlib_imports():
    fixed = reconcile_tests("from collections import deque\n\ndef test_x():\n    assert deque()\n", CODE)
    assert "from collections import deque" in fixed


def test_complexity():
    report = measure_complexity("def f(x):\n    if x:\n        return 1\n    return 2\n")
    assert report["max_complexity"] == 2 and report["blocks"][0]["rank"] == "A"
    assert measure_complexity("def f(:")["error"]


def test_combined_score_weights_and_missing_model_score():
    assert combined_score(model_score=10, pep8_findings=0, max_complexity=1, coverage=100) == 10
    assert combined_score(model_score=0, pep8_findings=0, max_complexity=1, coverage=100) == 5
    assert combined_score(model_score=None, pep8_findings=5, max_complexity=1, coverage=100) == pytest.approx(
        (0.2 * 5 + 0.15 * 10 + 0.15 * 10) / 0.5, abs=0.01
    )


class TestCheckTaskInput:
    def test_clean_input(self):
        assert check_task_input({"task": "  reverse a string ", "max_iterations": 2}) == {
            "task": "reverse a string",
            "max_iterations": 2,
        }

    @pytest.mark.parametrize(
        ("data", "message"),
        [
            ("just a string", "object"),
            ({}, "non-empty"),
            ({"task": "   "}, "non-empty"),
            ({"task": "x" * 20_001}, "limit"),
            ({"task": "x", "entry_point": "not valid"}, "identifier"),
            ({"task": "x", "max_iterations": -1}, "0 to 10"),
            ({"task": "x", "max_iterations": True}, "0 to 10"),
            ({"task": "x", "min_score": 11}, "0 to 10"),
            ({"task": "x", "colour": "red"}, "unknown input field"),
        ],
    )
    def test_bad_input_says_what_is_wrong(self, data, message):
        with pytest.raises(InvalidTaskError, match=message):
            check_task_input(data)


def test_strip_demo_code_keeps_definitions_and_comments():
    code = (
        "import re\n\n# Clean the text.\nPATTERN = re.compile('x')\n\n"
        "def f():\n    return 1\n\n# Example:\nprint(f())\n"
    )
    cleaned = strip_demo_code(code)
    assert "print" not in cleaned and "# Clean the text." in cleaned and "PATTERN" in cleaned
    assert strip_demo_code("def f(:") == "def f(:"


def test_tidy_tests_gives_each_claim_its_own_test():
    from analysis.testcases import claim_of, observed_value, tidy_tests

    tests = (
        "def test_p():\n    assert f('abc') == False\n    assert f('aa')\n    assert f('aa')\n    assert not f('ab')\n"
    )
    split = tidy_tests(tests)
    assert [line for line in split.splitlines() if line.startswith("def")] == [
        "def test_p_1():", "def test_p_2():", "def test_p_4():",
    ]  # fmt: skip
    claim = claim_of(split, "test_solution.py::test_p_1")
    assert (claim.call, claim.expected) == ("f('abc')", "False")
    assert observed_value("AssertionError: assert True == False", claim) == (True, True)
    assert claim_of(split, "test_p_4").expected == "False"
    assert claim_of("def test_x():\n    y = 1\n    assert y\n", "test_x") is None


def test_tidy_tests_keeps_code_from_running_while_pytest_collects_the_module():
    from analysis.testcases import tidy_tests

    tests = (
        "from solution import f\n\n"
        "def test_f():\n    assert f(1) == 2, 'case 1'\n    assert f(2) == 4\n    print('All test cases passed!')\n"
        "test_f()\nprint('done')\nassert f(0) == 0\nfor x in [1]:\n    f(x)\n"
        "if __name__ == '__main__':\n    test_f()\n"
    )
    tidy = tidy_tests(tests)
    assert tidy == (
        "from solution import f\n\n"
        "def test_f_1():\n    assert f(1) == 2\n\n"
        "def test_f_2():\n    assert f(2) == 4\n\n"
        "def test_stated_1():\n    assert f(0) == 0\n"
    )
    kept = "import pytest\nLIMIT = 3\n\n"
    kept += "@pytest.mark.parametrize('x', [1])\ndef test_g(x):\n    print(x)\n    assert x\n"
    assert tidy_tests(kept) == kept  # fixtures, decorators, constants and imports stay as written


def test_task_examples_become_tests():
    from analysis.testcases import examples_as_tests

    task = (
        'def f(x):\n    """Double x.\n    >>> f(2)\n    4\n    >>> print(f(1))\n    2\n'
        '    >>> g(1)\n    1\n    >>> f(0)\n    zero\n    """\n'
    )
    tests = examples_as_tests(task, ["f"])
    assert "assert f(2) == 4" in tests and "assert f(1) == 2" in tests
    assert "g(1)" not in tests and "zero" not in tests  # not ours; not a literal
    assert examples_as_tests("Write a function that adds numbers.", ["add"]) == ""


def test_an_example_right_before_the_docstring_closes_keeps_its_value():
    from analysis.testcases import examples_as_tests

    for quotes in ('"""', "'''"):
        task = f"def f(x):\n    {quotes}Keep the odd ones.\n    >>> f([1, 2, 3])\n    [1, 3]\n    {quotes}\n"
        assert examples_as_tests(task, ["f"]).strip().endswith("assert f([1, 2, 3]) == [1, 3]")


def test_one_line_examples_become_tests():
    from analysis.testcases import examples_as_tests

    task = (
        "Examples:\n    f(1) ==> True\n    f(2) => false\n    f(3) -> 4\n    f('a') == 97\n"
        "    >>> f(5) == [5]\n\n    Example: f(6) \u279e 7\n    f(x) => 8\n    f(2) = 1 + 2 / 2\n"
        "    f(9) -> 9 - 1 = 8\n    g(1) == 1\n"
    )
    tests = examples_as_tests(task, ["f"])
    for claim in ("f(1) == True", "f(2) == False", "f(3) == 4", "f('a') == 97", "f(5) == [5]", "f(6) == 7"):
        assert f"assert {claim}\n" in tests
    assert tests.count("def test_task_example_") == 6  # not f(x) (no value), a definition, arithmetic, or g


class TestIsStub:
    def test_signature_and_docstring_only_is_a_stub(self):
        assert is_stub('def f(x):\n    """Doc."""\n')
        assert is_stub("def f(x):\n    pass\n")
        assert is_stub("def f(x):\n    ...\n")
        assert is_stub('def f(x):\n    """Doc."""\n    raise NotImplementedError()\n')

    def test_a_body_is_not_a_stub(self):
        assert not is_stub('def f(x):\n    """Doc."""\n    return x\n')
        assert not is_stub("import math\n")  # no function at all: not this check's business
        assert not is_stub("def f(:\n")  # unparseable: not this check's business

    def test_the_entry_point_decides_when_given(self):
        code = "def helper(x):\n    return x\n\n\ndef f(x):\n    pass\n"
        assert is_stub(code, "f") and not is_stub(code, "helper") and not is_stub(code)


class TestSameProgram:
    def test_layout_and_comments_do_not_matter(self):
        from analysis.parsing import same_program

        assert same_program("def f(x):\n    return x+1\n", "def f(x):  # inc\n\n    return (x + 1)\n")

    def test_a_different_body_is_a_different_program(self):
        from analysis.parsing import same_program

        assert not same_program("def f(x):\n    return x + 1\n", "def f(x):\n    return x - 1\n")

    def test_unparseable_code_is_compared_as_text(self):
        from analysis.parsing import same_program

        assert same_program("def f(:\n", "  def f(:\n  ") and not same_program("def f(:", "def g(:")


def test_examples_in_the_other_forms_tasks_use_become_tests():
    from analysis.testcases import examples_as_tests

    task = (
        'def f(x):\n    """Examples:\n    f("example.txt") # => \'Yes\'\n'
        "    f(\"1example.dll\") # => 'No' (the name should start with a letter)\n"
        "    f(15)   # returns \"db1111db\"\n    f('Hi') returns 'Hi'\n"
        '    f({"a": 1}) should return True.\n    f(7) ==> 24 # sum of 21 + 3\n'
        "    f(4) = 3\n    >>> f(2)  # doubles\n    4\n\n"
        '    Input: 3\n    Output: (1, 2)\n    Input: x = [4, -4], k = 2\n    Output: [4, 4]\n    """\n'
    )
    tests = examples_as_tests(task, ["f"])
    claims = (
        "f('example.txt') == 'Yes'", "f('1example.dll') == 'No'", 'f(15) == "db1111db"', "f('Hi') == 'Hi'",
        "f({'a': 1}) == True", "f(7) == 24", "f(2) == 4", "f(3) == (1, 2)", "f(x=[4, -4], k=2) == [4, 4]",
    )  # fmt: skip
    for claim in claims:
        assert f"assert {claim}\n" in tests
    # ``f(4) = 3`` is how a task defines a sequence, not what the function returns
    assert tests.count("def test_task_example_") == len(claims)


def test_a_comment_in_an_example_never_makes_an_assert_that_always_holds():
    import ast

    from analysis.testcases import examples_as_tests

    task = 'def f(x):\n    """\n    >>> round(f([1, 2]), 2) # f(x) = 1 + 2x\n    -0.5\n'
    task += '    f("a") # => \'No\'\n    """\n'
    tests = examples_as_tests(task, ["f"])
    asserts = [node for node in ast.walk(ast.parse(tests)) if isinstance(node, ast.Assert)]
    assert len(asserts) == 2
    assert all(isinstance(a.test, ast.Compare) and isinstance(a.test.ops[0], ast.Eq) for a in asserts)


def test_no_other_thread_parses_while_one_holds_the_parser():
    from analysis.parsing import parse_python, parser_alone

    parsed = threading.Event()
    with parser_alone():
        worker = threading.Thread(target=lambda: (parse_python("x = 1\n"), parsed.set()))
        worker.start()
        assert not parsed.wait(0.3)  # held: the other thread waits for the parser
    assert parsed.wait(10)
    worker.join()


def test_every_parse_of_the_project_goes_through_the_one_parser():
    root = Path(__file__).resolve().parent.parent
    rooms = ("analysis", "roles", "nodes", "graph", "llms", "service", "sandbox", "cli", "benchmarks")
    files = [root / "server.py", *(path for room in rooms for path in (root / room).rglob("*.py"))]
    inside = root / "sandbox" / "inside"  # the sandbox's own process, which parses alone
    found = [
        str(path.relative_to(root))
        for path in files
        if path != root / "analysis" / "parsing.py"
        and inside not in path.parents
        and "ast.parse(" in path.read_text(encoding="utf-8")
    ]
    assert len(files) > 50 and found == []


def test_probes_are_the_tests_literal_calls_then_their_neighbours_in_turn():
    from analysis.probes import argument_lists, probes

    tests = (
        "from solution import f\n\n\ndef test_task_example_1():\n    assert f(4) is False\n\n\n"
        "def test_more():\n    assert f([1, -2], 'ab')\n    assert f(x) == 1\n    assert f(4) is False\n"
    )
    assert argument_lists(tests, "f") == [(4,), ([1, -2], "ab")]  # f(x) is not a literal call; no repeats
    assert argument_lists(tests, "f", within="test_task_example_") == [(4,)]
    found = probes(tests, "f")
    assert found[:2] == [(4,), ([1, -2], "ab")]
    assert found[2:4] == [(5,), ([-2, 1], "ab")]  # each call's first step, then each call's second
    seen = [repr(args) for args in found]
    assert {repr(a) for a in [(3,), (-4,), ([2, -2], "ab"), ([-1, 2], "ab"), ([1, -2], "ba")]} <= set(seen)
    assert len(seen) == len(set(seen)) and len(probes(tests, "f", limit=3)) == 3
    assert probes("def broken(:\n", "f") == [] and probes(tests, "g") == []
