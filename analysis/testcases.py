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

__all__ = [
    "EXAMPLE_PREFIX",
    "Claim",
    "claim_of",
    "examples_as_tests",
    "observed_value",
    "remove_tests",
    "split_asserts",
]

EXAMPLE_PREFIX = "test_task_example_"
"""Tests made from the task's own examples start with this: they are the task's words."""

MAX_TESTS = 16


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


def split_asserts(tests: str) -> str:
    """Give each assert of an assert-only test function a test of its own; drop duplicates.

    Functions with fixtures, decorators or other statements are kept as they are.
    Returns ``tests`` unchanged when it does not parse.
    """
    try:
        tree = ast.parse(tests)
    except (SyntaxError, ValueError):
        return tests
    seen: set[str] = set()
    body: list[ast.stmt] = []
    count = 0
    for node in tree.body:
        if not _is_plain_test(node):
            body.append(node)
            continue
        assert isinstance(node, ast.FunctionDef)
        statements = _body_without_docstring(node)
        if len(statements) < 2 or not all(isinstance(s, ast.Assert) for s in statements):
            body.append(node)
            count += 1
            continue
        for index, statement in enumerate(statements, start=1):
            # pytest's own message ("assert 10 == 5") says more than a hand-written one.
            statement = ast.Assert(test=statement.test, msg=None)
            source = ast.unparse(statement)
            if source in seen or count >= MAX_TESTS:
                continue
            seen.add(source)
            count += 1
            body.append(ast.FunctionDef(
                name=f"{node.name}_{index}", args=node.args, body=[statement],
                decorator_list=[], returns=None, type_params=[],
            ))  # fmt: skip
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
        tree = ast.parse(tests)
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
        tree = ast.parse(tests)
    except (SyntaxError, ValueError):
        return tests
    kept = [n for n in tree.body if not (isinstance(n, ast.FunctionDef) and n.name in names)]
    return ast.unparse(ast.fix_missing_locations(ast.Module(body=kept, type_ignores=[]))) + "\n"


def literal(source: str) -> tuple[bool, Any]:
    """Evaluate a Python literal's source safely: ``(ok, value)``."""
    return _literal(source)


def examples_as_tests(task: str, names: list[str]) -> str:
    """Turn the task's doctest examples (``>>> f(1)`` then ``2``) into pytest tests.

    Only examples that call one of ``names`` and whose expected output is a Python
    literal are used. Returns '' when the task has none.
    """
    try:
        examples = doctest.DocTestParser().get_examples(task)
    except ValueError:
        return ""
    tests: list[str] = []
    for example in examples:
        source, want = example.source.strip(), example.want.strip()
        ok, _ = _literal(want)
        try:
            call = ast.parse(source, mode="eval").body
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
        if ok and want and calls_ours:
            tests.append(f"def {EXAMPLE_PREFIX}{len(tests) + 1}():\n    assert {source} == {want}\n")
    return "\n\n".join(tests)
