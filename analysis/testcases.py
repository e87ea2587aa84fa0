"""Reshape and inspect generated pytest modules: one assertion per test, checkable claims.

Small models write one test function with a dozen asserts; the first wrong one hides
the rest. Splitting them gives each claim its own verdict, and a failing claim of
the plain form ``assert f(args) == literal`` can then be checked by a second opinion
(see ``nodes.refine``) and set aside when it contradicts the task.
"""

from __future__ import annotations

import ast
import doctest
import re
from dataclasses import dataclass
from typing import Any

from analysis.parsing import parse_expression, parse_python

__all__ = [
    "EXAMPLE_PREFIX",
    "GIVEN_TESTS_HEADER",
    "Claim",
    "claim_of",
    "examples_as_tests",
    "has_examples",
    "observed_value",
    "remove_tests",
    "tidy_tests",
]

EXAMPLE_PREFIX = "test_task_example_"
"""Tests made from the task's own examples start with this: they are the task's words."""
GIVEN_TESTS_HEADER = "# Tests given with the task"
"""The comment that opens the tests given with a task (``--tests``), in a test module."""

MAX_TESTS = 16
# FunctionDef has type_params from Python 3.12 on (3.11's stubs lack it; 3.11 ignores it).
_NO_TYPE_PARAMS: dict[str, Any] = {"type_params": []}


def _body_without_docstring(node: ast.FunctionDef) -> list[ast.stmt]:
    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        return body[1:]
    return body


def _is_plain_test(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.FunctionDef)
        and node.name.startswith("test")
        and not node.args.args
        and not node.decorator_list
    )


def _is_main_guard(node: ast.stmt) -> bool:
    """``if __name__ == "__main__": ...``."""
    return (
        isinstance(node, ast.If)
        and isinstance(node.test, ast.Compare)
        and isinstance(node.test.left, ast.Name)
        and node.test.left.id == "__name__"
    )


def _runs_at_import(node: ast.stmt) -> bool:
    """A top-level statement that would run code while pytest collects the module.

    A bare call (``test_x()``, ``print(...)``, ``unittest.main()``), a loop or a
    ``with`` block, or the ``__main__`` guard: pytest runs the test functions itself,
    and code called during collection fails the whole module, the task's examples
    with it.
    """
    return isinstance(node, ast.Expr | ast.For | ast.While | ast.With) or _is_main_guard(node)


def _is_print(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Call)
        and isinstance(node.value.func, ast.Name)
        and node.value.func.id == "print"
    )


def _test_function(name: str, body: list[ast.stmt], args: ast.arguments | None = None) -> ast.FunctionDef:
    return ast.FunctionDef(
        name=name, args=args or ast.arguments(posonlyargs=[], args=[], kwonlyargs=[], kw_defaults=[], defaults=[]),
        body=body, decorator_list=[], returns=None, **_NO_TYPE_PARAMS,
    )  # fmt: skip


def tidy_tests(tests: str) -> str:
    """Make a model's tests run as pytest runs them, one claim per test.

    - Each assert of an assert-only test function gets a test of its own (``print``
      calls in it are dropped); duplicates are dropped.
    - A top-level ``assert`` becomes a test of its own (``test_stated_N``).
    - Top-level code that would run while the module is collected (a bare call such as
      ``test_x()`` or ``print(...)``, a loop, the ``__main__`` guard) is dropped.

    Functions with fixtures, decorators or other statements are kept as they are.
    Returns ``tests`` unchanged when it does not parse.
    """
    try:
        tree = parse_python(tests)
    except (SyntaxError, ValueError):
        return tests
    seen: set[str] = set()
    body: list[ast.stmt] = []
    count = 0

    def add_claims(name: str, asserts: list[ast.Assert], args: ast.arguments | None = None) -> None:
        nonlocal count
        for index, written in enumerate(asserts, start=1):
            # pytest's own message ("assert 10 == 5") says more than a hand-written one.
            statement = ast.Assert(test=written.test, msg=None)
            source = ast.unparse(statement)
            if source in seen or count >= MAX_TESTS:
                continue
            seen.add(source)
            count += 1
            body.append(_test_function(f"{name}_{index}", [statement], args))

    stated = [node for node in tree.body if isinstance(node, ast.Assert)]
    for node in tree.body:
        if isinstance(node, ast.Assert) or _runs_at_import(node):
            continue
        if not _is_plain_test(node):
            body.append(node)
            continue
        assert isinstance(node, ast.FunctionDef)
        statements = [s for s in _body_without_docstring(node) if not _is_print(s)]
        asserts = [s for s in statements if isinstance(s, ast.Assert)]
        if len(statements) < 2 or len(asserts) < len(statements):
            body.append(node)
            count += 1
            continue
        add_claims(node.name, asserts, node.args)
    add_claims("test_stated", stated)
    return ast.unparse(ast.fix_missing_locations(ast.Module(body=body, type_ignores=[]))) + "\n"


