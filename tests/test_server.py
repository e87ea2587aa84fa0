"""The HTTP server against a real uvicorn process: LangServe clients, threads, agents, bad input.

The server runs in a subprocess with a FAKE model that always answers well (see
``tests/server_app.py``); the sandbox, LangServe and the SQLite checkpointer are real.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from langserve import RemoteRunnable

from tests.fakes import ADD_TESTS, BAD_CODE, GOOD_CODE
from tests.server_app import FAIL_ONCE_MARKER, FAKE_MODEL_NAME
from tests.server_process import PROJECT_ROOT, ServerProcess, running_server

TASK = "Write add(a, b) that returns the sum of a and b."
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    workdir = tmp_path_factory.mktemp("server")
    env = {"STARCODER_TEST_CHECKPOINTER": str(workdir / "checkpoints.sqlite")}
    with running_server(workdir, env=env) as running:
        yield running


@pytest.fixture
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with server.client() as http:
        yield http


def _agent(server: ServerProcess) -> RemoteRunnable:
    return RemoteRunnable(f"{server.url}/agent/", timeout=120)


def _thread() -> dict:
    return {"configurable": {"thread_id": f"test-{uuid.uuid4().hex[:12]}"}}


# User tests that keep a run in its validate step for a few seconds.
SLOW_USER_TESTS = """
import time

from solution import add


def test_slowly():
    time.sleep(3)
    assert add(1, 2) == 3
"""


def _wait_for_run_on(client: httpx.Client, thread_id: str, timeout_s: float = 30) -> None:
    """Wait until a run on ``thread_id`` has written its first checkpoints."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = client.get(f"/threads/{thread_id}/state")
        if state.status_code == 200 and state.json()["next"]:
            return
        time.sleep(0.05)
    raise AssertionError(f"no run on {thread_id} showed up")


# -- the whole graph through LangServe's client -------------------------------------------


class TestRemoteRunnable:
    def test_invoke_returns_code_tests_review_and_attempts(self, server):
        output = _agent(server).invoke({"task": TASK}, config=_thread())
        assert output["passed"] is True
        assert "def add" in output["code"] and "def test_" in output["tests"]
        assert output["review"]["score"] > 7 and output["review"]["model_review"] == "done"
        assert len(output["attempts"]) == output["iterations"] == 1
        assert output["model"] == FAKE_MODEL_NAME

    def test_stream_yields_one_chunk_per_node(self, server):
        chunks = list(_agent(server).stream({"task": TASK}, config=_thread()))
        assert [next(iter(chunk)) for chunk in chunks] == [
            "generate",
            "validate",
            "review",
            "finalize",
        ]
        assert chunks[-1]["finalize"]["passed"] is True

    def test_batch_runs_each_input_on_its_own_thread(self, server):
        outputs = _agent(server).batch([{"task": TASK}, {"task": TASK + " Keep it short."}])
        assert [o["passed"] for o in outputs] == [True, True]
        # finalize names its record after the thread: two records, two threads.
        assert outputs[0]["result_path"] != outputs[1]["result_path"]

    def test_astream_events_carries_nodes_and_model_tokens(self, server):
        async def collect() -> list[dict]:
            remote = _agent(server)
            try:
                return [event async for event in remote.astream_events({"task": TASK}, _thread(), version="v2")]
            finally:
                await remote.async_client.aclose()

        events = asyncio.run(collect())
        tokens = [e for e in events if e["event"] == "on_chat_model_stream"]
        assert tokens, "no model tokens were streamed"
        assert {e["metadata"].get("langgraph_node") for e in tokens} >= {"generate", "review"}
        finished = {e["name"] for e in events if e["event"] == "on_chain_end"}
        assert {"generate", "validate", "review", "finalize"} <= finished


# -- threads -------------------------------------------------------------------------------


