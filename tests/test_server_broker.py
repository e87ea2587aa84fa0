"""Runs on workers: an API replica and two workers on the real RabbitMQ, Redis and PostgreSQL.

The clients are the official ones (``RemoteGraph``, ``langgraph_sdk``); the model is
the FAKE one of ``tests/server_app.py`` in every process. Each module run has its own
database and queue (see ``tests/services.py``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from langgraph.pregel.remote import RemoteGraph
from langgraph_sdk import get_sync_client
from langgraph_sdk.errors import APIStatusError

from tests.server_app import SLOW_MARKER, SLOW_REVIEW_MARKER
from tests.services import (
    CLEAN_HISTORY,
    GRAPH,
    Deployment,
    calls,
    deployment,
    history_shape,
    require_services,
    task,
    wait_for,
)

pytestmark = pytest.mark.slow

NODES = ["generate", "validate", "review", "finalize"]


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    require_services()
    workdir = tmp_path_factory.mktemp("broker")
    with deployment(workdir, apis=1, workers=2, env={"STARCODER_TEST_CALL_LOG": str(workdir / "calls.log")}) as found:
        yield found


@pytest.fixture
def url(deployed: Deployment) -> str:
    return f"{deployed.apis[0].url}/lg"


def test_remote_graph_and_sdk_run_on_workers(url: str) -> None:
    remote = RemoteGraph(GRAPH, url=url)
    assert remote.invoke({"task": task()[1]})["passed"] is True
    updates = list(remote.stream({"task": task()[1]}, stream_mode="updates"))
    assert [next(iter(update)) for update in updates] == NODES
    client = get_sync_client(url=url)
    thread_id = client.threads.create()["thread_id"]
    seen: dict[str, int] = {}
    for part in client.runs.stream(thread_id, GRAPH, input={"task": task()[1]}, stream_mode=["values", "messages"]):
        seen[part.event] = seen.get(part.event, 0) + 1
    assert seen["values"] >= len(NODES) and seen["messages/partial"] > 0
    assert history_shape(client, thread_id) == CLEAN_HISTORY


def test_a_runs_settings_travel_with_it_to_its_worker(url: str) -> None:
    client = get_sync_client(url=url)
    # A threshold above the fake review's score (9): a passing run refines until its budget (1) is spent.
    demanding = {"min_score": 10, "max_iterations": 1}
    assert client.runs.wait(None, GRAPH, input={"task": task()[1]})["iterations"] == 1
    configured = client.runs.wait(None, GRAPH, input={"task": task()[1]}, config={"configurable": demanding})
    assert configured["iterations"] == 2
    thread_id = client.threads.create()["thread_id"]
    run = client.runs.create(thread_id, GRAPH, input={"task": task()[1]}, context=demanding)
    assert client.runs.join(thread_id, run["run_id"])["iterations"] == 2
    with pytest.raises(APIStatusError) as refused:  # checked by the API replica; nothing is queued
        client.runs.create(thread_id, GRAPH, input={"task": task()[1]}, context={"max_iterations": 99})
    assert refused.value.response.status_code == 422
    assert len(client.runs.list(thread_id)) == 1


def test_cancel_stops_the_run_on_its_worker(deployed: Deployment, url: str) -> None:
    client = get_sync_client(url=url)
    thread_id = client.threads.create()["thread_id"]
    run = client.runs.create(thread_id, GRAPH, input={"task": task(SLOW_MARKER)[1]})
    wait_for(lambda: client.runs.get(thread_id, run["run_id"])["status"] == "running", "the run to start")
    started = time.monotonic()
    client.runs.cancel(thread_id, run["run_id"], wait=True)
    assert client.runs.get(thread_id, run["run_id"])["status"] == "interrupted"
    assert time.monotonic() - started < 10
    # The thread is free again, on any worker.
    assert client.runs.wait(thread_id, GRAPH, input={"task": task()[1]}, multitask_strategy="reject")["passed"]


def test_reject_enqueue_and_interrupt_hold_across_processes(url: str) -> None:
    client = get_sync_client(url=url)
    thread_id = client.threads.create()["thread_id"]
    first = client.runs.create(thread_id, GRAPH, input={"task": task(SLOW_MARKER)[1]})
    with pytest.raises(APIStatusError) as refused:
        client.runs.create(thread_id, GRAPH, input={"task": task()[1]})
    assert refused.value.response.status_code == 409
    queued = client.runs.create(thread_id, GRAPH, input={"task": task()[1]}, multitask_strategy="enqueue")
    assert client.runs.join(thread_id, queued["run_id"])["passed"] is True
    assert client.runs.get(thread_id, first["run_id"])["status"] == "success"
    slow = client.runs.create(thread_id, GRAPH, input={"task": task(SLOW_MARKER)[1]})
    wait_for(lambda: client.runs.get(thread_id, slow["run_id"])["status"] == "running", "the run to start")
    newer = client.runs.create(thread_id, GRAPH, input={"task": task()[1]}, multitask_strategy="interrupt")
    assert client.runs.join(thread_id, newer["run_id"])["passed"] is True
    assert client.runs.get(thread_id, slow["run_id"])["status"] == "interrupted"


def test_a_killed_worker_loses_nothing_and_redoes_no_finished_node(deployed: Deployment, url: str) -> None:
    client = get_sync_client(url=url)
    tag, text = task(SLOW_REVIEW_MARKER)
    thread_id = client.threads.create()["thread_id"]
    run = client.runs.create(thread_id, GRAPH, input={"task": text})
    wait_for(lambda: calls(deployed, tag)["reviewer"] == 1, "the run to reach its review")
    victim = deployed.worker_holding(run["run_id"])
    assert victim is not None
    victim.kill()  # SIGKILL, mid-review
    assert client.runs.join(thread_id, run["run_id"])["passed"] is True
    assert client.runs.get(thread_id, run["run_id"])["status"] == "success"
    made = calls(deployed, tag)
    assert made["generator"] == 1 and made["tester"] == 1  # finished nodes were not run again
    assert made["reviewer"] == 2  # the one cut off, then the one that finished
    assert history_shape(client, thread_id) == CLEAN_HISTORY
    deployed.workers.pop(victim.name)
    deployed.add_worker(f"{victim.name}-again")
