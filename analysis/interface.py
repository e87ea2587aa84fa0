"""Describe and reconcile module interfaces from source, without running anything.

The tester writes tests from the task and the *interface* of the code (names and
signatures, no bodies), so a bug in a body cannot leak into the tests. The test
module a small model writes is then reconciled with the solution's names: imports
pointed at ``solution``, local copies of the code under test removed.
"""

from __future__ import annotations

import ast
import sys

from analysis.parsing import parse_python, parses

__all__ = [
    "complete_from_task",
    "interface_of",
    "is_stub",
    "is_stub_task",
    "public_names",
    "reconcile_tests",
    "strip_demo_code",
]

MODULE = "solution"


def _public_defs(tree: ast.Module) -> list[ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef]:
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    return [n for n in tree.body if isinstance(n, kinds) and not n.name.startswith("_")]


def public_names(code: str) -> list[str]:
    """Return the public top-level functions and classes of ``code`` (empty if it fails to parse)."""
    try:
        tree = parse_python(code)
    except (SyntaxError, ValueError):
        return []
    return [node.name for node in _public_defs(tree)]


def _does_nothing(statement: ast.stmt) -> bool:
    """A docstring, ``pass``, ``...`` or ``raise NotImplementedError``: a placeholder, not a body."""
    if isinstance(statement, ast.Pass):
        return True
    if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
        return isinstance(statement.value.value, str) or statement.value.value is Ellipsis
    if isinstance(statement, ast.Raise) and statement.exc is not None:
        exc = statement.exc.func if isinstance(statement.exc, ast.Call) else statement.exc
        return isinstance(exc, ast.Name) and exc.id == "NotImplementedError"
    return False


def is_stub(code: str, entry_point: str | None = None) -> bool:
    """True when ``code``'s function is only a signature and docstring, with no body.

    Small models sometimes echo the task's stub back. With ``entry_point`` that
    function is checked; otherwise every top-level function must be empty to count.
    """
    functions = _functions_to_check(code, entry_point)
    return bool(functions) and all(all(_does_nothing(s) for s in f.body) for f in functions)


def _functions_to_check(code: str, entry_point: str | None) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    """The entry point's function when ``code`` defines it, else every top-level function ([] if no parse)."""
    try:
        tree = parse_python(code)
    except (SyntaxError, ValueError):
        return []
    functions = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    if entry_point and any(f.name == entry_point for f in functions):
        functions = [f for f in functions if f.name == entry_point]
    return functions


def is_stub_task(task: str, entry_point: str | None = None) -> bool:
    """True when the task itself is code to complete: Python with a function left without a body.

    HumanEval states its problems this way (imports, perhaps helpers with bodies, then the
    function's signature and docstring). With ``entry_point`` that function must be the
    empty one when the task defines it; otherwise any empty top-level function counts.
    A task in plain words does not parse as Python and is never stub-shaped.
    """
    return any(_left_to_write(f) for f in _functions_to_check(task, entry_point))


def _left_to_write(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """A function of a task with no body yet (an import before the docstring still counts as none)."""
    return all(_does_nothing(s) or isinstance(s, ast.Import | ast.ImportFrom) for s in function.body)


def complete_from_task(code: str, task: str) -> str:
    """Put back what a stub-shaped task gave and a full rewrite left out: imports and helpers.

    A model asked to complete a function often replies with that function alone, dropping
    the task's ``from typing import List`` (a NameError at import when the signature uses
    it) or a helper defined in the task that the function, or its callers, rely on. The
    task's import lines the code lacks go first, then the task's functions and classes
    that have bodies and that the code does not define. Returns ``code`` unchanged when
    either side does not parse or nothing is missing.
    """
    try:
        given, written = parse_python(task), parse_python(code)
    except (SyntaxError, ValueError):
        return code
    have_imports = {ast.unparse(n) for n in written.body if isinstance(n, ast.Import | ast.ImportFrom)}
    defined = {n.name for n in written.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)}
    imports = [
        ast.unparse(n)
        for n in given.body
        if isinstance(n, ast.Import | ast.ImportFrom) and ast.unparse(n) not in have_imports
    ]
    lines = task.splitlines()
    helpers = []
    for node in given.body:
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) or node.name in defined:
            continue
        if not isinstance(node, ast.ClassDef) and _left_to_write(node):
            continue  # the task's stub: the code's own version is the answer
        start = min([node.lineno, *(d.lineno for d in node.decorator_list)]) - 1
        helpers.append("\n".join(lines[start : node.end_lineno]))
    if not imports and not helpers:
        return code
    parts = ["\n".join(imports)] if imports else []
    parts += helpers
    completed = "\n\n\n".join([*parts, code.strip()]) + "\n"
    return completed if parses(completed) else code  # e.g. the code opens with a __future__ import


