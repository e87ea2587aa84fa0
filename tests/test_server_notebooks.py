"""The notebooks run top to bottom (nbclient, the project's own Python kernel).

``graph_in_process.ipynb`` runs with the scripted fake model here (the real model's
run is in ``test_server_real_model.py``); ``remote_server.ipynb`` drives a uvicorn
process this test starts, its URL passed in ``STARCODER_SERVER_URL``.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.server_process import PROJECT_ROOT, running_server

NOTEBOOKS = PROJECT_ROOT / "notebooks"


def run_notebook(name: str, timeout_s: int = 600) -> nbformat.NotebookNode:
    """Execute ``notebooks/<name>`` in place (in memory) and return it; raises on a failing cell."""
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(
        notebook,
        timeout=timeout_s,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    ).execute()
    return notebook


def outputs_text(notebook: nbformat.NotebookNode) -> str:
    """Every text and Markdown output of the executed notebook, joined."""
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            parts.append(str(data.get("text/markdown", "")) + str(data.get("text/plain", "")) + output.get("text", ""))
    return "\n".join(parts)


def test_graph_in_process_notebook(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("STARCODER_NOTEBOOK_MODEL", "fake")
    monkeypatch.setenv("STARCODER_AGENTS_HOME", str(tmp_path))
    notebook = run_notebook("graph_in_process.ipynb")
    text = outputs_text(notebook)
    assert "scripted FAKE model" in text
    assert "**Passed:** True" in text
    assert "| generate | 0 |" in text and "| finalize |" in text
    assert "graph TD;" in text  # the Mermaid picture
    images = [o for c in notebook.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert images, "the graph was not drawn as PNG"


def test_remote_server_notebook(monkeypatch, tmp_path: Path):
    with running_server(tmp_path) as server:
        monkeypatch.setenv("STARCODER_SERVER_URL", server.url)
        monkeypatch.delenv("STARCODER_API_KEY", raising=False)
        notebook = run_notebook("remote_server.ipynb")
    text = outputs_text(notebook)
    assert "model **fake-serving**" in text
    assert "**Passed:** True" in text
    assert "generate → validate → review → finalize" in text
    assert "Streamed token chunks per node: generate:" in text
    assert "Finished: True" in text and "Runs finished: 3" in text


@pytest.mark.parametrize("name", ["graph_in_process.ipynb", "remote_server.ipynb"])
def test_notebooks_are_stored_without_outputs(name):
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(notebook)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")
