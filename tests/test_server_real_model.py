"""The server on the real default model, started as a user starts it: ``starcoder-agents serve``.

Slow (the model writes a few hundred tokens per node on a CPU), so one class, one
tiny task with no refinement budget. The measured ``/agent/invoke`` latency is saved
to ``tests/artifacts/real-model-latency.json``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
from langserve import RemoteRunnable

from tests.fakes import ADD_TESTS, GOOD_CODE
from tests.server_process import PROJECT_ROOT, ServerProcess, running_server
from tests.test_server_notebooks import outputs_text, run_notebook

pytestmark = pytest.mark.slow

TASK = "Write a function add(a, b) that returns the sum of two numbers."


@pytest.fixture(scope="class")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    llms = pytest.importorskip("llms")
    try:
        llms.load_model()
    except llms.ModelLoadError as exc:
        pytest.skip(f"the default model cannot load here: {exc}")
    workdir = tmp_path_factory.mktemp("real-model")
    argv = [
        sys.executable, "-m", "cli.main", "serve", "--port", "{port}",
        "--checkpointer", str(workdir / "checkpoints.sqlite"),
    ]  # fmt: skip
    with running_server(workdir, argv=argv, startup_timeout_s=300) as running:
        yield running


class TestRealDefaultModel:
    def test_health_names_the_loaded_model(self, server):
        from llms import DEFAULT_MODEL

        health = httpx.get(f"{server.url}/health").json()
        assert health["model"]["name"] == DEFAULT_MODEL
        assert health["model"]["engine"] in {"llama.cpp", "transformers"}
        assert health["checkpointer"] == "sqlite"

    def test_invoke_a_tiny_task(self, server):
        thread_id = f"real-{int(time.time())}"
        started = time.perf_counter()
        output = RemoteRunnable(f"{server.url}/agent/", timeout=900).invoke(
            {"task": TASK, "max_iterations": 0}, config={"configurable": {"thread_id": thread_id}}
        )
        latency = time.perf_counter() - started
        assert "def add" in output["code"]
        assert output["tests"].strip() and len(output["attempts"]) == 1
        assert 0 <= output["review"]["score"] <= 10
        generate = output["node_timings"][0]
        assert generate["node"] == "generate" and generate["output_tokens"] > 0
        artifacts = PROJECT_ROOT / "tests" / "artifacts"
        artifacts.mkdir(parents=True, exist_ok=True)
        record = {
            "latency_s": round(latency, 2),
            "passed": output["passed"],
            "nodes": [(t["node"], t["seconds"], t["output_tokens"]) for t in output["node_timings"]],
        }
        (artifacts / "real-model-latency.json").write_text(json.dumps(record, indent=2))
        state = httpx.get(f"{server.url}/threads/{thread_id}/state").json()
        assert state["finished"] is True

    def test_review_streams_model_tokens(self, server):
        async def collect() -> list[dict]:
            remote = RemoteRunnable(f"{server.url}/agents/review/", timeout=900)
            try:
                body = {"code": GOOD_CODE, "tests": ADD_TESTS, "task": TASK}
                return [e async for e in remote.astream_events(body, version="v2")]
            finally:
                await remote.async_client.aclose()

        events = asyncio.run(collect())
        assert sum(e["event"] == "on_chat_model_stream" for e in events) > 5
        end = [e for e in events if e["event"] == "on_chain_end"][-1]  # the agent's own run
        status = end["data"]["output"]["review"]["model_review"]
        assert status == "done" or status.startswith("unreadable")  # a small model may ramble

    def test_the_in_process_notebook_on_the_real_model(self, monkeypatch, tmp_path):
        monkeypatch.delenv("STARCODER_NOTEBOOK_MODEL", raising=False)
        monkeypatch.setenv("STARCODER_AGENTS_HOME", str(tmp_path))
        text = outputs_text(run_notebook("graph_in_process.ipynb", timeout_s=900))
        assert "the real model" in text and "FAKE" not in text
        assert "| generate | 0 |" in text
