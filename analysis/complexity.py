"""Cyclomatic complexity of a module, measured by radon from the syntax tree alone."""

from __future__ import annotations

from radon.complexity import cc_rank, cc_visit
from typing_extensions import TypedDict

from analysis.parsing import parser_alone

__all__ = ["BlockComplexity", "ComplexityReport", "measure_complexity"]


class BlockComplexity(TypedDict):
    """One function, method or class and its cyclomatic complexity (rank A-F)."""

    name: str
    complexity: int
    rank: str
    line: int


class ComplexityReport(TypedDict):
    """Per-block complexity, the worst block and the mean."""

    blocks: list[BlockComplexity]
    max_complexity: int
    average_complexity: float
    error: str | None


def measure_complexity(code: str) -> ComplexityReport:
    """Measure ``code`` with radon; a module that does not parse reports an error."""
    try:
        with parser_alone():  # radon parses the code itself
            visited = cc_visit(code)
    except (SyntaxError, ValueError) as exc:
        return ComplexityReport(blocks=[], max_complexity=0, average_complexity=0.0, error=str(exc))
    blocks = [
        BlockComplexity(
            name=getattr(block, "fullname", block.name),
            complexity=int(block.complexity),
            rank=cc_rank(block.complexity),
            line=int(block.lineno),
        )
        for block in visited
    ]
    values = [b["complexity"] for b in blocks]
    return ComplexityReport(
        blocks=blocks,
        max_complexity=max(values, default=0),
        average_complexity=round(sum(values) / len(values), 2) if values else 0.0,
        error=None,
    )
