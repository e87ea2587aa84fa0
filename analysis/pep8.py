"""PEP 8 and lint findings from ruff, run on untrusted code inside the sandbox.

ruff only parses the file, but it still reads a file a stranger wrote, so it runs
through :func:`sandbox.run_command` like everything else that touches generated code.
Lines may be up to 99 characters, the limit PEP 8 allows for teams that agree on it.
"""

from __future__ import annotations

import json
import sys

from typing_extensions import TypedDict

from sandbox import SandboxLimits, run_command

__all__ = ["Pep8Finding", "Pep8Report", "check_pep8"]

RULES = "E,W,F,N"  # pycodestyle errors and warnings, pyflakes, pep8-naming
LINE_LENGTH = 99


class Pep8Finding(TypedDict):
    """One ruff finding: rule code, message, 1-based line."""

    code: str
    message: str
    line: int


class Pep8Report(TypedDict):
    """All findings on a module, or the reason ruff could not run."""

    findings: list[Pep8Finding]
    count: int
    error: str | None
    duration_s: float  # time spent in the sandbox


def _ruff_argv(filename: str) -> list[str]:
    return [
        sys.executable, "-m", "ruff", "check", "--isolated", "--no-cache",
        "--output-format", "json", "--select", RULES,
        "--line-length", str(LINE_LENGTH), "--exit-zero", filename,
    ]  # fmt: skip


def check_pep8(code: str, *, limits: SandboxLimits | None = None) -> Pep8Report:
    """Return ruff's findings on ``code``."""
    result = run_command(_ruff_argv("solution.py"), {"solution.py": code}, limits=limits)
    if result.timed_out or result.returncode != 0:
        reason = "timed out" if result.timed_out else result.stderr.strip()[-300:]
        return Pep8Report(findings=[], count=0, error=f"ruff failed: {reason}", duration_s=result.duration_s)
    try:
        raw = json.loads(result.stdout or "[]")
    except json.JSONDecodeError as exc:
        return Pep8Report(findings=[], count=0, error=f"ruff output unreadable: {exc}", duration_s=result.duration_s)
    findings = [
        Pep8Finding(
            code=str(item.get("code") or "E999"),
            message=str(item.get("message", "")),
            line=int((item.get("location") or {}).get("row", 0)),
        )
        for item in raw
    ]
    return Pep8Report(findings=findings, count=len(findings), error=None, duration_s=result.duration_s)
