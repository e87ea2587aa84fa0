"""Thread and run records in PostgreSQL, shared by every API replica and worker.

With a broker configured, no process keeps run state in memory: an API replica writes
the record and sends a message; a worker claims the record, runs it, and writes how
it ended. The tables live in the checkpointer's database.

A worker claims a run with a lease (``lease_until``) that it renews while the run goes
on. Another worker handed the same message (the broker redelivers it when the first
worker's connection dies) takes the run over only once that lease has lapsed, and
every write of the run's end names the worker that holds it (fencing), so a run is
never executed by two workers at once, and a run that finished is never run again.
Runs of one thread start in the order they were made.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal

from psycopg_pool import AsyncConnectionPool

from graph.checkpoint import open_postgres_pool
from service.lgschemas import RunRecord, RunStatus

__all__ = ["Claim", "PostgresRunStore", "open_run_store"]

logger = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS starcoder_threads (
    thread_id text PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    metadata jsonb NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS starcoder_runs (
    run_id text PRIMARY KEY,
    thread_id text NOT NULL,
    assistant_id text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    status text NOT NULL,
    metadata jsonb NOT NULL DEFAULT '{}',
    multitask_strategy text NOT NULL,
    body jsonb NOT NULL,
    error jsonb,
    attempts integer NOT NULL DEFAULT 0,
    worker text,
    lease_until timestamptz,
    started_at timestamptz,
    cancel_requested boolean NOT NULL DEFAULT false
);
CREATE INDEX IF NOT EXISTS starcoder_runs_by_thread ON starcoder_runs (thread_id, created_at);
"""
_ACTIVE = "('pending', 'running')"
_RECORD_COLUMNS = (
    "run_id, thread_id, assistant_id, status, metadata, multitask_strategy, "
    "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"') AS created_at, "
    "to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"') AS updated_at"
)
_THREAD_COLUMNS = (
    "metadata, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"') AS created_at, "
    "to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"') AS updated_at"
)


@dataclass(frozen=True)
class Claim:
    """What a worker may do with a run it was handed.

    ``run``: it holds the run now (``attempts`` counts the claims, this one included);
    ``wait``: the run is held by a live worker, or an earlier run of its thread is not
    done; ``skip``: the run has ended or was cancelled, nothing to do.
    """

    kind: Literal["run", "wait", "skip"]
    record: RunRecord | None = None
    body: dict[str, Any] | None = None
    attempts: int = 0


