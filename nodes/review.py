"""review: PEP 8 (ruff), complexity (radon), coverage (from validate) and a model's review.

The static measures always run. The model's review runs when the tests pass (or
when ``Settings.review_failing`` asks for it): for failing code the failures are
the better guide and the model call would only cost time. The combined score is
documented in :mod:`analysis.scoring`. The attempt is recorded here, with both its
validation and its review.
"""

from __future__ import annotations

import time

from langchain_core.runnables import RunnableConfig

from analysis.complexity import measure_complexity
from analysis.parsing import parse_review
from analysis.pep8 import check_pep8
from analysis.scoring import combined_score
from graph.config import Settings
from graph.state import AgentState, Attempt, ReviewReport
from nodes.common import ModelProvider, Usage, call_model, node_timing
from sandbox.report import ValidationReport, judging_summary

__all__ = ["review"]


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
    return ReviewReport(
        score=0.0, model_score=None, summary="", recommendations=[], pep8=[], pep8_count=0,
        complexity={"blocks": [], "max_complexity": 0, "average_complexity": 0.0, "error": reason},
        coverage=None, model_review=f"skipped: {reason}",
    )  # fmt: skip


def review_code(
    model: ModelProvider,
    *,
    task: str,
    code: str,
    validation: ValidationReport,
    ask_model: bool,
    config: RunnableConfig | None,
    usage: Usage,
) -> ReviewReport:
    """Review ``code``; the model is asked only when ``ask_model`` is true."""
    if not code.strip():
        return _empty_review("there is no code")
    pep8 = check_pep8(code)
    usage.sandbox_seconds += pep8["duration_s"]
    complexity = measure_complexity(code)
    first = [f"line {f['line']}: {f['code']} {f['message']}" for f in pep8["findings"][:3]]
    model_score, summary, recommendations = None, "", []
    if not ask_model:
        status = "skipped: the tests fail"
    else:
        checks = _checks_text(validation, pep8["count"], first, complexity["max_complexity"])
        reply = call_model(
            model,
            "reviewer",
            system="reviewer_system",
            user_prompt="reviewer_user",
            slots={"task": task, "code": code.strip(), "checks": checks},
            config=config,
            usage=usage,
        )
        verdict = parse_review(reply)
        model_score, summary, recommendations = verdict.score, verdict.summary, verdict.recommendations
        status = "done" if verdict.score is not None else f"unreadable reply: {reply[:120]!r}"
    return ReviewReport(
        score=combined_score(
            model_score=model_score,
            pep8_findings=pep8["count"],
            max_complexity=complexity["max_complexity"],
            coverage=validation["coverage"],
        ),
        model_score=model_score,
        summary=summary,
        recommendations=_evidence_note(validation) + recommendations + [f"PEP 8: {line}" for line in first],
        pep8=pep8["findings"],
        pep8_count=pep8["count"],
        complexity=complexity,
        coverage=validation["coverage"],
        model_review=status,
    )


def review(state: AgentState, config: RunnableConfig, *, model: ModelProvider, settings: Settings) -> dict:
    """Review the current attempt and record it."""
    started = time.perf_counter()
    settings = settings.merged(config)
    iteration = state.get("iteration", 0)
    validation = state["validation"]
    usage = Usage()
    report = review_code(
        model,
        task=state["task"],
        code=state.get("code", ""),
        validation=validation,
        ask_model=validation["passed"] or settings.review_failing,
        config=config,
        usage=usage,
    )
    attempt = Attempt(
        iteration=iteration,
        code=state.get("code", ""),
        tests=state.get("tests", ""),
        generation_error=state.get("generation_error"),
        validation=validation,
        review=report,
        disputed_tests=state.get("disputed_tests", []),
    )
    model_part = f", model {report['model_score']:.0f}/10" if report["model_score"] is not None else ""
    summary = f"score {report['score']:.1f}/10{model_part}, PEP 8 findings {report['pep8_count']}"
    return {
        "review": report,
        "attempts": [attempt],
        "node_timings": [node_timing("review", iteration, started, summary, usage)],
    }
