"""The README's main job on the real default model: a task in, passing code out."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def test_real_model_solves_a_small_task(tmp_path):
    env = {**os.environ, "STARCODER_AGENTS_HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", "run", "--json", "--max-iterations", "2",
         "Write a function count_vowels(text) that returns how many vowels (a, e, i, o, u, "
         "in either case) the string text contains."],
        capture_output=True, text=True, timeout=900, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    output = json.loads(result.stdout)
    assert output["passed"] is True
    assert "def count_vowels" in output["code"]
    assert output["validation"]["passed_count"] >= 1
    assert 0 <= output["review"]["score"] <= 10
    assert output["model"]
    nodes = [t["node"] for t in output["node_timings"]]
    assert nodes[:3] == ["generate", "validate", "review"] and nodes[-1] == "finalize"
    generate = output["node_timings"][0]
    # The code and its tests; once more for a stub-only reply; when the first code fails
    # its tests, up to five sampled candidates (the default of six).
    assert 2 <= generate["model_calls"] <= 8 and generate["output_tokens"] > 0
    # Progress went to stderr, node by node.
    assert "[generate" in result.stderr and "[validate" in result.stderr
    assert (tmp_path / "runs").is_dir() and (tmp_path / "checkpoints.sqlite").is_file()
