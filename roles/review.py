"""The reviewer: PEP 8 (ruff), complexity (radon), coverage (from the tests) and a model's review.

The static measures always run; the model is asked only when the caller says so. The
combined score is documented in :mod:`analysis.scoring`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from analysis.complexity import measure_complexity
from analysis.parsing import parse_review
from analysis.pep8 import check_pep8
from analysis.scoring import combined_score
from roles.context import CallContext, call_model
from sandbox.report import ValidationReport, judging_summary

if TYPE_CHECKING:
    from graph.state import ReviewReport

__all__ = ["review_code"]


def _checks_text(validation: ValidationReport, pep8_count: int, pep8_first: list[str], max_cc: int) -> str:
    parts = [
        f"tests {validation['passed_count']} passed, {validation['failed_count'] + validation['errored_count']} failed",
    ]
    if validation.get("in_process_tests"):
        parts.append(judging_summary(validation))
    if validation["coverage"] is not None:
        parts.append(f"line coverage {validation['coverage']:.0f}%")
    parts.append(f"PEP 8 findings {pep8_count}" + (f" ({'; '.join(pep8_first)})" if pep8_first else ""))
    parts.append(f"highest cyclomatic complexity {max_cc}")
    return ", ".join(parts) + "."


def _evidence_note(validation: ValidationReport) -> list[str]:
    """A recommendation when some tests could only be judged in the code's own process."""
    if not validation.get("in_process_tests"):
        return []
    return [
        f"Evidence: {judging_summary(validation)}. These tests pass the code something that "
        "cannot cross as plain data, so the code could have decided their outcome; test "
        "with plain values where possible."
    ]


def _empty_review(reason: str) -> ReviewReport:
    return {
        "score": 0.0, "model_score": None, "summary": "", "recommendations": [], "pep8": [], "pep8_count": 0,
        "complexity": {"blocks": [], "max_complexity": 0, "average_complexity": 0.0, "error": reason},
        "coverage": None, "model_review": f"skipped: {reason}",
    }  # fmt: skip


def review_code(
    ctx: CallContext, *, task: str, code: str, validation: ValidationReport, ask_model: bool
) -> ReviewReport:
    """Review ``code``; the model is asked only when ``ask_model`` is true."""
    if not code.strip():
        return _empty_review("there is no code")
    pep8 = check_pep8(code)
    ctx.usage.sandbox_seconds += pep8["duration_s"]
    complexity = measure_complexity(code)
    first = [f"line {f['line']}: {f['code']} {f['message']}" for f in pep8["findings"][:3]]
    model_score, summary, recommendations = None, "", []
    if not ask_model:
        status = "skipped: the tests fail"
    else:
        checks = _checks_text(validation, pep8["count"], first, complexity["max_complexity"])
        reply = call_model(ctx, "reviewer", {"task": task, "code": code.strip(), "checks": checks})
        verdict = parse_review(reply)
        model_score, summary, recommendations = verdict.score, verdict.summary, verdict.recommendations
        status = "done" if verdict.score is not None else f"unreadable reply: {reply[:120]!r}"
    return {
        "score": combined_score(
            model_score=model_score,
            pep8_findings=pep8["count"],
            max_complexity=complexity["max_complexity"],
            coverage=validation["coverage"],
        ),
        "model_score": model_score,
        "summary": summary,
        "recommendations": _evidence_note(validation) + recommendations + [f"PEP 8: {line}" for line in first],
        "pep8": pep8["findings"],
        "pep8_count": pep8["count"],
        "complexity": complexity,
        "coverage": validation["coverage"],
        "model_review": status,
    }
