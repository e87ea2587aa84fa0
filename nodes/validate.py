"""validate: syntax check, then the attempt's tests in the sandbox, with coverage.

Deterministic — no model here: :func:`roles.checks.check_attempt` does the work.
"""

from __future__ import annotations

import time

from langgraph.runtime import Runtime

from graph.config import Settings
from graph.state import AgentState
from nodes.common import node_timing, run_settings
from roles.checks import check_attempt

__all__ = ["validate"]


def validate(state: AgentState, runtime: Runtime[Settings]) -> dict:
    """Run the current attempt's tests and report the outcome."""
    started = time.perf_counter()
    iteration = state.get("iteration", 0)
    report, rewrite = check_attempt(state.get("code", ""), state.get("tests", ""), run_settings(runtime))
    if report["passed"]:
        summary = f"tests passed {report['passed_count']}/{report['passed_count']}"
    else:
        total = report["passed_count"] + report["failed_count"] + report["errored_count"]
        summary = f"tests passed {report['passed_count']}/{total}: {report['error'] or 'failed'}"
    return {
        "validation": report,
        "tests_need_rewrite": rewrite,
        "node_timings": [
            node_timing("validate", iteration, started, summary[:160], sandbox_seconds=report["duration_s"])
        ],
    }
