"""The project's own code passes its type checker (mypy, with the settings in pyproject.toml).

mypy keeps its cache in .mypy_cache/ at the project root (ignored by git): the first run
takes about a minute on two cores, a repeat run a few seconds.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytest.importorskip("mypy", reason="mypy comes with the dev extra: pip install -e .[dev]")


def test_mypy_finds_nothing():
    result = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
