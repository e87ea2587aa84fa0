"""Two server replicas sharing one PostgreSQL checkpointer (a real local PostgreSQL).

Each test module run creates a database of its own and drops it afterwards. Skipped
when no PostgreSQL answers (see :func:`tests.services.fresh_database`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from langserve import RemoteRunnable

from tests.server_process import ServerProcess, running_server
from tests.services import fresh_database

TASK = "Write add(a, b) that returns the sum of a and b."


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    with fresh_database() as url:
        yield url


@pytest.fixture(scope="module")
def replicas(
    tmp_path_factory: pytest.TempPathFactory, database_url: str
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    env = {"STARCODER_TEST_CHECKPOINTER": database_url.replace("postgresql://", "postgres://", 1)}
    with (
        running_server(tmp_path_factory.mktemp("replica-a"), env=env) as first,
        running_server(tmp_path_factory.mktemp("replica-b"), env=env) as second,
    ):
        yield first, second


def test_a_thread_run_on_one_replica_is_read_and_resumed_on_the_other(replicas, database_url):
    import httpx
    import psycopg

    first, second = replicas
    assert httpx.get(f"{first.url}/health").json()["checkpointer"] == "postgres"
    thread_id = f"pg-{uuid.uuid4().hex[:12]}"
    output = RemoteRunnable(f"{first.url}/agent/").invoke(
        {"task": TASK}, config={"configurable": {"thread_id": thread_id}}
    )
    assert output["passed"] is True

    state = httpx.get(f"{second.url}/threads/{thread_id}/state").json()
    assert state["finished"] is True and state["values"]["code"] == output["code"]
    history = httpx.get(f"{second.url}/threads/{thread_id}/history").json()
    assert len(history) >= 5

    # The other replica continues the same thread.
    before_review = next(c for c in history if c["next"] == ["review"])
    replayed = httpx.post(
        f"{second.url}/threads/{thread_id}/replay",
        json={"checkpoint_id": before_review["checkpoint_id"]},
        timeout=120,
    )
    assert replayed.status_code == 200 and replayed.json()["output"]["passed"] is True
    assert len(httpx.get(f"{first.url}/threads/{thread_id}/history").json()) > len(history)

    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT count(*) FROM checkpoints WHERE thread_id = %s", (thread_id,)).fetchone()
    assert rows is not None and rows[0] > len(history)
