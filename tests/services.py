"""Real services for the broker tests: a fresh PostgreSQL database, a queue of its own, workers.

Also the checks those tests share (and ``benchmarks.broker_throughput`` uses): tasks
tagged for the fake model's call log, the shape of a clean run's checkpoints, queue waits.

PostgreSQL (127.0.0.1:5432), Redis (127.0.0.1:6379) and RabbitMQ (127.0.0.1:5672)
run on the test machines. Each test module gets a database and a queue name of its
own (the queue name also prefixes its Redis keys), so runs of the suite in parallel
never meet; the database and the queue are removed afterwards.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.server_process import PROJECT_ROOT, ServerProcess, running_server

__all__ = [
    "AMQP_URL",
    "CLEAN_HISTORY",
    "GRAPH",
    "Deployment",
    "calls",
    "deployment",
    "history_shape",
    "queue_waits",
    "task",
    "wait_for",
    "POSTGRES_ADMIN_URL",
    "REDIS_URL",
    "WorkerProcess",
    "broker_env",
    "fresh_database",
    "require_services",
    "running_worker",
]

POSTGRES_ADMIN_URL = os.environ.get("STARCODER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
AMQP_URL = os.environ.get("STARCODER_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672//")
REDIS_URL = os.environ.get("STARCODER_TEST_REDIS", "redis://127.0.0.1:6379/0")


def _reachable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


def require_services() -> None:
    """Skip (saying which) when PostgreSQL, Redis or RabbitMQ is not running here."""
    services = (("PostgreSQL", 5432), ("Redis", 6379), ("RabbitMQ", 5672))
    missing = [name for name, port in services if not _reachable(port)]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} on loopback")


@contextmanager
def fresh_database() -> Iterator[str]:
    """A new, empty database for the block; its URL. Dropped afterwards.

    Skips the test (saying why) when no PostgreSQL answers at ``POSTGRES_ADMIN_URL``.
    """
    name = f"starcoder_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL at {POSTGRES_ADMIN_URL}: {exc}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def delete_queue(queue: str, amqp_url: str = AMQP_URL) -> None:
    """Remove the test's queue from RabbitMQ."""
    from kombu import Connection

    with Connection(amqp_url, connect_timeout=5) as conn:
        conn.default_channel.queue_delete(queue)


def broker_env(database_url: str, queue: str, **overrides: str) -> dict[str, str]:
    """The environment of API replicas and workers sharing ``database_url`` and ``queue``."""
    return {
        "STARCODER_BROKER_URL": AMQP_URL,
        "STARCODER_REDIS_URL": REDIS_URL,
        "STARCODER_QUEUE": queue,
        "STARCODER_TEST_CHECKPOINTER": database_url,
        "STARCODER_LEASE_S": "6",
        **overrides,
    }


@dataclass
class WorkerProcess:
    """A running test worker."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the worker's log."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL: the worker gets no chance to clean up."""
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers."""
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()


def start_worker(workdir: Path, env: dict[str, str], name: str) -> WorkerProcess:
    """Start ``python -m tests.worker_app`` and wait until it consumes its queue."""
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / f"worker-{name}.log"
    full_env = {
        **os.environ,
        "STARCODER_AGENTS_HOME": str(workdir / "home"),
        "PYTHONUNBUFFERED": "1",
        "STARCODER_TEST_WORKER_NAME": name,
        **env,
    }
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.worker_app"], cwd=PROJECT_ROOT, env=full_env, stdout=log, stderr=log
        )
    worker = WorkerProcess(name, process, log_path)
    deadline = time.monotonic() + 90
    while "ready." not in worker.log_tail(100_000):
        if process.poll() is not None or time.monotonic() > deadline:
            worker.stop()
            raise RuntimeError(f"worker {name} did not start:\n{worker.log_tail()}")
        time.sleep(0.2)
    return worker


@contextmanager
def running_worker(workdir: Path, env: dict[str, str], name: str) -> Iterator[WorkerProcess]:
    """A worker for the block, stopped afterwards."""
    worker = start_worker(workdir, env, name)
    try:
        yield worker
    finally:
        worker.stop()


@dataclass
class Deployment:
    """API replicas and workers sharing one database, queue and Redis prefix."""

    workdir: Path
    env: dict[str, str]
    database_url: str
    queue: str
    apis: list[ServerProcess]
    workers: dict[str, WorkerProcess]
    api_stacks: list[ExitStack]

    def add_worker(self, name: str) -> WorkerProcess:
        """Start one more worker; its name carries the queue's, so parallel test runs never share one."""
        unique = f"{name}-{self.queue.rsplit('-', 1)[-1]}"
        self.workers[unique] = start_worker(self.workdir, self.env, unique)
        return self.workers[unique]

    def restart_api(self, index: int) -> ServerProcess:
        """Stop replica ``index`` and start a new one in its place (on another port)."""
        self.api_stacks[index].close()
        stack = ExitStack()
        self.apis[index] = stack.enter_context(running_server(self.workdir, env=self.env))
        self.api_stacks[index] = stack
        return self.apis[index]

    def worker_holding(self, run_id: str) -> WorkerProcess | None:
        """The worker whose lease holds ``run_id`` now, by the run's record."""
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            row = conn.execute("SELECT worker FROM starcoder_runs WHERE run_id = %s", (run_id,)).fetchone()
        return self.workers.get(str(row[0])) if row and row[0] else None


