"""The command line as a user runs it: a real process, real files, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakes import ADD_TESTS, BAD_CODE, GOOD_CODE

CLI = [sys.executable, "-m", "cli.main"]


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    paths = {"good": GOOD_CODE, "bad": BAD_CODE, "tests": ADD_TESTS}
    out = {}
    for name, text in paths.items():
        out[name] = tmp_path / f"{name}.py"
        out[name].write_text(text)
    return out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", ""], "non-empty"),
        (["run", "   "], "non-empty"),
        (["run", "x", "--max-iterations", "99"], "0 to 10"),
        (["run", "x", "--tests", "/no/such/file.py"], "not found"),
        (["run", "--resume"], "--thread-id"),
        (["run", "--resume", "--thread-id", "never-ran", "--checkpointer", "memory"], "no checkpoints to resume"),
        (
            ["run", "x", "--checkpointer", "postgresql://someone:s3cret@127.0.0.1:1/none"],
            "cannot connect to PostgreSQL at postgresql://***@127.0.0.1:1/none",
        ),
        (["run", "x", "--no-such-option"], "unrecognized arguments"),
        (["validate", "/no/such/code.py", "/no/such/tests.py"], "not found"),
        (["graph", "--format", "svg"], "invalid choice"),
        (["frobnicate"], "invalid choice"),
        (["run", "x", "--model", "no-such-org/no-such-model"], "cannot load model 'no-such-org/no-such-model'"),
        (["models", "--check", "no-such-org/no-such-model"], "cannot load model"),
        (["bench", "humaneval", "--resume", "/no/such/run.json"], "cannot resume from /no/such/run.json"),
        (["bench", "compare", "/no/such/run.json"], "cannot read /no/such/run.json as a HumanEval run"),
    ],
)
def test_bad_input_exits_2_with_a_message(args, message):
    result = run_cli(*args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr


def test_validate_passing_files_as_json(files):
    result = run_cli("validate", str(files["good"]), str(files["tests"]), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["passed"] is True and report["passed_count"] == 2 and report["failed_count"] == 0
    assert report["coverage"] == 100.0 and report["timed_out"] is False and report["error"] is None
    assert report["isolation"] and report["duration_s"] > 0


def test_validate_failing_files_exit_1_with_the_failure(files):
    result = run_cli("validate", str(files["bad"]), str(files["tests"]))
    assert result.returncode == 1
    assert "passed: False" in result.stdout and "test_small" in result.stdout


def test_static_review_as_json(files, tmp_path):
    messy = tmp_path / "messy.py"
    messy.write_text("import os\ndef F(x):\n  if x: return 1\n  return 2\n")
    result = run_cli("review", str(messy), "--static", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    codes = {f["code"] for f in report["pep8"]}
    assert {"F401", "N802"} <= codes  # unused import, function name not lowercase
    assert report["complexity"]["max_complexity"] == 2
    assert report["model_score"] is None and report["model_review"].startswith("skipped")


def test_review_with_tests_reports_coverage(files):
    result = run_cli("review", str(files["good"]), "--tests", str(files["tests"]), "--static", "--json")
    report = json.loads(result.stdout)
    assert report["coverage"] == 100.0 and report["validation"]["passed"] is True


def test_graph_as_mermaid_ascii_and_png(tmp_path):
    mermaid = run_cli("graph")
    assert mermaid.returncode == 0
    for node in ("generate", "validate", "review", "refine", "finalize"):
        assert node in mermaid.stdout
    assert "review -.-> refine" in mermaid.stdout and "review -.-> finalize" in mermaid.stdout
    ascii_art = run_cli("graph", "--format", "ascii")
    assert ascii_art.returncode == 0 and "refine" in ascii_art.stdout
    png = tmp_path / "g.png"
    result = run_cli("graph", "--format", "png", "--output", str(png))
    assert result.returncode == 0, result.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