def _stub(node: ast.FunctionDef | ast.AsyncFunctionDef, indent: str = "") -> str:
    prefix = "async def" if isinstance(node, ast.AsyncFunctionDef) else "def"
    returns = f" -> {ast.unparse(node.returns)}" if node.returns else ""
    return f"{indent}{prefix} {node.name}({ast.unparse(node.args)}){returns}: ..."


def interface_of(code: str) -> str:
    """Return stubs of the public functions and classes of ``code``, bodies removed."""
    try:
        tree = parse_python(code)
    except (SyntaxError, ValueError):
        return ""
    lines: list[str] = []
    for node in _public_defs(tree):
        if isinstance(node, ast.ClassDef):
            bases = ", ".join(ast.unparse(b) for b in node.bases)
            lines.append(f"class {node.name}({bases}):" if bases else f"class {node.name}:")
            methods = [
                m
                for m in node.body
                if isinstance(m, ast.FunctionDef | ast.AsyncFunctionDef)
                and (not m.name.startswith("_") or m.name == "__init__")
            ]
            lines.extend(_stub(m, "    ") for m in methods)
            if not methods:
                lines.append("    ...")
        else:
            lines.append(_stub(node))
    return "\n".join(lines)


def _is_demo(node: ast.stmt) -> bool:
    """A top-level statement that only demonstrates or tests the code: a bare call, a main
    guard, a ``test_*`` function or a pytest import (tests live in their own module)."""
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        return True
    if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
        return True
    if isinstance(node, ast.Import) and [a.name for a in node.names] == ["pytest"]:
        return True
    if isinstance(node, ast.If) and isinstance(node.test, ast.Compare):
        return "__name__" in ast.unparse(node.test) and "__main__" in ast.unparse(node.test)
    return False


def strip_demo_code(code: str) -> str:
    """Remove example usage from a generated module: top-level calls, main guards, tests.

    Models like to end a module with ``print(f(...))`` lines, which run on import and
    are not part of the solution. Lines are cut by position, so comments elsewhere stay.
    Returns ``code`` unchanged when it does not parse.
    """
    try:
        tree = parse_python(code)
    except (SyntaxError, ValueError):
        return code
    demo = [node for node in tree.body if _is_demo(node)]
    if not demo:
        return code
    lines = code.splitlines()
    drop: set[int] = set()
    for node in demo:
        drop.update(range(node.lineno - 1, (node.end_lineno or node.lineno)))
    kept = [line for index, line in enumerate(lines) if index not in drop]
    cleaned = "\n".join(kept).rstrip() + "\n"
    # Drop a dangling "# Example usage:" comment left at the end.
    while cleaned.rstrip().splitlines() and cleaned.rstrip().splitlines()[-1].lstrip().startswith("#"):
        cleaned = "\n".join(cleaned.rstrip().splitlines()[:-1]).rstrip() + "\n"
    return cleaned if parses(cleaned) else code


def _points_at_solution(node: ast.ImportFrom, names: set[str]) -> bool:
    """True for ``from <somewhere> import <solution names>`` that should read ``solution``."""
    if node.level or not node.module or node.module == MODULE:
        return False
    top = node.module.split(".")[0]
    if top in sys.stdlib_module_names or top == "pytest":
        return False
    imported = {alias.name for alias in node.names}
    return "*" in imported or bool(imported & names)


def reconcile_tests(tests: str, code: str) -> str:
    """Point a test module at ``solution`` and drop its own copies of the code under test.

    Returns ``tests`` unchanged when either side does not parse (validation then
    reports the syntax error).
    """
    names = set(public_names(code))
    try:
        tree = parse_python(tests)
    except (SyntaxError, ValueError):
        return tests
    if not names:
        return tests
    body: list[ast.stmt] = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node.name in names:
            continue  # a local copy would be tested instead of the solution
        if isinstance(node, ast.ImportFrom) and _points_at_solution(node, names):
            node = ast.ImportFrom(module=MODULE, names=node.names, level=0)
        body.append(node)
    imported = {a.name for n in body if isinstance(n, ast.Import) for a in n.names}
    star = any(
        isinstance(n, ast.ImportFrom) and n.module == MODULE and any(a.name == "*" for a in n.names) for n in body
    )
    header: list[ast.stmt] = []
    if "pytest" in tests and "pytest" not in imported:
        header.append(ast.Import(names=[ast.alias(name="pytest")]))
    if not star:  # names the tests use without importing them still resolve
        header.append(ast.ImportFrom(module=MODULE, names=[ast.alias(name="*")], level=0))
    module = ast.Module(body=header + body, type_ignores=[])
    return ast.unparse(ast.fix_missing_locations(module)) + "\n"
