"""The LangGraph Server API under ``/lg``, driven by the official clients against a real uvicorn process.

``RemoteGraph`` and ``langgraph_sdk`` talk to the embedded server (no broker: runs
execute in the server process) with a FAKE model that always answers well (see
``tests/server_app.py``); the sandbox and the SQLite checkpointer are real. Bad input
is sent by hand where the clients would refuse to send it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from langgraph.pregel.remote import RemoteGraph
from langgraph_sdk import get_client, get_sync_client
from langgraph_sdk.errors import APIStatusError

from tests.server_app import FAIL_ONCE_MARKER, SLOW_MARKER
from tests.server_process import ServerProcess, running_server

TASK = "Write add(a, b) that returns the sum of a and b."
SLOW_TASK = f"{TASK} {SLOW_MARKER}"
GRAPH = "starcoder-agents"
NODES = ["generate", "validate", "review", "finalize"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    workdir = tmp_path_factory.mktemp("lgapi")
    env = {"STARCODER_TEST_CHECKPOINTER": str(workdir / "checkpoints.sqlite")}
    with running_server(workdir, env=env) as running:
        yield running


@pytest.fixture
def url(server: ServerProcess) -> str:
    return f"{server.url}/lg"


def _thread() -> dict[str, Any]:
    return {"configurable": {"thread_id": f"lg-{uuid.uuid4().hex[:12]}"}}


# The clients raise their own error type, or httpx's for calls that may reconnect (join, wait).
HTTP_ERRORS = (APIStatusError, httpx.HTTPStatusError)


def _status(exc: pytest.ExceptionInfo[Exception]) -> int:
    return int(exc.value.response.status_code)  # type: ignore[attr-defined]


def test_remote_graph_invoke_returns_tested_code(url: str) -> None:
    result = RemoteGraph(GRAPH, url=url).invoke({"task": TASK})
    assert result["passed"] is True
    assert "def add" in result["code"]


def test_remote_graph_streams_node_by_node_and_reads_the_thread(url: str) -> None:
    remote = RemoteGraph(GRAPH, url=url)
    config = _thread()
    chunks = list(remote.stream({"task": TASK}, config=config, stream_mode="updates"))
    assert [next(iter(chunk)) for chunk in chunks] == NODES
    state = remote.get_state(config)
    assert state.next == () and state.values["passed"] is True
    history = list(remote.get_state_history(config))
    assert len(history) >= len(NODES) + 1
    assert history[0].config["configurable"]["checkpoint_id"] == state.config["configurable"]["checkpoint_id"]
    tokens = list(remote.stream({"task": TASK}, config=_thread(), stream_mode="messages"))
    assert tokens and all(len(item) == 2 for item in tokens)  # (message chunk, metadata)
    assert {meta["langgraph_node"] for _, meta in tokens} >= {"generate", "review"}


def test_sdk_streams_values_updates_and_messages(url: str) -> None:
    async def stream() -> dict[str, list[Any]]:
        client = get_client(url=url)
        try:
            thread = await client.threads.create()
            seen: dict[str, list[Any]] = {}
            async for part in client.runs.stream(
                thread["thread_id"], GRAPH, input={"task": TASK}, stream_mode=["values", "updates", "messages"]
            ):
                seen.setdefault(part.event, []).append(part.data)
            return seen
        finally:
            await client.http.client.aclose()

    seen = asyncio.run(stream())
    assert "run_id" in seen["metadata"][0]
    assert [next(iter(update)) for update in seen["updates"]] == NODES
    assert seen["values"][-1]["passed"] is True
    assert seen["messages/partial"] and seen["messages/metadata"]
    assert "error" not in seen


def test_background_run_join_get_list_and_wait(url: str) -> None:
    client = get_sync_client(url=url)
    thread = client.threads.create(metadata={"owner": "test"})
    run = client.runs.create(thread["thread_id"], GRAPH, input={"task": TASK})
    assert run["status"] in ("pending", "running")
    values = client.runs.join(thread["thread_id"], run["run_id"])
    assert values["passed"] is True
    assert client.runs.get(thread["thread_id"], run["run_id"])["status"] == "success"
    assert [r["run_id"] for r in client.runs.list(thread["thread_id"])] == [run["run_id"]]
    again = client.runs.wait(thread["thread_id"], GRAPH, input={"task": TASK})
    assert again["passed"] is True
    assert len(client.runs.list(thread["thread_id"])) == 2
    got = client.threads.get(thread["thread_id"])
    assert got["status"] == "idle" and got["metadata"] == {"owner": "test"}
    assert client.threads.get_state(thread["thread_id"])["values"]["passed"] is True
    assert len(client.threads.get_history(thread["thread_id"], limit=3)) == 3
    assert client.assistants.get(GRAPH)["graph_id"] == GRAPH
    assert [a["graph_id"] for a in client.assistants.search()] == [GRAPH]


# A threshold above the fake review's score (9): a passing run refines until its budget (1) is spent.
DEMANDING = {"min_score": 10, "max_iterations": 1}


def test_a_runs_settings_reach_the_nodes_as_on_agent(url: str, tmp_path: Any) -> None:
    client = get_sync_client(url=url)
    task = {"task": TASK}
    assert client.runs.wait(None, GRAPH, input=task)["iterations"] == 1  # reviewed above the default 7: done
    configured = client.runs.wait(None, GRAPH, input=task, config={"configurable": DEMANDING})
    assert configured["passed"] is True and configured["iterations"] == 2
    assert client.runs.wait(None, GRAPH, input=task, context=DEMANDING)["iterations"] == 2
    # The context's choice wins over the config's; the task's own budget over both.
    mixed = client.runs.wait(None, GRAPH, input=task, config={"configurable": DEMANDING}, context={"min_score": 5})
    assert mixed["iterations"] == 1
    assert client.runs.wait(None, GRAPH, input={**task, "max_iterations": 0}, context=DEMANDING)["iterations"] == 1
    # A background run, joined; and RemoteGraph, with either.
    thread_id = client.threads.create()["thread_id"]
    run = client.runs.create(thread_id, GRAPH, input=task, config={"configurable": DEMANDING})
    assert client.runs.join(thread_id, run["run_id"])["iterations"] == 2
    remote = RemoteGraph(GRAPH, url=url)
    assert remote.invoke(task, config={"configurable": {**DEMANDING, "thread_id": thread_id}})["iterations"] == 2
    assert remote.invoke(task, context=DEMANDING)["iterations"] == 2
    # Where records go, and which thread a run is on, stay the server's to choose.
    other = f"lg-{uuid.uuid4().hex[:12]}"
    configurable = {"results_dir": str(tmp_path), "thread_id": other, "checkpoint_id": "made-up"}
    values = client.runs.wait(thread_id, GRAPH, input=task, config={"configurable": configurable})
    assert values["passed"] is True and not values["result_path"].startswith(str(tmp_path))
    assert not list(tmp_path.iterdir())
    assert len(client.runs.list(thread_id)) == 3  # all on the thread the path names
    with pytest.raises(HTTP_ERRORS) as missing:
        client.threads.get(other)
    assert _status(missing) == 404


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"config": {"configurable": {"min_score": 11}}}, "min_score"),
        ({"config": {"configurable": {"max_iterations": 99}}}, "max_iterations"),
        ({"config": {"configurable": {"test_timeout_s": "long"}}}, "test_timeout_s"),
        ({"config": {"configurable": ["min_score"]}}, "config.configurable"),
        ({"context": {"min_score": 11}}, "min_score"),
        ({"context": {"candidates": 0}}, "candidates"),
        ({"context": {"review_failing": "yes"}}, "review_failing"),
        ({"context": {"results_dir": "/tmp/elsewhere"}}, "results_dir"),
    ],
)
def test_a_setting_out_of_bounds_is_a_422_before_any_run(server: ServerProcess, settings: dict, named: str) -> None:
    with server.client() as http:
        thread_id = http.post("/lg/threads", json={}).json()["thread_id"]
        for path in (f"/lg/threads/{thread_id}/runs", f"/lg/threads/{thread_id}/runs/wait", "/lg/runs/stream"):
            answer = http.post(path, json={"assistant_id": GRAPH, "input": {"task": TASK}, **settings})
            assert answer.status_code == 422, (path, answer.text)
            assert named in answer.json()["detail"]
        assert http.get(f"/lg/threads/{thread_id}/runs").json() == []


def test_the_sdk_sees_a_bad_setting_as_a_422(url: str) -> None:
    client = get_sync_client(url=url)
    with pytest.raises(HTTP_ERRORS) as refused:
        client.runs.create(None, GRAPH, input={"task": TASK}, config={"configurable": {"max_iterations": 99}})
    assert _status(refused) == 422
    with pytest.raises(HTTP_ERRORS) as refused:
        RemoteGraph(GRAPH, url=url).invoke({"task": TASK}, context={"min_score": 11})
    assert _status(refused) == 422


def test_a_failed_run_reports_its_error_and_can_continue(url: str) -> None:
    client = get_sync_client(url=url)
    thread = client.threads.create()
    task = {"task": f"{TASK} {FAIL_ONCE_MARKER} {uuid.uuid4().hex}"}
    events = [p.event for p in client.runs.stream(thread["thread_id"], GRAPH, input=task, stream_mode="updates")]
    assert events[-1] == "error"
    assert client.threads.get(thread["thread_id"])["status"] == "error"
    assert client.threads.get_state(thread["thread_id"])["next"] == ["review"]
    # No input: the thread continues from its last checkpoint.
    assert client.runs.wait(thread["thread_id"], GRAPH, input=None)["passed"] is True


def test_cancel_stops_a_running_run(url: str) -> None:
    client = get_sync_client(url=url)
    thread = client.threads.create()
    run = client.runs.create(thread["thread_id"], GRAPH, input={"task": SLOW_TASK})
    _wait_for_status(client, thread["thread_id"], run["run_id"], "running")
    client.runs.cancel(thread["thread_id"], run["run_id"], wait=True)
    assert client.runs.get(thread["thread_id"], run["run_id"])["status"] == "interrupted"
    assert client.threads.get(thread["thread_id"])["status"] != "busy"


def _wait_for_status(client: Any, thread_id: str, run_id: str, status: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while client.runs.get(thread_id, run_id)["status"] != status:
        assert time.monotonic() < deadline, f"run {run_id} never reached {status}"
        time.sleep(0.1)


def test_multitask_strategies_on_a_busy_thread(url: str) -> None:
    client = get_sync_client(url=url)
    thread_id = client.threads.create()["thread_id"]
    first = client.runs.create(thread_id, GRAPH, input={"task": SLOW_TASK})
    with pytest.raises(HTTP_ERRORS) as refused:  # reject, the default
        client.runs.create(thread_id, GRAPH, input={"task": TASK})
    assert _status(refused) == 409
    queued = client.runs.create(thread_id, GRAPH, input={"task": TASK}, multitask_strategy="enqueue")
    assert client.runs.join(thread_id, queued["run_id"])["passed"] is True
    runs = {r["run_id"]: r for r in client.runs.list(thread_id)}
    assert runs[first["run_id"]]["status"] == "success"  # enqueue waited for it
    assert runs[first["run_id"]]["updated_at"] <= runs[queued["run_id"]]["updated_at"]

    slow = client.runs.create(thread_id, GRAPH, input={"task": SLOW_TASK})
    _wait_for_status(client, thread_id, slow["run_id"], "running")
    newer = client.runs.create(thread_id, GRAPH, input={"task": TASK}, multitask_strategy="interrupt")
    assert client.runs.join(thread_id, newer["run_id"])["passed"] is True
    assert client.runs.get(thread_id, slow["run_id"])["status"] == "interrupted"


def test_agent_and_lg_runs_share_one_claim_per_thread(server: ServerProcess, url: str) -> None:
    client = get_sync_client(url=url)
    thread_id = client.threads.create()["thread_id"]
    slow = client.runs.create(thread_id, GRAPH, input={"task": SLOW_TASK})
    _wait_for_status(client, thread_id, slow["run_id"], "running")
    with server.client() as http:
        config = {"configurable": {"thread_id": thread_id}}
        refused = http.post("/agent/invoke", json={"input": {"task": TASK}, "config": config})
        assert refused.status_code == 409 and "in progress" in refused.json()["detail"]
        assert http.post(f"/threads/{thread_id}/resume").status_code == 409
    assert client.runs.join(thread_id, slow["run_id"])["passed"] is True

    # A thread held by /agent cannot be queued behind or interrupted from /lg.
    held = client.threads.create()["thread_id"]
    body = {"input": {"task": SLOW_TASK}, "config": {"configurable": {"thread_id": held}}}
    with ThreadPoolExecutor(1) as pool, server.client() as http, server.client() as other:
        first = pool.submit(other.post, "/agent/invoke", json=body)
        deadline = time.monotonic() + 30
        while not client.threads.get_state(held)["next"]:  # the /agent run has started
            assert time.monotonic() < deadline, "the /agent run never started"
            time.sleep(0.05)
        for strategy in ("reject", "enqueue", "interrupt"):
            answer = http.post(
                f"/lg/threads/{held}/runs",
                json={"assistant_id": GRAPH, "input": {"task": TASK}, "multitask_strategy": strategy},
            )
            assert answer.status_code == 409, (strategy, answer.text)
        assert first.result().status_code == 200, first.result().text


def test_unknown_things_are_404(url: str) -> None:
    client = get_sync_client(url=url)
    missing = uuid.uuid4().hex
    thread_id = client.threads.create()["thread_id"]
    for call in (
        lambda: client.threads.get(missing),
        lambda: client.threads.get_state(missing),
        lambda: client.runs.get(thread_id, missing),
        lambda: client.runs.join(thread_id, missing),
        lambda: client.runs.cancel(thread_id, missing),
        lambda: client.assistants.get("no-such-graph"),
        lambda: client.runs.create(missing, GRAPH, input={"task": TASK}),
        lambda: client.runs.create(thread_id, "no-such-graph", input={"task": TASK}),
    ):
        with pytest.raises(HTTP_ERRORS) as error:
            call()
        assert _status(error) == 404
    # A thread the client names is made when it asks for that.
    made = client.runs.wait(missing, GRAPH, input={"task": TASK}, if_not_exists="create")
    assert made["passed"] is True


def test_bad_bodies_are_422_or_413(server: ServerProcess) -> None:
    with server.client() as http:
        thread_id = http.post("/lg/threads", json={}).json()["thread_id"]
        runs = f"/lg/threads/{thread_id}/runs"
        bad = [
            http.post(runs, content=b"{not json", headers={"content-type": "application/json"}),
            http.post(runs, json={"assistant_id": GRAPH, "input": {"task": ""}}),
            http.post(runs, json={"assistant_id": GRAPH, "input": {"task": TASK, "nope": 1}}),
            http.post(runs, json={"assistant_id": GRAPH, "input": {"task": TASK}, "stream_mode": "events"}),
            http.post(runs, json={"assistant_id": GRAPH, "input": {"task": TASK}, "multitask_strategy": "rollback"}),
            http.post(runs, json={"assistant_id": GRAPH, "input": {"task": TASK}, "webhook": "http://x"}),
            http.post(runs, json={"assistant_id": GRAPH, "input": {"task": TASK, "model": "other"}}),
            http.post(runs, json={"assistant_id": GRAPH, "input": None}),  # nothing to continue
            http.post(runs, json={"input": {"task": TASK}}),
        ]
        assert [r.status_code for r in bad] == [422] * len(bad), [r.text for r in bad]
        huge = http.post(runs, json={"assistant_id": GRAPH, "input": {"task": "x" * (2 * 1024 * 1024)}})
        assert huge.status_code == 413
        assert http.get(f"/lg/threads/{thread_id}/runs").json() == []


def test_a_stream_whose_client_leaves_cancels_its_run(server: ServerProcess) -> None:
    client = get_sync_client(url=f"{server.url}/lg")
    thread_id = client.threads.create()["thread_id"]
    body = {"assistant_id": GRAPH, "input": {"task": SLOW_TASK}, "stream_mode": "updates"}
    with server.client() as http, http.stream("POST", f"/lg/threads/{thread_id}/runs/stream", json=body) as stream:
        assert next(stream.iter_lines()).startswith("event: metadata")
    run = client.runs.list(thread_id)[0]
    _wait_for_status(client, thread_id, run["run_id"], "interrupted")


def test_the_api_key_and_the_run_slots_apply(tmp_path_factory: pytest.TempPathFactory) -> None:
    limits = {"STARCODER_MAX_RUNNING": "1", "STARCODER_MAX_QUEUED": "0"}
    with running_server(tmp_path_factory.mktemp("lgkey"), api_key="lg-secret", env=limits) as keyed:
        url = f"{keyed.url}/lg"
        with pytest.raises(HTTP_ERRORS) as refused:
            get_sync_client(url=url, api_key=None).assistants.search()
        assert _status(refused) == 401
        assert httpx.post(f"{url}/runs/wait", json={"assistant_id": GRAPH}).status_code == 401
        client = get_sync_client(url=url, api_key="lg-secret")
        assert client.runs.wait(None, GRAPH, input={"task": TASK})["passed"] is True
        remote = RemoteGraph(GRAPH, url=url, api_key="lg-secret")
        assert remote.invoke({"task": TASK})["passed"] is True
        # One run slot, no queue: a run on another thread while one runs is a 429.
        busy = client.runs.create(None, GRAPH, input={"task": SLOW_TASK})
        with pytest.raises(HTTP_ERRORS) as full:
            client.runs.create(None, GRAPH, input={"task": TASK})
        assert _status(full) == 429
        assert client.runs.join(busy["thread_id"], busy["run_id"])["passed"] is True