def _record(row: dict[str, Any]) -> RunRecord:
    return RunRecord(
        run_id=row["run_id"],
        thread_id=row["thread_id"],
        assistant_id=row["assistant_id"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        status=row["status"],
        metadata=row["metadata"] or {},
        multitask_strategy=row["multitask_strategy"],
    )


class PostgresRunStore:
    """The records over an open connection pool (``autocommit``, ``dict_row``)."""

    def __init__(self, pool: Any) -> None:
        self.pool: AsyncConnectionPool[Any] = pool

    async def setup(self) -> None:
        """Create the tables if they are missing (serialised: replicas may start together)."""
        async with self.pool.connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('starcoder_runs schema'))")
            for statement in filter(str.strip, _SCHEMA.split(";")):
                await conn.execute(statement)

    # Threads.

    async def create_thread(self, thread_id: str, metadata: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Record ``thread_id``; returns its record and whether it is new."""
        async with self.pool.connection() as conn:
            cursor = await conn.execute(
                "INSERT INTO starcoder_threads (thread_id, metadata) VALUES (%s, %s) "
                f"ON CONFLICT (thread_id) DO NOTHING RETURNING {_THREAD_COLUMNS}",
                (thread_id, json.dumps(metadata)),
            )
            row = await cursor.fetchone()
        if row is not None:
            return dict(row), True
        existing = await self.thread_meta(thread_id)
        return existing or {}, False

    async def thread_meta(self, thread_id: str) -> dict[str, Any] | None:
        """The record of ``thread_id``, if it was made through the API."""
        async with self.pool.connection() as conn:
            cursor = await conn.execute(
                f"SELECT {_THREAD_COLUMNS} FROM starcoder_threads WHERE thread_id = %s", (thread_id,)
            )
            row = await cursor.fetchone()
        return dict(row) if row else None

    # Runs, as the API replicas see them.

    async def insert_run(self, record: RunRecord, body: dict[str, Any], *, reject_if_busy: bool) -> bool:
        """Add a pending run; with ``reject_if_busy``, only if its thread has no run in progress.

        Returns False (and adds nothing) when refused. The check and the insert hold the
        thread's advisory lock, so two replicas cannot both start a run on one thread.
        """
        async with self.pool.connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (record["thread_id"],))
            if reject_if_busy and await self._has_active(conn, record["thread_id"]):
                return False
            await conn.execute(
                "INSERT INTO starcoder_runs (run_id, thread_id, assistant_id, status, metadata, "
                "multitask_strategy, body) VALUES (%s, %s, %s, 'pending', %s, %s, %s)",
                (
                    record["run_id"],
                    record["thread_id"],
                    record["assistant_id"],
                    json.dumps(record["metadata"]),
                    record["multitask_strategy"],
                    json.dumps(body),
                ),
            )
            await conn.execute(
                "UPDATE starcoder_threads SET updated_at = now() WHERE thread_id = %s", (record["thread_id"],)
            )
        return True

    async def _has_active(self, conn: Any, thread_id: str) -> bool:
        cursor = await conn.execute(
            f"SELECT 1 FROM starcoder_runs WHERE thread_id = %s AND status IN {_ACTIVE} LIMIT 1", (thread_id,)
        )
        return await cursor.fetchone() is not None

    async def get_run(self, run_id: str) -> RunRecord | None:
        """The record of ``run_id``."""
        async with self.pool.connection() as conn:
            cursor = await conn.execute(f"SELECT {_RECORD_COLUMNS} FROM starcoder_runs WHERE run_id = %s", (run_id,))
            row = await cursor.fetchone()
        return _record(row) if row else None

    async def run_error(self, run_id: str) -> dict[str, str] | None:
        """What went wrong in ``run_id``, when it ended in error."""
        async with self.pool.connection() as conn:
            cursor = await conn.execute("SELECT error FROM starcoder_runs WHERE run_id = %s", (run_id,))
            row = await cursor.fetchone()
        return row["error"] if row else None

    async def list_runs(
        self, thread_id: str, *, limit: int, offset: int, status: str | None, active_only: bool = False
    ) -> list[RunRecord]:
        """The thread's runs, newest first (oldest first with ``active_only``)."""
        where, params = "thread_id = %s", [thread_id]
        if status:
            where += " AND status = %s"
            params.append(status)
        order = "DESC"
        if active_only:
            where += f" AND status IN {_ACTIVE}"
            order = "ASC"
        async with self.pool.connection() as conn:
            cursor = await conn.execute(
                f"SELECT {_RECORD_COLUMNS} FROM starcoder_runs WHERE {where} "
                f"ORDER BY created_at {order} LIMIT %s OFFSET %s",
                (*params, limit, offset),
            )
            return [_record(row) for row in await cursor.fetchall()]

    async def request_cancel(self, run_id: str) -> None:
        """Ask the run to stop; a run no worker has started ends here, as ``interrupted``."""
        async with self.pool.connection() as conn:
            await conn.execute(
                "UPDATE starcoder_runs SET cancel_requested = true, updated_at = clock_timestamp(), "
                "status = CASE WHEN status = 'pending' THEN 'interrupted' ELSE status END "
                f"WHERE run_id = %s AND status IN {_ACTIVE}",
                (run_id,),
            )

    # Runs, as the workers see them.

    async def claim(self, run_id: str, worker: str, lease_s: float) -> Claim:
        """Take ``run_id`` for ``worker`` unless it ended, was cancelled, or is held elsewhere."""
        async with self.pool.connection() as conn, conn.transaction():
            cursor = await conn.execute(
                "SELECT thread_id, status, worker, cancel_requested, attempts, body, created_at, "
                "lease_until < clock_timestamp() AS lapsed FROM starcoder_runs WHERE run_id = %s FOR UPDATE",
                (run_id,),
            )
            row = await cursor.fetchone()
            if row is None or row["status"] not in ("pending", "running"):
                return Claim("skip")
            if row["cancel_requested"]:
                await self._end(conn, run_id, "interrupted", None)
                return Claim("skip")
            if row["status"] == "running" and row["worker"] != worker and not row["lapsed"]:
                return Claim("wait")
            earlier = await conn.execute(
                f"SELECT 1 FROM starcoder_runs WHERE thread_id = %s AND status IN {_ACTIVE} "
                "AND created_at < %s AND run_id <> %s LIMIT 1",
                (row["thread_id"], row["created_at"], run_id),
            )
            if await earlier.fetchone() is not None:
                return Claim("wait")
            cursor = await conn.execute(
                "UPDATE starcoder_runs SET status = 'running', attempts = attempts + 1, worker = %s, "
                "lease_until = clock_timestamp() + make_interval(secs => %s), "
                "started_at = coalesce(started_at, clock_timestamp()), updated_at = clock_timestamp() "
                f"WHERE run_id = %s RETURNING {_RECORD_COLUMNS}, attempts",
                (worker, lease_s, run_id),
            )
            claimed = await cursor.fetchone()
        return Claim("run", _record(claimed), row["body"], claimed["attempts"])

    async def renew(self, run_id: str, worker: str, lease_s: float) -> tuple[bool, bool]:
        """Extend ``worker``'s lease: (still held, cancel requested)."""
        async with self.pool.connection() as conn:
            cursor = await conn.execute(
                "UPDATE starcoder_runs SET lease_until = clock_timestamp() + make_interval(secs => %s) "
                "WHERE run_id = %s AND worker = %s AND status = 'running' RETURNING cancel_requested",
                (lease_s, run_id, worker),
            )
            row = await cursor.fetchone()
        return (row is not None, bool(row and row["cancel_requested"]))

    async def finish(self, run_id: str, worker: str, status: RunStatus, error: dict[str, str] | None) -> bool:
        """Record how the run ended, if ``worker`` still holds it; False when it no longer does."""
        async with self.pool.connection() as conn:
            cursor = await conn.execute(
                "UPDATE starcoder_runs SET status = %s, error = %s, lease_until = NULL, "
                "updated_at = clock_timestamp() WHERE run_id = %s AND worker = %s AND status = 'running' "
                "RETURNING run_id",
                (status, json.dumps(error) if error else None, run_id, worker),
            )
            return await cursor.fetchone() is not None

    async def _end(self, conn: Any, run_id: str, status: RunStatus, error: dict[str, str] | None) -> None:
        await conn.execute(
            "UPDATE starcoder_runs SET status = %s, error = %s, lease_until = NULL, updated_at = clock_timestamp() "
            "WHERE run_id = %s",
            (status, json.dumps(error) if error else None, run_id),
        )

    async def fail(self, run_id: str, error: dict[str, str]) -> None:
        """End a run that could not be handed to a worker."""
        async with self.pool.connection() as conn:
            await self._end(conn, run_id, "error", error)

    async def queue_waits(self) -> list[float]:
        """Seconds each started run waited between being made and being started (for reports)."""
        async with self.pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT extract(epoch FROM started_at - created_at) AS wait FROM starcoder_runs "
                "WHERE started_at IS NOT NULL"
            )
            return [float(row["wait"]) for row in await cursor.fetchall()]


@asynccontextmanager
async def open_run_store(url: str, *, max_size: int = 4) -> AsyncIterator[PostgresRunStore]:
    """Open a pool on ``url`` (the checkpointer's database), make the tables, close on exit."""
    async with open_postgres_pool(url, max_size=max_size) as pool:
        store = PostgresRunStore(pool)
        await store.setup()
        yield store