@contextmanager
def deployment(
    workdir: Path,
    *,
    apis: int,
    workers: int,
    broker_port: int = 5672,
    postgres_port: int = 5432,
    env: dict[str, str] | None = None,
) -> Iterator[Deployment]:
    """``apis`` replicas and ``workers`` workers on a fresh database and queue, stopped afterwards.

    ``broker_port`` and ``postgres_port`` let a test put a :mod:`tests.faultproxy` in
    between; ``env`` adds to every process's environment.
    """
    queue = f"starcoder-test-{uuid.uuid4().hex[:10]}"
    with fresh_database() as direct_url, ExitStack() as stack:
        database_url = direct_url.replace(":5432/", f":{postgres_port}/")
        broker_url = AMQP_URL.replace(":5672/", f":{broker_port}/")
        full_env = broker_env(database_url, queue, STARCODER_BROKER_URL=broker_url, **(env or {}))
        stack.callback(delete_queue, queue)
        found = Deployment(workdir, full_env, direct_url, queue, [], {}, [])

        def stop_workers() -> None:
            for worker in found.workers.values():
                worker.stop()

        def stop_apis() -> None:
            for api_stack in found.api_stacks:
                api_stack.close()

        # Registered before anything starts, so a start that fails still stops the rest.
        stack.callback(stop_workers)
        stack.callback(stop_apis)
        for number in range(workers):
            found.add_worker(f"w{number + 1}")
        for _ in range(apis):
            api_stack = ExitStack()
            found.api_stacks.append(api_stack)
            found.apis.append(api_stack.enter_context(running_server(workdir, env=full_env)))
        yield found


GRAPH = "starcoder-agents"
# The ``next`` of each checkpoint of a run that went straight through, oldest first.
CLEAN_HISTORY = [["__start__"], ["generate"], ["validate"], ["review"], ["finalize"], []]


def task(*markers: str) -> tuple[str, str]:
    """A task with a tag of its own (for the model's call log) and ``markers``; (tag, task)."""
    tag = f"run-{uuid.uuid4().hex[:10]}"
    return tag, " ".join(["Write add(a, b) that returns the sum of a and b.", tag, *markers])


def calls(deployed: Deployment, tag: str) -> Counter[str]:
    """How often each role of the fake model was called for ``tag``, in every worker."""
    log = Path(deployed.env["STARCODER_TEST_CALL_LOG"])
    lines = log.read_text().splitlines() if log.exists() else []
    return Counter(line.split("\t")[0] for line in lines if line.endswith(f"\t{tag}"))


def history_shape(client: Any, thread_id: str) -> list[list[str]]:
    """The ``next`` of each checkpoint of the thread, oldest first."""
    return [list(state["next"]) for state in reversed(client.threads.get_history(thread_id, limit=100))]


def wait_for(predicate: Any, what: str, timeout_s: float = 60) -> None:
    """Wait until ``predicate()`` holds; fail the test after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def queue_waits(deployed: Deployment, run_ids: list[str]) -> list[float]:
    """Seconds each of the runs waited between its creation and its start."""
    with psycopg.connect(deployed.database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT extract(epoch FROM started_at - created_at) FROM starcoder_runs WHERE run_id = ANY(%s)",
            (run_ids,),
        ).fetchall()
    return [float(row[0]) for row in rows if row[0] is not None]
