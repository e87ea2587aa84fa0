"""The server's protections against a real uvicorn process: the API key and bounded runs.

One server with an API key, one run slot and one queue place: a slow run fills the
slot, a second waits in the queue, a third is refused with 429 at once.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from langserve import RemoteRunnable

from tests.fakes import GOOD_CODE
from tests.server_process import ServerProcess, running_server

API_KEY = "test-key-3f9a"
SLOW_TESTS = """
import time

from solution import add


def test_slowly():
    time.sleep(4)
    assert add(1, 2) == 3
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {
        "STARCODER_MAX_RUNNING": "1",
        "STARCODER_MAX_QUEUED": "1",
        "STARCODER_QUEUE_TIMEOUT_S": "60",
    }
    with running_server(tmp_path_factory.mktemp("limits"), env=env, api_key=API_KEY) as running:
        yield running


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class TestApiKey:
    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("GET", "/health"),
            ("GET", "/stats"),
            ("GET", "/graph"),
            ("GET", "/docs"),
            ("GET", "/openapi.json"),
            ("GET", "/agent/playground/"),
            ("GET", "/agent/input_schema"),
            ("POST", "/agent/invoke"),
            ("POST", "/agents/pep8/invoke"),
            ("GET", "/threads/t/state"),
        ],
    )
    def test_every_route_needs_the_key(self, server, method, path):
        response = httpx.request(method, server.url + path, json={"input": {"task": "x"}}, timeout=30)
        assert response.status_code == 401
        assert "API key" in response.json()["detail"]
        assert response.headers["www-authenticate"].startswith("Basic")

    @pytest.mark.parametrize(
        "headers",
        [
            {"X-API-Key": "wrong"},
            {"Authorization": "Bearer wrong"},
            {"Authorization": _basic("api", "wrong")},
            {"Authorization": "Basic !!!not-base64"},
            {"Authorization": API_KEY},  # no scheme
        ],
        ids=["x-api-key", "bearer", "basic", "basic-garbage", "no-scheme"],
    )
    def test_a_wrong_key_is_refused(self, server, headers):
        assert httpx.get(f"{server.url}/health", headers=headers, timeout=30).status_code == 401

    @pytest.mark.parametrize(
        "headers",
        [
            {"X-API-Key": API_KEY},
            {"Authorization": f"Bearer {API_KEY}"},
            {"Authorization": _basic("api", API_KEY)},
        ],
        ids=["x-api-key", "bearer", "basic"],
    )
    def test_the_right_key_opens_every_route(self, server, headers):
        assert httpx.get(f"{server.url}/health", headers=headers, timeout=30).status_code == 200
        assert httpx.get(f"{server.url}/agent/playground/", headers=headers, timeout=30).status_code == 200

    def test_remote_runnable_with_the_key(self, server):
        remote = RemoteRunnable(f"{server.url}/agents/complexity/", headers={"X-API-Key": API_KEY})
        assert remote.invoke({"code": GOOD_CODE})["max_complexity"] == 1


def _wait_for(client: httpx.Client, key: str, value: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if client.get("/health").json()[key] == value:
            return
        time.sleep(0.1)
    raise AssertionError(f"/health never showed {key} == {value}")


class TestBoundedRuns:
    def test_one_runs_one_waits_the_rest_get_429(self, server):
        slow = {"input": {"code": GOOD_CODE, "tests": SLOW_TESTS}}
        quick = {"input": {"code": GOOD_CODE}}
        with server.client() as client, ThreadPoolExecutor(2) as pool:
            running = pool.submit(client.post, "/agents/validate/invoke", json=slow)
            _wait_for(client, "runs_running", 1)
            queued = pool.submit(client.post, "/agents/complexity/invoke", json=quick)
            _wait_for(client, "runs_queued", 1)

            refused = client.post("/agents/complexity/invoke", json=quick)
            assert refused.status_code == 429
            assert refused.headers["retry-after"] and "busy" in refused.json()["detail"]
            # Reading is never limited, only runs.
            assert client.get("/stats").status_code == 200

            assert running.result().status_code == 200
            assert running.result().json()["output"]["passed"] is True
            assert queued.result().status_code == 200
        with server.client() as client:
            _wait_for(client, "runs_running", 0)
            assert client.post("/agents/complexity/invoke", json=quick).status_code == 200

    def test_a_client_that_leaves_the_queue_gives_up_its_run(self, server):
        slow = {"input": {"code": GOOD_CODE, "tests": SLOW_TESTS}}
        with server.client() as client, ThreadPoolExecutor(1) as pool:
            _wait_for(client, "runs_running", 0)
            before = client.get("/health").json()["runs_abandoned"]
            calls_before = client.get("/stats").json()["agent_calls"].get("validate", 0)
            running = pool.submit(client.post, "/agents/validate/invoke", json=slow)
            _wait_for(client, "runs_running", 1)
            with httpx.Client(base_url=server.url, headers=server.headers, timeout=1) as impatient:
                with pytest.raises(httpx.ReadTimeout):
                    impatient.post("/agents/validate/invoke", json=slow)
            _wait_for(client, "runs_abandoned", before + 1)
            assert client.get("/health").json()["runs_queued"] == 0
            assert running.result().status_code == 200
            # The slot came free and nobody was waiting: the abandoned run never started.
            time.sleep(1)
            health = client.get("/health").json()
            assert health["runs_running"] == 0
            assert client.get("/stats").json()["agent_calls"]["validate"] == calls_before + 1
