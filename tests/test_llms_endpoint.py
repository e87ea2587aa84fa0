"""The endpoint path against a real OpenAI-compatible server (llama.cpp's) on loopback."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from llms import DEFAULT_MODEL, PRESETS, load_model
from llms.packaged import assemble

pytestmark = pytest.mark.slow
pytest.importorskip("llama_cpp.server")

SERVED = "qwen-coder"
MESSAGES = [
    SystemMessage("You are a Python programmer. Reply with exactly one fenced python code block."),
    HumanMessage("Write is_even(n)."),
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    gguf = assemble(PRESETS[DEFAULT_MODEL].packaged)  # type: ignore[arg-type]
    port = _free_port()
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(gguf),
        "--host", "127.0.0.1", "--port", str(port), "--model_alias", SERVED,
        "--n_ctx", "4096", "--n_threads", "2",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/models", timeout=2) as response:
                    if SERVED in response.read().decode():
                        break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the llama.cpp server did not start") from None
                time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_endpoint_answers_and_stops_at_the_fence(server_url: str) -> None:
    loaded = load_model(f"endpoint:{server_url}#{SERVED}")
    assert loaded.engine == "endpoint"
    reply = loaded.for_role("generator").invoke(MESSAGES)
    text = str(reply.content)
    assert text.count("```") == 2 and text.rstrip().endswith("```") and "def is_even" in text
    meta = reply.response_metadata
    assert meta["model_name"] == loaded.name and meta["finish_reason"] == "stop_rule"
    assert reply.usage_metadata is not None and reply.usage_metadata["output_tokens"] > 5


def test_endpoint_streams(server_url: str) -> None:
    model = load_model(f"endpoint:{server_url}#{SERVED}").for_role("generator")
    chunks = list(model.stream(MESSAGES))
    assert len(chunks) > 5
    assert "".join(str(c.content) for c in chunks).rstrip().endswith("```")


def test_configured_endpoint_with_local_fallback(server_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STARCODER_ENDPOINT_URL", f"{server_url}#{SERVED}")
    chain = load_model()
    assert chain.name == f"endpoint:{server_url}#{SERVED},{DEFAULT_MODEL}"
    reply = chain.for_role("generator").invoke(MESSAGES)
    assert reply.response_metadata["model_name"].startswith("endpoint:")
    down = load_model(f"endpoint:http://127.0.0.1:{_free_port()}/v1#{SERVED},{DEFAULT_MODEL}")
    reply = down.for_role("generator").invoke(MESSAGES)
    assert reply.response_metadata["model_name"] == DEFAULT_MODEL
