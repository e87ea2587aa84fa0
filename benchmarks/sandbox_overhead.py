"""What the sandbox costs: a sandboxed test run against the same run in a plain subprocess.

Measures, as the median of N runs each, taken in turns so that all see the same load:

- ``plain pytest``: a trivial passing test in a plain ``python -m pytest`` subprocess;
- ``plain pytest + coverage``: the same under coverage.py with a JUnit report, the
  command the sandbox runs, but unsandboxed;
- ``sandboxed trivial``: :func:`sandbox.run_tests` on the trivial test;
- ``sandboxed typical``: :func:`sandbox.run_tests` on a typical validation (a small
  module, six tests with parametrisation, coverage);
- ``plain ruff`` / ``sandboxed ruff``: one lint of a small module.

Overheads are medians of the run-by-run differences. Run
``python -m benchmarks.sandbox_overhead [--runs N] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sandbox import SandboxLimits, detect_tier, run_command, run_tests

__all__ = ["main", "measure"]

TRIVIAL_CODE = "def answer():\n    return 42\n"
TRIVIAL_TESTS = "from solution import answer\n\n\ndef test_answer():\n    assert answer() == 42\n"
TYPICAL_CODE = '''"""Text helpers."""


def is_palindrome(text: str) -> bool:
    """True when text reads the same both ways, ignoring case and non-letters."""
    letters = [c.lower() for c in text if c.isalnum()]
    return letters == letters[::-1]


def word_counts(text: str) -> dict[str, int]:
    """How often each word occurs."""
    counts: dict[str, int] = {}
    for word in text.lower().split():
        counts[word] = counts.get(word, 0) + 1
    return counts
'''
TYPICAL_TESTS = """import pytest
from solution import is_palindrome, word_counts


@pytest.mark.parametrize("text, expected", [
    ("racecar", True), ("A man, a plan, a canal: Panama", True), ("hello", False), ("", True),
])
def test_is_palindrome(text, expected):
    assert is_palindrome(text) is expected


def test_word_counts():
    assert word_counts("a b a") == {"a": 2, "b": 1}


def test_word_counts_empty():
    assert word_counts("") == {}
"""
LINT_CODE = "import os\n\n\ndef f(x):\n    return x+1\n"


def _interleaved(variants: dict[str, Callable[[], object]], runs: int) -> dict[str, list[float]]:
    """Seconds of each run of each variant, taken in turns so that all see the same load."""
    for func in variants.values():
        func()  # warm-up: tier probe, page cache
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(runs):
        for name, func in variants.items():
            started = time.perf_counter()
            func()
            times[name].append(time.perf_counter() - started)
    return times


def _plain(argv: list[str], files: dict[str, str]) -> Callable[[], object]:
    """A plain subprocess run of ``argv`` in a fresh folder holding ``files``."""
    env = {
        "PATH": os.path.dirname(sys.executable) + ":" + os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }

    def run() -> object:
        with tempfile.TemporaryDirectory() as folder:
            for name, text in files.items():
                Path(folder, name).write_text(text)
            return subprocess.run(argv, cwd=folder, env=env, capture_output=True, check=False)

    return run


def measure(runs: int) -> dict[str, list[float]]:
    """Seconds of every measured run, by variant."""
    files = {"solution.py": TRIVIAL_CODE, "test_solution.py": TRIVIAL_TESTS}
    pytest_argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    coverage_argv = [sys.executable, "-m", "coverage", "run", "--include=solution.py", "-m"]
    coverage_argv += ["pytest", "-q", "-p", "no:cacheprovider", "--junitxml=report.xml"]
    ruff = ["ruff", "check", "--isolated", "--no-cache", "--output-format", "json", "s.py"]
    limits = SandboxLimits(wall_timeout_s=30)

    def sandboxed_typical() -> object:
        report = run_tests(TYPICAL_CODE, TYPICAL_TESTS, limits=limits)
        assert report["passed"] and report["passed_count"] == 6, report["error"]
        return report

    variants: dict[str, Callable[[], object]] = {
        "plain pytest": _plain(pytest_argv + ["test_solution.py"], files),
        "plain pytest + coverage": _plain(coverage_argv + ["test_solution.py"], files),
        "sandboxed trivial": lambda: run_tests(TRIVIAL_CODE, TRIVIAL_TESTS, limits=limits),
        "sandboxed typical": sandboxed_typical,
        "plain ruff": _plain(ruff, {"s.py": LINT_CODE}),
        "sandboxed ruff": lambda: run_command(ruff, {"s.py": LINT_CODE}, limits=limits),
    }
    return _interleaved(variants, runs)


def _paired_median(times: dict[str, list[float]], slow: str, fast: str) -> float:
    """Median of the run-by-run differences: robust to load that changes during the runs."""
    return statistics.median(a - b for a, b in zip(times[slow], times[fast], strict=True))


def _table(figures: dict[str, float], derived: dict[str, float]) -> str:
    rows = [f"{name:<40} {seconds * 1000:8.0f} ms" for name, seconds in figures.items()]
    rows.append("-" * 52)
    rows += [f"{name:<40} {seconds * 1000:+8.0f} ms" for name, seconds in derived.items()]
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    """Measure and print the table (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="runs per figure (median)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    tier = detect_tier()
    times = measure(args.runs)
    figures = {name: statistics.median(values) for name, values in times.items()}
    derived = {
        "isolation overhead (vs plain + coverage)": _paired_median(
            times, "sandboxed trivial", "plain pytest + coverage"
        ),
        "total overhead (vs plain pytest)": _paired_median(times, "sandboxed trivial", "plain pytest"),
        "ruff overhead": _paired_median(times, "sandboxed ruff", "plain ruff"),
    }
    if args.json:
        result = {
            "tier": tier.name,
            "runs": args.runs,
            "load_average": os.getloadavg()[0],
            "median_s": figures,
            "overhead_s": derived,
        }
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
    else:
        load = os.getloadavg()[0]
        sys.stdout.write(
            f"sandbox tier: {tier}\nmedian of {args.runs} interleaved runs each; "
            f"load average {load:.1f} on {os.cpu_count()} cores\n\n"
        )
        sys.stdout.write(_table(figures, derived) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