class TestThreads:
    def test_two_calls_on_one_thread_continue_it(self, server, client):
        config = _thread()
        thread_id = config["configurable"]["thread_id"]
        agent = _agent(server)
        agent.invoke({"task": TASK}, config=config)
        first = client.get(f"/threads/{thread_id}/history").json()
        agent.invoke({"task": TASK + " Use the + operator."}, config=config)
        second = client.get(f"/threads/{thread_id}/history").json()
        assert len(second) > len(first)
        # The first run's checkpoints are still the second run's ancestors.
        assert {c["checkpoint_id"] for c in first} <= {c["checkpoint_id"] for c in second}
        state = client.get(f"/threads/{thread_id}/state").json()
        assert state["values"]["task"].endswith("Use the + operator.")
        # A new task starts a new run: its attempts do not mix with the first run's.
        assert len(state["values"]["attempts"]) == 1

    def test_state_and_history_read_back(self, server, client):
        config = _thread()
        thread_id = config["configurable"]["thread_id"]
        output = _agent(server).invoke({"task": TASK}, config=config)
        state = client.get(f"/threads/{thread_id}/state").json()
        assert state["finished"] is True and state["next"] == []
        assert state["values"]["code"] == output["code"]
        history = client.get(f"/threads/{thread_id}/history", params={"limit": 3, "values": "true"}).json()
        assert len(history) == 3 and history[0]["checkpoint_id"] == state["checkpoint_id"]
        assert history[1]["next"] == ["finalize"] and "values" in history[1]
        full = client.get(f"/threads/{thread_id}/history").json()
        assert [c["next"] for c in full[-3:]] == [["validate"], ["generate"], ["__start__"]]

    def test_a_thread_id_is_given_when_none_was_sent(self, client):
        response = client.post("/agent/invoke", json={"input": {"task": TASK}})
        assert response.status_code == 200
        thread_id = response.headers["x-thread-id"]
        assert client.get(f"/threads/{thread_id}/state").json()["finished"] is True

    def test_an_interrupted_run_resumes_where_it_stopped(self, client):
        thread_id = f"test-{uuid.uuid4().hex[:12]}"
        task = f"{TASK} {FAIL_ONCE_MARKER}"  # the fake reviewer raises the first time
        body = {"input": {"task": task}, "config": {"configurable": {"thread_id": thread_id}}}
        assert client.post("/agent/invoke", json=body).status_code == 500
        state = client.get(f"/threads/{thread_id}/state").json()
        assert state["next"] == ["review"] and state["finished"] is False
        resumed = client.post(f"/threads/{thread_id}/resume")
        assert resumed.status_code == 200, resumed.text
        assert resumed.json()["resumed_at"] == ["review"]
        assert resumed.json()["output"]["passed"] is True
        assert client.get(f"/threads/{thread_id}/state").json()["finished"] is True
        assert client.post(f"/threads/{thread_id}/resume").status_code == 409

    def test_a_run_replays_from_an_earlier_checkpoint(self, server, client):
        config = _thread()
        thread_id = config["configurable"]["thread_id"]
        _agent(server).invoke({"task": TASK}, config=config)
        history = client.get(f"/threads/{thread_id}/history").json()
        before_review = next(c for c in history if c["next"] == ["review"])
        replayed = client.post(f"/threads/{thread_id}/replay", json={"checkpoint_id": before_review["checkpoint_id"]})
        assert replayed.status_code == 200, replayed.text
        assert replayed.json()["replayed_nodes"] == ["review"]
        assert replayed.json()["output"]["passed"] is True
        after = client.get(f"/threads/{thread_id}/history").json()
        assert len(after) > len(history)
        # The replay forked from the chosen checkpoint; the old steps are still there.
        old_ids = {c["checkpoint_id"] for c in history}
        assert old_ids <= {c["checkpoint_id"] for c in after}
        forked = [c for c in after if c["checkpoint_id"] not in old_ids]
        assert any(c["parent_checkpoint_id"] == before_review["checkpoint_id"] for c in forked)
        final = history[0]["checkpoint_id"]
        assert client.post(f"/threads/{thread_id}/replay", json={"checkpoint_id": final}).status_code == 409
        missing = client.post(f"/threads/{thread_id}/replay", json={"checkpoint_id": "no-such-checkpoint"})
        assert missing.status_code == 404

    def test_a_thread_runs_one_run_at_a_time(self, server, client):
        thread_id = f"test-{uuid.uuid4().hex[:12]}"
        config = {"configurable": {"thread_id": thread_id}}
        slow = {"input": {"task": TASK, "user_tests": SLOW_USER_TESTS}, "config": config}
        with ThreadPoolExecutor(1) as pool, server.client() as other:
            first = pool.submit(other.post, "/agent/invoke", json=slow)
            _wait_for_run_on(client, thread_id)
            # A second run on the busy thread, by invoke, stream or resume, is refused at once.
            for path in ("/agent/invoke", "/agent/stream"):
                again = client.post(path, json={"input": {"task": TASK}, "config": config})
                assert again.status_code == 409 and "in progress" in again.json()["detail"], again.text
            resumed = client.post(f"/threads/{thread_id}/resume")
            assert resumed.status_code == 409 and "in progress" in resumed.json()["detail"]
            # Other threads are not held up.
            assert client.post("/agent/invoke", json={"input": {"task": TASK}, "config": _thread()}).status_code == 200
            assert first.result().status_code == 200, first.result().text
        # Once the run has ended the thread is free again, after a stream as after an invoke.
        assert [next(iter(c)) for c in _agent(server).stream({"task": TASK}, config=config)][-1] == "finalize"
        assert _agent(server).invoke({"task": TASK}, config=config)["passed"] is True

    @pytest.mark.parametrize(
        ("method", "path", "status"),
        [
            ("GET", "/threads/no-such-thread/state", 404),
            ("GET", "/threads/no-such-thread/history", 404),
            ("POST", "/threads/no-such-thread/resume", 404),
            ("GET", "/threads/bad%20id!/state", 422),
            ("GET", f"/threads/{'x' * 200}/history", 422),
            ("GET", "/threads/t/history?limit=0", 422),
        ],
    )
    def test_thread_lookups_that_fail(self, client, method, path, status):
        response = client.request(method, path)
        assert response.status_code == status, response.text
        assert response.json()["detail"]


