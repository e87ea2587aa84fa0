"""Faults against the real services: nothing lost, nothing run twice.

Two API replicas and three workers share a fresh database and queue; the broker and
PostgreSQL are reached through :mod:`tests.faultproxy`, so that an outage can be
staged without touching the services other processes on the machine use. Each
scenario sends runs of the FAKE model (``tests/server_app.py``), stages its fault
while they are in flight, and checks every run:

- finished: its record says ``success`` and the thread's values say ``passed``;
- run once: the thread's checkpoints are exactly those of one clean pass (a finished
  node run again would add checkpoints); and, where no node can have been cut off
  half way, the generator was called once for it across all workers. (A node cut off
  before its checkpoint was written — by PostgreSQL going away under it — runs
  again; it never finished.)

With ``STARCODER_FAULT_REPORT`` set, each scenario appends a JSON line there: runs,
finished, duplicates, and the mean and p95 seconds between a run's creation and its
start (queue wait).
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_sync_client
from langgraph_sdk.errors import APIStatusError

from tests.faultproxy import FaultProxy, fault_proxy
from tests.server_app import SLOW_REVIEW_MARKER
from tests.services import (
    CLEAN_HISTORY,
    GRAPH,
    Deployment,
    calls,
    deployment,
    history_shape,
    queue_waits,
    require_services,
    task,
    wait_for,
)

pytestmark = pytest.mark.slow
logger = logging.getLogger(__name__)

RUNS_WITH_A_KILL = 30
RUNS_PER_OUTAGE = 8
OUTAGE_S = 3.0
TRANSIENT = (httpx.TransportError, httpx.HTTPStatusError, APIStatusError)


class Faulty:
    """The deployment and the proxies in front of its broker and database."""

    def __init__(self, deployed: Deployment, broker: FaultProxy, postgres: FaultProxy) -> None:
        self.deployed = deployed
        self.broker = broker
        self.postgres = postgres

    def client(self, index: int) -> Any:
        return get_sync_client(url=f"{self.deployed.apis[index % len(self.deployed.apis)].url}/lg")

    def retrying(self, call: Callable[[Any], Any], timeout_s: float = 120) -> Any:
        """``call(client)`` on one replica, then the other, until it answers (a replica may be restarting)."""
        deadline = time.monotonic() + timeout_s
        attempt = 0
        while True:
            try:
                return call(self.client(attempt))
            except TRANSIENT as exc:
                status = getattr(getattr(exc, "response", None), "status_code", 500)
                if status < 500 or time.monotonic() > deadline:
                    raise
                attempt += 1
                time.sleep(0.5)


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Faulty]:
    require_services()
    workdir = tmp_path_factory.mktemp("faults")
    env = {"STARCODER_TEST_CALL_LOG": str(workdir / "calls.log"), "STARCODER_TEST_SLOW_S": "2"}
    with (
        fault_proxy("127.0.0.1", 5672) as broker,
        fault_proxy("127.0.0.1", 5432) as postgres,
        deployment(
            workdir, apis=2, workers=3, broker_port=broker.port, postgres_port=postgres.port, env=env
        ) as deployed,
    ):
        yield Faulty(deployed, broker, postgres)


def submit(faulty: Faulty, count: int, *, slow: int = 0) -> list[tuple[str, dict[str, Any]]]:
    """Start ``count`` background runs (the first ``slow`` with a slow review), alternating replicas."""
    started = []
    for number in range(count):
        tag, text = task(SLOW_REVIEW_MARKER) if number < slow else task()
        run = faulty.retrying(lambda client, text=text: client.runs.create(None, GRAPH, input={"task": text}))
        started.append((tag, run))
    return started


def check(faulty: Faulty, scenario: str, started: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """Wait for every run; count the finished and the duplicated; report the queue waits."""
    finished, duplicates, generated_again = 0, 0, 0
    for tag, run in started:
        thread_id, run_id = run["thread_id"], run["run_id"]
        values = faulty.retrying(lambda client, t=thread_id, r=run_id: client.runs.join(t, r))
        record = faulty.retrying(lambda client, t=thread_id, r=run_id: client.runs.get(t, r))
        finished += record["status"] == "success" and values.get("passed") is True
        duplicates += faulty.retrying(lambda client, t=thread_id: history_shape(client, t)) != CLEAN_HISTORY
        generated_again += calls(faulty.deployed, tag)["generator"] != 1
    waits = queue_waits(faulty.deployed, [run["run_id"] for _, run in started])
    report = {
        "scenario": scenario,
        "runs": len(started),
        "finished": finished,
        "duplicates": duplicates,
        "generator_called_again": generated_again,
        "queue_wait_mean_s": round(statistics.fmean(waits), 2),
        "queue_wait_p95_s": round(statistics.quantiles(waits, n=20)[-1], 2),
    }
    logger.info("fault scenario: %s", report)
    if path := os.environ.get("STARCODER_FAULT_REPORT"):
        with Path(path).open("a") as out:
            out.write(json.dumps(report) + "\n")
    return report


def test_progress_streams_from_any_replica(faulty: Faulty) -> None:
    sent = faulty.client(0).runs.create(None, GRAPH, input={"task": task()[1]}, stream_mode=["updates"])
    parts = list(faulty.client(1).runs.join_stream(sent["thread_id"], sent["run_id"]))
    updates = [next(iter(part.data)) for part in parts if part.event == "updates"]
    assert updates == ["generate", "validate", "review", "finalize"]


def test_a_worker_killed_and_a_replica_restarted_mid_runs(faulty: Faulty) -> None:
    deployed = faulty.deployed
    started = submit(faulty, RUNS_WITH_A_KILL, slow=3)
    slow_tag, slow_run = started[0]
    # A client following a run through replica 0, which is about to restart.
    follower = threading.Thread(target=_follow_quietly, args=(faulty.client(0), slow_run), daemon=True)
    follower.start()
    wait_for(lambda: calls(deployed, slow_tag)["reviewer"] == 1, "a run to reach its review", timeout_s=120)
    victim = deployed.worker_holding(slow_run["run_id"])
    assert victim is not None
    victim.kill()
    deployed.workers.pop(victim.name)
    deployed.restart_api(0)
    report = check(faulty, "1 of 3 workers SIGKILLed mid-run, 1 of 2 API replicas restarted", started)
    assert report["finished"] == report["runs"] and report["duplicates"] == 0, report
    assert report["generator_called_again"] == 0, report
    deployed.add_worker(f"{victim.name}-again")


def _follow_quietly(client: Any, run: dict[str, Any]) -> None:
    try:
        for _ in client.runs.join_stream(run["thread_id"], run["run_id"]):
            pass
    except Exception:  # the replica it reads from restarts under it: expected
        return


def test_the_broker_connection_drops_for_seconds(faulty: Faulty) -> None:
    first = submit(faulty, RUNS_PER_OUTAGE // 2, slow=1)
    faulty.broker.cut(OUTAGE_S)
    later = submit(faulty, RUNS_PER_OUTAGE // 2)  # published through the outage: the API retries
    report = check(faulty, f"broker connections dropped for {OUTAGE_S:.0f}s", first + later)
    assert report["finished"] == report["runs"] and report["duplicates"] == 0, report
    assert report["generator_called_again"] == 0, report


def test_postgresql_restarts_mid_runs(faulty: Faulty) -> None:
    started = submit(faulty, RUNS_PER_OUTAGE, slow=2)
    slow_tag = started[0][0]
    wait_for(lambda: calls(faulty.deployed, slow_tag)["reviewer"] == 1, "a run to reach its review", timeout_s=120)
    faulty.postgres.cut(OUTAGE_S)  # every connection closed, new ones refused: a restart, seen from the clients
    report = check(faulty, f"PostgreSQL down for {OUTAGE_S:.0f}s (connections cut)", started)
    assert report["finished"] == report["runs"] and report["duplicates"] == 0, report


def test_postgresql_restarts_while_runs_write_checkpoints(faulty: Faulty) -> None:
    # Fast runs only: the cut lands among their checkpoint writes, where a step's writes
    # can be saved and its checkpoint not (tests/test_worker_resume.py has each case).
    started = submit(faulty, RUNS_PER_OUTAGE)
    first_tag = started[0][0]
    wait_for(lambda: calls(faulty.deployed, first_tag)["generator"] == 1, "a run to start", timeout_s=120)
    faulty.postgres.cut(OUTAGE_S)
    report = check(faulty, f"PostgreSQL down for {OUTAGE_S:.0f}s among checkpoint writes", started)
    assert report["finished"] == report["runs"] and report["duplicates"] == 0, report
