"""Open the checkpointer the server runs on: SQLite by default, PostgreSQL for replicas.

LangServe drives the graph through its async API (``ainvoke``, ``astream``), so the
checkpointer must implement the async methods: :class:`AsyncSqliteSaver` (aiosqlite)
for a local file, :class:`AsyncPostgresSaver` over a psycopg connection pool for
several replicas sharing one database. Connections are built with
``autocommit=True, prepare_threshold=0, row_factory=dict_row``, which
``AsyncPostgresSaver`` needs on connections it did not build itself.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver

from graph.checkpoint import default_checkpoint_path

__all__ = [
    "CheckpointerError",
    "CheckpointerKind",
    "checkpointer_kind",
    "is_postgres_url",
    "open_async_checkpointer",
    "open_postgres_pool",
    "require_async",
]

logger = logging.getLogger(__name__)

CheckpointerKind = Literal["memory", "sqlite", "postgres", "custom"]
POSTGRES_POOL_SIZE = 8


class CheckpointerError(RuntimeError):
    """The checkpointer cannot be opened; the message says which and why."""


def is_postgres_url(target: str | None) -> bool:
    """True for a ``postgres://`` or ``postgresql://`` URL."""
    return bool(target) and str(target).startswith(("postgres://", "postgresql://"))


def checkpointer_kind(saver: BaseCheckpointSaver) -> CheckpointerKind:
    """Name the kind of an open checkpointer, for ``/health``."""
    name = type(saver).__name__
    if isinstance(saver, InMemorySaver):
        return "memory"
    if "Sqlite" in name:
        return "sqlite"
    if "Postgres" in name:
        return "postgres"
    return "custom"


def require_async(saver: BaseCheckpointSaver) -> BaseCheckpointSaver:
    """Return ``saver`` if it implements the async API the server calls, else raise."""
    if type(saver).aget_tuple is BaseCheckpointSaver.aget_tuple:
        raise CheckpointerError(
            f"{type(saver).__name__} has no async API; the server needs an async checkpointer "
            "(AsyncSqliteSaver, AsyncPostgresSaver or InMemorySaver)"
        )
    return saver


def _redacted(url: str) -> str:
    scheme, _, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.rsplit("@", 1)[1]
    return f"{scheme}://{rest}"


@asynccontextmanager
async def open_postgres_pool(url: str, *, max_size: int = POSTGRES_POOL_SIZE) -> AsyncIterator[Any]:
    """An open ``AsyncConnectionPool`` on ``url`` with the connection settings the savers need.

    Raises :class:`CheckpointerError` when the database cannot be reached.
    """
    from psycopg.rows import dict_row
    from psycopg_pool import AsyncConnectionPool

    pool = AsyncConnectionPool(
        conninfo=url,
        min_size=1,
        max_size=max_size,
        kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
        check=AsyncConnectionPool.check_connection,  # drop connections a restart broke
        open=False,
    )
    try:
        await pool.open(wait=True, timeout=15)
    except Exception as exc:  # psycopg's PoolTimeout hides the cause in the log
        await pool.close()
        raise CheckpointerError(f"cannot connect to PostgreSQL at {_redacted(url)}: {exc}") from exc
    try:
        yield pool
    finally:
        await pool.close()


@asynccontextmanager
async def _open_postgres(url: str) -> AsyncIterator[BaseCheckpointSaver]:
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

    async with open_postgres_pool(url) as pool:
        saver = AsyncPostgresSaver(pool)
        await saver.setup()
        logger.info("checkpoints in PostgreSQL at %s", _redacted(url))
        yield saver


@asynccontextmanager
async def _open_sqlite(path: Path) -> AsyncIterator[BaseCheckpointSaver]:
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CheckpointerError(f"cannot create the checkpoint folder {path.parent}: {exc}") from exc
    async with AsyncSqliteSaver.from_conn_string(str(path)) as saver:
        await saver.setup()
        logger.info("checkpoints in SQLite file %s", path)
        yield saver


@asynccontextmanager
async def open_async_checkpointer(target: str | None = None) -> AsyncIterator[BaseCheckpointSaver]:
    """Open a checkpointer for the server and close it on exit.

    ``target``: ``None`` (the default SQLite file), ``"memory"``, a SQLite file path,
    or a ``postgres://`` URL. Raises :class:`CheckpointerError` when it cannot open.
    """
    if target == "memory":
        yield InMemorySaver()
    elif is_postgres_url(target):
        async with _open_postgres(str(target)) as saver:
            yield saver
    else:
        path = Path(target).expanduser() if target else default_checkpoint_path()
        async with _open_sqlite(path) as saver:
            yield saver