# -- the single agents ---------------------------------------------------------------------


class TestAgentEndpoints:
    def test_generate(self, client):
        out = client.post("/agents/generate/invoke", json={"input": {"task": TASK}}).json()["output"]
        assert "def add" in out["code"] and "def test_" in out["tests"]
        assert out["model_calls"] == 2 and out["output_tokens"] > 0

    def test_refine_runs_the_tests_first_and_returns_better_code(self, client):
        body = {"input": {"task": TASK, "code": BAD_CODE, "tests": ADD_TESTS}}
        out = client.post("/agents/refine/invoke", json=body).json()["output"]
        assert out["validation_before"]["passed"] is False
        assert "test_small" in out["problems"]
        assert out["validation_after"]["passed"] is True and "a + b" in out["code"]

    def test_validate(self, client):
        body = {"input": {"code": BAD_CODE, "tests": ADD_TESTS}}
        out = client.post("/agents/validate/invoke", json=body).json()["output"]
        assert out["passed"] is False and out["failed_count"] == 2 and out["failures"]

    def test_review_with_tests_and_model(self, client):
        body = {"input": {"code": GOOD_CODE, "tests": ADD_TESTS, "task": TASK}}
        out = client.post("/agents/review/invoke", json=body).json()["output"]
        assert out["validation"]["passed"] is True
        assert out["review"]["model_score"] == 9 and out["review"]["model_review"] == "done"

    def test_review_static_only(self, client):
        body = {
            "input": {
                "code": "import os\n\n\ndef Twice(x):\n    return x * 2\n",
                "ask_model": False,
            }
        }
        out = client.post("/agents/review/invoke", json=body).json()["output"]
        assert out["validation"] is None and out["review"]["model_score"] is None
        assert out["review"]["pep8_count"] >= 2

    def test_pep8(self, client):
        code = "import os\n\n\ndef Twice(x):\n    y = 2; return x * y\n"
        out = client.post("/agents/pep8/invoke", json={"input": {"code": code}}).json()["output"]
        assert {f["code"] for f in out["findings"]} >= {"F401", "N802", "E702"} and out["error"] is None

    def test_coverage(self, client):
        body = {
            "input": {
                "code": GOOD_CODE + "\n\ndef unused(x):\n    return x * 2\n",
                "tests": ADD_TESTS,
            }
        }
        out = client.post("/agents/coverage/invoke", json=body).json()["output"]
        assert out["passed"] is True and out["passed_count"] == 2
        assert out["coverage"] is not None and 0 < out["coverage"] < 100

    def test_complexity(self, client):
        code = "def f(x):\n    if x:\n        return 1\n    for i in range(3):\n        x += i\n"
        out = client.post("/agents/complexity/invoke", json={"input": {"code": code}}).json()["output"]
        assert out["max_complexity"] == 3 and out["blocks"][0]["name"] == "f"

    def test_an_agent_through_remote_runnable(self, server):
        out = RemoteRunnable(f"{server.url}/agents/complexity/").invoke({"code": GOOD_CODE})
        assert out["max_complexity"] == 1