@dataclass(frozen=True)
class Claim:
    """A test's single claim: ``call`` evaluates to ``expected`` (both as source)."""

    test: str
    call: str
    expected: str


def _function(tree: ast.Module, name: str) -> ast.FunctionDef | None:
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return node
    return None


def _literal(source: str) -> tuple[bool, Any]:
    try:
        return True, ast.literal_eval(source)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False, None


def test_function_name(test_id: str) -> str:
    """``test_x[param]`` or ``Class::test_x`` -> ``test_x``."""
    return test_id.split("::")[-1].split("[")[0].split(".")[-1]


def claim_of(tests: str, test_id: str) -> Claim | None:
    """The claim of a one-assert test of the form ``f(...) == literal``, ``f(...)`` or ``not f(...)``."""
    try:
        tree = parse_python(tests)
    except (SyntaxError, ValueError):
        return None
    func = _function(tree, test_function_name(test_id))
    statements = _body_without_docstring(func) if func else []
    if len(statements) != 1 or not isinstance(statements[0], ast.Assert):
        return None
    test = statements[0].test
    if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq | ast.Is):
        call, expected = test.left, test.comparators[0]
        if isinstance(expected, ast.Call) and not isinstance(call, ast.Call):
            call, expected = expected, call
        if isinstance(call, ast.Call) and _literal(ast.unparse(expected))[0]:
            return Claim(test=func.name, call=ast.unparse(call), expected=ast.unparse(expected))  # type: ignore[union-attr]
        return None
    if isinstance(test, ast.Call):
        return Claim(test=func.name, call=ast.unparse(test), expected="True")  # type: ignore[union-attr]
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not) and isinstance(test.operand, ast.Call):
        return Claim(test=func.name, call=ast.unparse(test.operand), expected="False")  # type: ignore[union-attr]
    return None


_ASSERT_MESSAGE = re.compile(r"^(?:AssertionError: )?assert (.+?) (?:==|is) (.+)$")


def observed_value(message: str, claim: Claim, traceback: str = "") -> tuple[bool, Any]:
    """What the code returned, read from pytest's assertion message ``assert <got> == <expected>``.

    The traceback's ``E   assert 10 == 5`` line is used when the test had a message of its own.
    """
    lines = [message.strip().splitlines()[0]] if message.strip() else []
    lines += [line[1:].strip() for line in traceback.splitlines() if line.startswith("E ")]
    for line in lines:
        match = _ASSERT_MESSAGE.match(line)
        if match:
            return _literal(match.group(1))
    if claim.expected in ("True", "False") and message.strip().startswith(("AssertionError: assert", "assert")):
        return True, claim.expected != "True"  # a bare truthiness assert failed: the opposite came back
    return False, None


def remove_tests(tests: str, names: set[str]) -> str:
    """Drop the test functions called ``names`` from a module."""
    try:
        tree = parse_python(tests)
    except (SyntaxError, ValueError):
        return tests
    kept = [n for n in tree.body if not (isinstance(n, ast.FunctionDef) and n.name in names)]
    return ast.unparse(ast.fix_missing_locations(ast.Module(body=kept, type_ignores=[]))) + "\n"


def literal(source: str) -> tuple[bool, Any]:
    """Evaluate a Python literal's source safely: ``(ok, value)``."""
    return _literal(source)


_CLOSING_QUOTES = ('"""', "'''")
# What separates a call from its value on one line: ``f(x) ==> y``, ``f(x) == y``,
# ``f(x) => y``, ``f(x) -> y``, ``f(x) \u279e y``, ``f(x) returns y``, ``f(x) should return y``.
# Not ``f(x) = y``: that is how a task defines a sequence (``tri(4) = 3``) whose function
# returns something else (HumanEval/130's ``tri`` returns a list), as often as an example.
_ARROWS = ("==>", "==", "=>", "->", "\u279e", " should return ", " returns ")
_LOWERCASE = {"true": "True", "false": "False", "none": "None"}
# A value may be followed by an explanation: ``'No' (it starts with a digit)``, ``24 # 21 + 3``.
_EXPLANATION = re.compile(r"\s+(?:\(|#|because\b|since\b|as\b)")
# ``Input: 3`` / ``Output: (1, 2)``, or ``Input: arr = [1, 2], k = 3`` on one line each.
_INPUT_OUTPUT = re.compile(r"^\s*Input\s*:\s*(?P<input>\S.*?)\s*\n\s*Output\s*:\s*(?P<output>\S.*?)\s*$", re.M)


