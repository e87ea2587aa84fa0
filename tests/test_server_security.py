"""Fail closed: no open server on a public address, per-client rate limits, bounded batches.

The refusal is checked on the real command line, run as a user runs it; the rest
against a real uvicorn process serving the real app with the FAKE model
(:mod:`tests.server_app`). The "insecure" server is told it serves ``0.0.0.0`` but
binds loopback, so that a test never exposes a server that runs posted code.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from service.exposure import InsecureServerError, check_exposure, is_loopback
from service.ratelimit import ClientBuckets
from tests.fakes import GOOD_CODE
from tests.server_process import PROJECT_ROOT, ServerProcess, running_server

KEYS = ("alpha-key", "beta-key", "gamma-key", "delta-key", "epsilon-key")
QUICK_RUN = {"input": {"code": GOOD_CODE}}
# Each test records when it ran, in its failure message, so overlaps can be measured.
TIMED_TESTS = """
import time

from solution import add


def test_timed():
    started = time.time()
    time.sleep(2)
    assert add(1, 2) == 3
    raise AssertionError(f"WINDOW {started:.3f} {time.time():.3f}")
"""
# Modules whose import would mean the command went on to serve or load a model.
HEAVY_MODULES = ("server", "llms", "langserve", "uvicorn", "torch", "transformers", "llama_cpp")


class TestLoopback:
    @pytest.mark.parametrize("host", ["127.0.0.1", "127.9.8.7", "::1", "[::1]", "localhost", "::ffff:127.0.0.1"])
    def test_loopback_addresses(self, host):
        assert is_loopback(host)

    @pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "10.1.2.3", "192.168.0.5", "myhost.example"])
    def test_every_other_address_is_public(self, host):
        assert not is_loopback(host)
        with pytest.raises(InsecureServerError, match="STARCODER_API_KEY.*--insecure"):
            check_exposure(host, api_key_set=False)

    def test_a_key_or_insecure_opens_a_public_address(self):
        assert check_exposure("0.0.0.0", api_key_set=True).auth == "api key"
        insecure = check_exposure("::", api_key_set=False, insecure=True)
        assert insecure.insecure and insecure.auth == "none (insecure, public address)"
        assert not check_exposure("127.0.0.1", api_key_set=False).insecure

    def test_create_app_refuses_an_open_public_server(self):
        from server import create_app
        from tests.server_app import FakeServingModels

        with pytest.raises(InsecureServerError):
            create_app(FakeServingModels(), host="0.0.0.0", api_keys=())


def _serve_command(*args: str, env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run ``starcoder-agents serve ARGS`` (with ``-X importtime``); return it and its seconds."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "cli.main", "serve", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done, time.perf_counter() - started


def _imported(stderr: str) -> set[str]:
    """The top-level packages ``-X importtime`` reported importing."""
    names = re.findall(r"^import time:[^|]*\|[^|]*\|\s*([\w.]+)", stderr, flags=re.MULTILINE)
    return {name.split(".")[0] for name in names}


class TestRefusalToStart:
    @pytest.mark.parametrize("host", ["0.0.0.0", "::"])
    def test_a_public_address_without_a_key_exits_2_before_loading_anything(self, host, tmp_path):
        env = {k: v for k, v in os.environ.items() if k != "STARCODER_API_KEY"}
        env["STARCODER_AGENTS_HOME"] = str(tmp_path)
        done, seconds = _serve_command("--host", host, "--port", "1", env=env)
        message = "\n".join(line for line in done.stderr.splitlines() if not line.startswith("import time:"))
        assert done.returncode == 2, message
        assert "refusing to serve" in message and host in message
        assert "STARCODER_API_KEY" in message and "--insecure" in message
        assert not set(HEAVY_MODULES) & _imported(done.stderr), message
        assert seconds < 60

    @pytest.mark.parametrize(
        ("argv", "key"),
        [(["--insecure"], ""), ([], "a-key")],
        ids=["insecure", "with-key"],
    )
    def test_insecure_or_a_key_lets_it_start(self, argv, key, monkeypatch):
        import server
        from cli.main import main

        calls: list[dict[str, object]] = []
        monkeypatch.setattr(server, "serve", lambda **kwargs: calls.append(kwargs))
        monkeypatch.setenv("STARCODER_API_KEY", key)
        assert main(["serve", "--host", "0.0.0.0", *argv]) == 0
        assert calls and calls[0]["host"] == "0.0.0.0"
        assert calls[0]["insecure"] is bool(argv)


class TestTokenBucket:
    def test_burst_then_rate(self):
        now = [0.0]
        buckets = ClientBuckets(per_minute=6, burst=3, clock=lambda: now[0])
        assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
        assert buckets.take("a") == pytest.approx(10.0)
        assert buckets.take("b") == 0.0  # another client, another bucket
        now[0] = 10.0
        assert buckets.take("a") == 0.0

    def test_idle_clients_are_forgotten(self):
        buckets = ClientBuckets(per_minute=6, burst=1, max_clients=2)
        for client in ("a", "b", "c"):
            buckets.take(client)
        assert buckets.take("a") == 0.0  # "a" was dropped, so it starts full again


def _retry_after(response: httpx.Response) -> int:
    assert response.status_code == 429, response.text
    value = response.headers["retry-after"]
    assert value.isdigit(), value
    return int(value)


def _started(
    factory: pytest.TempPathFactory, name: str, env: dict[str, str], api_key: str | None = None
) -> Iterator[ServerProcess]:
    """A fake-model server that allows 6 runs a minute per client, after a burst ``env`` sets."""
    with running_server(factory.mktemp(name), env={"STARCODER_RATE_PER_MINUTE": "6", **env}, api_key=api_key) as server:
        yield server


@pytest.fixture(scope="module")
def insecure_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {"STARCODER_TEST_HOST": "0.0.0.0", "STARCODER_TEST_INSECURE": "1", "STARCODER_RATE_BURST": "2"}
    yield from _started(tmp_path_factory, "insecure", env)


class TestInsecureServer:
    def test_health_says_it_is_insecure(self, insecure_server):
        health = httpx.get(f"{insecure_server.url}/health", timeout=30).json()
        assert health["auth"] == "none (insecure, public address)"
        assert health["insecure"] is True
        assert "INSECURE" in insecure_server.log_tail(20000)

    def test_without_keys_each_address_has_a_bucket(self, insecure_server):
        with insecure_server.client() as client:
            for _ in range(2):
                assert client.post("/agents/complexity/invoke", json=QUICK_RUN).status_code == 200
            refused = client.post("/agents/complexity/invoke", json=QUICK_RUN)
            assert 1 <= _retry_after(refused) <= 10
            assert "address 127.0.0.1" in refused.json()["detail"]
            # Reading stays unlimited.
            for _ in range(5):
                assert client.get("/health").status_code == 200
            assert client.get("/health").json()["runs_rate_limited"] >= 1


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    # The sandbox's own gate is opened wide, so that only the batch cap can hold items back.
    env = {
        "STARCODER_RATE_BURST": "3",
        "STARCODER_MAX_RUNNING": "2",
        "STARCODER_MAX_QUEUED": "0",
        "STARCODER_SANDBOX_MAX_CONCURRENT": "8",
    }
    yield from _started(tmp_path_factory, "keyed", env, api_key=",".join(KEYS))


def _client(server: ServerProcess, key: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"X-API-Key": key}, timeout=120)


def _windows(batch_output: list[dict]) -> list[tuple[float, float]]:
    windows = []
    for report in batch_output:
        messages = " ".join(failure["message"] for failure in report["failures"])
        found = re.search(r"WINDOW (\d+\.\d+) (\d+\.\d+)", messages)
        assert found, f"no WINDOW in the report: {report}"
        windows.append((float(found[1]), float(found[2])))
    return windows


def _most_at_once(windows: list[tuple[float, float]]) -> int:
    edges = sorted([(start, 1) for start, _ in windows] + [(end, -1) for _, end in windows])
    running = most = 0
    for _, step in edges:
        running += step
        most = max(most, running)
    return most


def _wait_for_running(client: httpx.Client, count: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while client.get("/health").json()["runs_running"] != count:
        assert time.monotonic() < deadline, f"/health never showed {count} runs running"
        time.sleep(0.1)


class TestKeyedServer:
    def test_health_says_a_key_is_needed(self, keyed_server):
        with _client(keyed_server, KEYS[0]) as client:
            health = client.get("/health").json()
        assert health["auth"] == "api key" and health["insecure"] is False

    def test_429_with_retry_after_after_the_burst_and_a_bucket_per_key(self, keyed_server):
        with _client(keyed_server, KEYS[0]) as alpha, _client(keyed_server, KEYS[1]) as beta:
            for _ in range(3):
                assert alpha.post("/agents/complexity/invoke", json=QUICK_RUN).status_code == 200
            refused = alpha.post("/agents/complexity/invoke", json=QUICK_RUN)
            assert 1 <= _retry_after(refused) <= 10
            assert "key #1" in refused.json()["detail"] and "6 a minute" in refused.json()["detail"]
            assert alpha.post("/agent/invoke", json={"input": {"task": "x"}}).status_code == 429
            assert alpha.get("/health").status_code == 200
            # Another key has a bucket of its own.
            assert beta.post("/agents/complexity/invoke", json=QUICK_RUN).status_code == 200

    def test_a_batch_runs_at_most_max_running_items_and_the_rest_get_429(self, keyed_server):
        batch = {"inputs": [{"code": GOOD_CODE, "tests": TIMED_TESTS}] * 4}
        with (
            _client(keyed_server, KEYS[2]) as gamma,
            _client(keyed_server, KEYS[3]) as delta,
            _client(keyed_server, KEYS[4]) as epsilon,
            ThreadPoolExecutor(2) as pool,
        ):
            _wait_for_running(gamma, 0)
            first = pool.submit(gamma.post, "/agents/validate/batch", json=batch)
            _wait_for_running(gamma, 1)
            second = pool.submit(delta.post, "/agents/coverage/batch", json=batch)
            _wait_for_running(gamma, 2)
            # Both run slots are held and no queue place is allowed: refused at once.
            refused = epsilon.post("/agents/review/batch", json={"inputs": [{"code": GOOD_CODE, "ask_model": False}]})
            assert refused.status_code == 429 and "busy" in refused.json()["detail"]
            first_output = first.result().json()["output"]
            assert first.result().status_code == 200 and len(first_output) == 4
            assert second.result().status_code == 200
        assert _most_at_once(_windows(first_output)) <= 2
