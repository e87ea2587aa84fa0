"""A request's settings reach the graph's nodes over real HTTP.

LangServe keeps only the ``config.configurable`` keys the served runnable declares; the
graph declares the settings a request may choose (``graph.config.REQUEST_FIELDS``) and
resolves them once per run. The server runs in a subprocess with a FAKE model that
always writes passing code and reviews it at about 9.5 of 10 (see ``tests/server_app.py``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.server_process import ServerProcess, running_server

TASK = "Write add(a, b) that returns the sum of a and b."


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    with running_server(tmp_path_factory.mktemp("server-settings")) as server, server.client() as http:
        yield http


def _invoke(client: httpx.Client, task_input: dict, configurable: dict) -> httpx.Response:
    config = {"configurable": {**configurable, "thread_id": f"settings-{uuid.uuid4().hex[:12]}"}}
    return client.post("/agent/invoke", json={"input": {"task": TASK, **task_input}, "config": config})


def _iterations(client: httpx.Client, task_input: dict, configurable: dict) -> int:
    response = _invoke(client, task_input, configurable)
    assert response.status_code == 200, response.text
    output = response.json()["output"]
    assert output["passed"] is True
    return output["iterations"]


def test_a_configurable_setting_reaches_the_nodes(client):
    assert _iterations(client, {}, {}) == 1  # passing and reviewed above the default 7: done
    # A threshold above the review's score: the passing run refines until its budget is spent.
    assert _iterations(client, {}, {"min_score": 10, "max_iterations": 1}) == 2


def test_the_tasks_own_budget_comes_before_the_requests(client):
    assert _iterations(client, {"max_iterations": 0}, {"min_score": 10, "max_iterations": 2}) == 1


@pytest.mark.parametrize(
    "configurable", [{"min_score": 11}, {"max_iterations": -1}, {"candidates": 100}, {"test_timeout_s": "long"}]
)
def test_a_setting_out_of_bounds_is_a_422(client, configurable):
    response = _invoke(client, {}, configurable)
    assert response.status_code == 422, response.text
    assert next(iter(configurable)) in response.text


def test_a_request_cannot_choose_where_records_are_written(client, tmp_path):
    response = _invoke(client, {}, {"results_dir": str(tmp_path)})
    assert response.status_code == 200, response.text
    assert not list(tmp_path.iterdir())
    assert not response.json()["output"]["result_path"].startswith(str(tmp_path))


def test_the_playground_config_schema_lists_the_settings(client):
    schema = client.get("/agent/config_schema").json()
    configurable = schema["definitions" if "definitions" in schema else "$defs"]["Configurable"]["properties"]
    assert {"min_score", "max_iterations", "thread_id"} <= set(configurable)
    assert "results_dir" not in configurable


_ = ServerProcess  # the fixture's type, for readers