# -- health, stats, graph ------------------------------------------------------------------


class TestServerInfo:
    def test_health(self, client):
        health = client.get("/health").json()
        assert health["status"] == "ok" and health["version"]
        assert health["model"] == {
            "loaded": True,
            "name": FAKE_MODEL_NAME,
            "engine": "fake",
            "details": {
                "name": FAKE_MODEL_NAME,
                "engine": "fake",
                "note": "scripted fake for tests",
            },
        }
        assert health["checkpointer"] == "sqlite"
        assert health["sandbox"]["tier"] in {"bubblewrap", "unshare", "rlimits"}
        assert health["sandbox"]["reason"]

    def test_stats_count_finished_runs(self, server, client):
        before = client.get("/stats").json()
        _agent(server).invoke({"task": TASK}, config=_thread())
        list(_agent(server).stream({"task": TASK}, config=_thread()))
        after = client.get("/stats").json()
        assert after["runs_finished"] == before["runs_finished"] + 2
        assert after["passed"] == before["passed"] + 2 and after["pass_rate"] > 0
        assert after["mean_iterations"] >= 1
        nodes = after["nodes"]
        assert set(nodes) >= {"generate", "validate", "review", "finalize"}
        assert nodes["generate"]["calls"] >= 1 and nodes["generate"]["mean_seconds"] > 0
        assert after["output_tokens"] > before["output_tokens"]

    def test_graph_as_mermaid_and_png(self, client):
        mermaid = client.get("/graph")
        assert mermaid.status_code == 200 and "generate" in mermaid.text and "refine" in mermaid.text
        png = client.get("/graph", params={"format": "png"})
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"
        assert png.content.startswith(b"\x89PNG")

    def test_playground_and_schemas_are_served(self, client):
        assert client.get("/agent/playground/").status_code == 200
        schema = client.get("/agent/input_schema").json()
        assert schema["required"] == ["task"]
        # Optional fields must not be drawn as anyOf-with-null: the playground cannot render that.
        assert all("anyOf" not in prop for prop in schema["properties"].values())
        config = client.get("/agent/config_schema").json()
        assert "thread_id" in config["$defs"]["Configurable"]["properties"]


# -- bad input -----------------------------------------------------------------------------


def _chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    yield b'{"input": {"task": "'
    sent = 0
    while sent < total:
        yield b"x" * size
        sent += size
    yield b'"}}'