def _doctest_examples(task: str) -> list[tuple[str, str]]:
    """``>>> call`` / output pairs; the output stops at a docstring's closing quotes.

    doctest reads the output up to a blank line, so a docstring that closes right
    after its last example (``[1, 3, 4]`` then ``\"\"\"``) would swallow the quotes.
    """
    try:
        examples = doctest.DocTestParser().get_examples(task)
    except ValueError:
        return []
    pairs = []
    for example in examples:
        lines = []
        for line in example.want.splitlines():
            if line.strip().startswith(_CLOSING_QUOTES):
                break
            lines.append(line)
        want = "\n".join(lines).strip()
        for quotes in _CLOSING_QUOTES:
            want = want.removesuffix(quotes).rstrip()
        if "\n" in want and not _literal(want)[0] and _literal(first := want.splitlines()[0])[0]:
            want = first  # doctest read on into the task's next line (``2`` then ``f(3) => 4``)
        source = example.source.strip()
        if not want:  # ``>>> f(x) == y`` states the claim on one line
            try:
                tree = parse_expression(source)
            except SyntaxError:
                continue
            if isinstance(tree, ast.Compare) and len(tree.ops) == 1 and isinstance(tree.ops[0], ast.Eq):
                source, want = ast.unparse(tree.left), ast.unparse(tree.comparators[0])
        pairs.append((source, want))
    return pairs


def _stated_value(text: str) -> str | None:
    """The literal a line states after its arrow, without a trailing explanation or full stop.

    ``'No' (the name starts with a digit)`` and ``True.`` give ``'No'`` and ``True``;
    ``1 + 2 / 2`` gives None: arithmetic is not a stated value, and no prefix of it is taken.
    """
    text = text.strip()
    cut = _EXPLANATION.search(text)
    for value in dict.fromkeys([text[: cut.start()] if cut else text, text]):
        value = value.strip().removesuffix(".").rstrip().removesuffix(",").rstrip()
        value = _LOWERCASE.get(value, value)
        if value and _literal(value)[0]:
            return value
    return None


def _inline_examples(task: str, names: list[str]) -> list[tuple[str, str]]:
    """Examples written on one line, ``f(1, 2) == 3`` or ``f("a") => 97``, for one of ``names``.

    The call's arguments and the expected value must be literals. A comment marker
    between them (``f("a.txt") # => 'Yes'``) is dropped.
    """
    pairs = []
    for line in task.splitlines():
        text = line.strip()
        starts = [i for i in (text.find(f"{name}(") for name in names) if i >= 0]
        if text.startswith(">>>") or not starts:
            continue
        text = text[min(starts) :]
        for arrow in _ARROWS:
            at = text.find(arrow)
            while at > 0:
                call = text[:at].strip().removesuffix("#").rstrip()
                want = _stated_value(text[at + len(arrow) :])
                if want is not None and _is_literal_call(call):
                    pairs.append((call, want))
                    break
                at = text.find(arrow, at + 1)
            else:
                continue
            break
    return pairs


def _input_output_examples(task: str, names: list[str]) -> list[tuple[str, str]]:
    """``Input:`` / ``Output:`` line pairs, for a task about one function.

    The input is one literal (``Input: 3``) or literal keyword arguments
    (``Input: arr = [1, 2], k = 3``); the call is made with them as they are written.
    """
    if len(names) != 1:
        return []
    pairs = []
    for found in _INPUT_OUTPUT.finditer(task):
        want = _stated_value(found["output"])
        call = f"{names[0]}({found['input']})"
        if want is not None and _is_literal_call(call):
            pairs.append((call, want))
    return pairs


def _is_literal_call(source: str) -> bool:
    """``f(1, "a")``: a call whose arguments are all literals (``f(a)`` names no value)."""
    try:
        call = parse_expression(source)
    except SyntaxError:
        return False
    arguments = [*getattr(call, "args", []), *(k.value for k in getattr(call, "keywords", []))]
    return isinstance(call, ast.Call) and all(_literal(ast.unparse(a))[0] for a in arguments)


def has_examples(tests: str) -> bool:
    """Whether ``tests`` hold one of the task's own examples (see :func:`examples_as_tests`)."""
    return f"def {EXAMPLE_PREFIX}" in tests


def examples_as_tests(task: str, names: list[str]) -> str:
    """Turn the task's own examples into pytest tests.

    Both doctest examples (``>>> f(1)`` then ``2``) and one-line ones (``f(1) == 2``,
    ``f(1) => 2``, ``f(1) -> 2``) count. Only examples that call one of ``names`` and
    whose expected output is a Python literal are used. Returns '' when the task has none.
    """
    tests: list[str] = []
    seen: set[tuple[str, str]] = set()
    found = [*_doctest_examples(task), *_inline_examples(task, names), *_input_output_examples(task, names)]
    for source, want in found:
        ok, _ = _literal(want)
        try:
            call = parse_expression(source)
        except SyntaxError:
            continue
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "print":
            if len(call.args) != 1 or call.keywords:
                continue
            call = call.args[0]  # doctest shows what print wrote: the value itself, for literals
            source = ast.unparse(call)
        calls_ours = any(
            isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in names
            for node in ast.walk(call)
        )
        if ok and want and calls_ours and (source, want) not in seen:
            seen.add((source, want))
            # Written from the parsed call, so a comment in the source (``f(2)  # note``) cannot
            # swallow the comparison and leave an assert that always holds.
            tests.append(f"def {EXAMPLE_PREFIX}{len(tests) + 1}():\n    assert {ast.unparse(call)} == {want}\n")
    return "\n\n".join(tests)
