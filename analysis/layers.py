"""The project's rooms and which may import which, read from the code itself.

Each top-level package (or module) of the project is a room. :data:`MAY_IMPORT` is the
rule: the rooms each room may import. :func:`room_imports` reads the imports the code
really makes (with :mod:`ast`, nothing is executed), :func:`violations` lists the ones
the rule forbids, and :func:`mermaid` draws the rooms as a diagram.
``docs/ARCHITECTURE.md`` holds that diagram; a test keeps the two the same and the code
within the rule. Regenerate the diagram with ``python -m analysis.layers``.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

from analysis.parsing import parse_python

__all__ = ["MAY_IMPORT", "ONLY_MODULES", "ROOMS", "mermaid", "room_imports", "violations"]

ROOT = Path(__file__).resolve().parent.parent

MAY_IMPORT: dict[str, frozenset[str]] = {
    "prompts": frozenset(),
    "llms": frozenset(),
    "envconfig": frozenset(),
    "sandbox": frozenset({"envconfig"}),
    "analysis": frozenset({"sandbox"}),
    "roles": frozenset({"prompts", "llms", "sandbox", "analysis", "graph", "envconfig"}),
    "nodes": frozenset({"roles", "sandbox", "analysis", "graph"}),
    "graph": frozenset({"nodes", "roles", "sandbox", "analysis", "envconfig"}),
    "service": frozenset({"graph", "roles", "llms", "sandbox", "analysis", "envconfig"}),
    "server": frozenset({"service", "graph", "llms"}),
    "benchmarks": frozenset({"graph", "roles", "llms", "sandbox", "analysis", "prompts", "envconfig"}),
    "cli": frozenset({"server", "service", "graph", "roles", "llms", "sandbox", "analysis", "benchmarks"}),
}
"""Room -> the rooms it may import. Rooms absent from the code are ignored."""

ROOMS = tuple(MAY_IMPORT)

ONLY_MODULES: dict[tuple[str, str], frozenset[str]] = {
    ("nodes", "graph"): frozenset({"graph.state", "graph.config"}),
    ("roles", "graph"): frozenset({"graph.state", "graph.config"}),
}
"""(room, imported room) -> the only modules of it the room may import.

``graph`` builds the loop out of ``nodes``, and nodes and roles read the loop's state
and settings types from ``graph``: the types only, so no module imports back in a circle.
"""


def _room_files(root: Path) -> Iterator[tuple[str, Path]]:
    for room in ROOMS:
        if (root / room).is_dir():
            yield from ((room, path) for path in sorted((root / room).rglob("*.py")))
        elif (root / f"{room}.py").is_file():
            yield room, root / f"{room}.py"


def _imported_modules(path: Path) -> Iterator[str]:
    for node in ast.walk(parse_python(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def room_imports(root: Path = ROOT) -> dict[tuple[str, str], set[str]]:
    """(importing room, imported room) -> the modules imported, over the project's code."""
    found: dict[tuple[str, str], set[str]] = {}
    for room, path in _room_files(root):
        for module in _imported_modules(path):
            target = module.split(".")[0]
            if target in MAY_IMPORT and target != room:
                found.setdefault((room, target), set()).add(module)
    return found


def violations(root: Path = ROOT) -> list[str]:
    """Each import the rule forbids, as one readable line; empty when the code keeps the rule."""
    problems = []
    for (room, target), modules in sorted(room_imports(root).items()):
        if target not in MAY_IMPORT[room]:
            problems.append(f"{room} imports {target} ({', '.join(sorted(modules))}): not allowed")
            continue
        allowed = ONLY_MODULES.get((room, target))
        extra = sorted(m for m in modules if allowed is not None and m not in allowed)
        if extra:
            problems.append(f"{room} imports {', '.join(extra)}: only {', '.join(sorted(allowed or ()))} allowed")
    return problems


def mermaid(root: Path = ROOT) -> str:
    """The rooms and their imports as a Mermaid flowchart (an arrow: "imports")."""
    edges = room_imports(root)
    lines = ["flowchart TD"]
    for room, target in sorted(edges):
        label = "|types|" if (room, target) in ONLY_MODULES else ""
        lines.append(f"    {room} -->{label} {target}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(mermaid() + "\n")