BAD_INPUT = [
    # (case, path, body: JSON-able object or raw bytes, expected status)
    ("malformed JSON", "/agent/invoke", b'{"input": {"task": ', 422),
    ("invalid UTF-8", "/agent/invoke", b'{"input": {"task": "\xff\xfe"}}', 422),
    ("JSON nested too deeply", "/agent/invoke", b"[" * 200_000, 422),
    (
        "a number too long to parse",
        "/agent/invoke",
        b'{"input": {"task": "t", "max_iterations": ' + b"9" * 5000 + b"}}",
        422,
    ),
    ("no input", "/agent/invoke", {}, 422),
    ("input not an object", "/agent/invoke", {"input": 5}, 422),
    ("empty task", "/agent/invoke", {"input": {"task": ""}}, 422),
    ("blank task", "/agent/invoke", {"input": {"task": "   \n "}}, 422),
    ("oversized task", "/agent/invoke", {"input": {"task": "x" * 20_001}}, 422),
    ("unknown input field", "/agent/invoke", {"input": {"task": TASK, "shell": "rm -rf /"}}, 422),
    ("budget out of range", "/agent/invoke", {"input": {"task": TASK, "max_iterations": 11}}, 422),
    (
        "entry point not an identifier",
        "/agent/invoke",
        {"input": {"task": TASK, "entry_point": "os.system"}},
        422,
    ),
    (
        "unknown model in the input",
        "/agent/invoke",
        {"input": {"task": TASK, "model": "gpt-9"}},
        422,
    ),
    (
        "unknown model in the config",
        "/agent/invoke",
        {"input": {"task": TASK}, "config": {"configurable": {"model": "gpt-9"}}},
        422,
    ),
    (
        "unknown model, batch item",
        "/agent/batch",
        {"inputs": [{"task": TASK}, {"task": TASK, "model": "x"}]},
        422,
    ),
    ("unknown model, stream", "/agent/stream", {"input": {"task": TASK, "model": "gpt-9"}}, 422),
    (
        "unknown model, single agent",
        "/agents/generate/invoke",
        {"input": {"task": TASK, "model": "gpt-9"}},
        422,
    ),
    (
        "unsafe thread id",
        "/agent/invoke",
        {"input": {"task": TASK}, "config": {"configurable": {"thread_id": "../../etc/passwd"}}},
        422,
    ),
    ("empty task, stream_events", "/agent/stream_events", {"input": {"task": ""}}, 422),
    ("empty task, batch", "/agent/batch", {"inputs": [{"task": TASK}, {"task": ""}]}, 422),
    (
        "bad item, single-agent batch",
        "/agents/pep8/batch",
        {"inputs": [{"code": "x = 1"}, {"code": ""}]},
        422,
    ),
    ("batch over the limit", "/agent/batch", {"inputs": [{"task": TASK}] * 9}, 413),
    ("body over 1 MiB", "/agent/invoke", {"input": {"task": "x" * (MIB + 10)}}, 413),
    ("empty code, pep8", "/agents/pep8/invoke", {"input": {"code": "  "}}, 422),
    (
        "code over the limit, complexity",
        "/agents/complexity/invoke",
        {"input": {"code": "x = 1\n" * 20_000}},
        422,
    ),
    ("tests missing, validate", "/agents/validate/invoke", {"input": {"code": GOOD_CODE}}, 422),
    ("task missing, generate", "/agents/generate/invoke", {"input": {"entry_point": "f"}}, 422),
    ("replay without checkpoint", "/threads/t1/replay", {}, 422),
    (
        "batch items sharing one thread",
        "/agent/batch",
        {"inputs": [{"task": TASK}, {"task": TASK}], "config": {"configurable": {"thread_id": "shared-1"}}},
        422,
    ),
]


class TestBadInput:
    @pytest.mark.parametrize(("case", "path", "body", "status"), BAD_INPUT, ids=[row[0] for row in BAD_INPUT])
    def test_bad_input_gets_a_4xx_with_a_message(self, client, case, path, body, status):
        if isinstance(body, bytes):
            response = client.post(path, content=body, headers={"content-type": "application/json"})
        else:
            response = client.post(path, json=body)
        assert response.status_code == status, f"{case}: {response.status_code} {response.text[:300]}"
        assert response.json()["detail"], case

    def test_chunked_body_over_the_limit_is_cut_off(self, client):
        response = client.post(
            "/agent/invoke",
            content=_chunks(MIB + MIB // 2),
            headers={"content-type": "application/json"},
        )
        assert "content-length" not in response.request.headers  # it really was chunked
        assert response.status_code == 413
        assert "limit" in response.json()["detail"]

    def test_chunked_body_under_the_limit_is_accepted(self, client):
        response = client.post("/agents/complexity/invoke", content=iter([b'{"input": {"code": "x = 1"}}']))
        assert response.status_code == 200, response.text

    @pytest.mark.parametrize(
        ("method", "path", "status"),
        [
            ("GET", "/agent/invoke", 405),
            ("GET", "/no/such/route", 404),
            ("GET", "/graph?format=gif", 422),
        ],
    )
    def test_wrong_routes_and_methods(self, client, method, path, status):
        assert client.request(method, path).status_code == status

    def test_the_server_survives_all_of_it(self, server, client):
        assert server.process.poll() is None
        assert client.get("/health").json()["status"] == "ok"
        assert _agent(server).invoke({"task": TASK})["passed"] is True


def test_serve_refuses_a_model_it_cannot_load(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", "serve", "--model", "no-such-model", "--port", "1"],
        capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT,
        env={**os.environ, "STARCODER_AGENTS_HOME": str(tmp_path)},
    )  # fmt: skip
    assert result.returncode == 2
    assert "no-such-model" in result.stderr and "Traceback" not in result.stderr
