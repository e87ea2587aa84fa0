"""How the review's combined 0-10 score is computed.

Each measure is mapped to 0-10, then averaged with these weights:

=================  ======  ==============================================
measure            weight  0-10 mapping
=================  ======  ==============================================
model review       0.50    the reviewer model's own score
PEP 8 (ruff)       0.20    10 x (1 - findings / 10), floored at 0
complexity         0.15    10 when the worst block is <= 5, minus 1.5 per point above
coverage           0.15    line coverage of the solution / 10 (0 when tests did not run)
=================  ======  ==============================================

When the model's score is missing (the reply was unreadable, or the model review was
skipped because tests fail), the other weights are rescaled to sum to 1. Whether the
tests pass is not part of the score: the router checks it separately, and the best
attempt is chosen by passing first, then score.
"""

from __future__ import annotations

__all__ = ["WEIGHTS", "combined_score", "complexity_points", "coverage_points", "pep8_points"]

WEIGHTS = {"model": 0.50, "pep8": 0.20, "complexity": 0.15, "coverage": 0.15}


def pep8_points(findings: int) -> float:
    """Map a count of PEP 8 findings to 0-10."""
    return max(0.0, 10.0 * (1 - findings / 10))


def complexity_points(max_complexity: int) -> float:
    """Map the worst block's cyclomatic complexity to 0-10."""
    return max(0.0, 10.0 - 1.5 * max(0, max_complexity - 5))


def coverage_points(coverage: float | None) -> float:
    """Map line coverage in percent to 0-10."""
    return 0.0 if coverage is None else max(0.0, min(10.0, coverage / 10))


def combined_score(
    *, model_score: float | None, pep8_findings: int, max_complexity: int, coverage: float | None
) -> float:
    """Return the weighted 0-10 score described in this module's docstring."""
    parts = {
        "pep8": pep8_points(pep8_findings),
        "complexity": complexity_points(max_complexity),
        "coverage": coverage_points(coverage),
    }
    if model_score is not None:
        parts["model"] = max(0.0, min(10.0, model_score))
    total_weight = sum(WEIGHTS[name] for name in parts)
    return round(sum(WEIGHTS[name] * value for name, value in parts.items()) / total_weight, 2)
