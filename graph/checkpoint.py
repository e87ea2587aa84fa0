"""Where checkpoints are kept: the one place that opens a checkpointer, of every kind.

A target names where, the same for ``run``, ``serve`` and ``worker``: ``None`` (the
default SQLite file), ``"memory"``, a SQLite file path, or a ``postgres://`` /
``postgresql://`` URL (one database that server replicas and workers share).

- :func:`open_checkpointer` — a synchronous saver for in-process runs (the command
  line, notebooks, benchmarks): :class:`SqliteSaver`, or :class:`PostgresSaver` on
  one connection.
- :func:`open_async_checkpointer` — an async saver for the server and the workers,
  which drive the graph through its async API (``ainvoke``, ``astream``):
  :class:`AsyncSqliteSaver` (aiosqlite), or :class:`AsyncPostgresSaver` over a
  connection pool (:func:`open_postgres_pool`, which the run store shares).

Both are context managers, so connections close with the run or the server.
PostgreSQL connections are built with ``autocommit=True, prepare_threshold=0,
row_factory=dict_row``, which the Postgres savers need on connections they did not
build themselves. Anything that cannot open raises :class:`CheckpointerError` with a
message that says which target and why (a password in a URL is never shown).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, Literal

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver

from graph.config import data_home

__all__ = [
    "CheckpointerError",
    "CheckpointerKind",
    "checkpointer_kind",
    "default_checkpoint_path",
    "is_postgres_url",
    "open_async_checkpointer",
    "open_checkpointer",
    "open_postgres_pool",
    "require_async",
]

logger = logging.getLogger(__name__)

CheckpointerKind = Literal["memory", "sqlite", "postgres", "custom"]
POSTGRES_POOL_SIZE = 8
POSTGRES_CONNECT_TIMEOUT_S = 15


class CheckpointerError(RuntimeError):
    """The checkpointer cannot be opened; the message says which and why."""


def default_checkpoint_path() -> Path:
    """The default SQLite file of checkpoints."""
    return data_home() / "checkpoints.sqlite"


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
    from langgraph.checkpoint.sqlite import SqliteSaver

    # SqliteSaver has the async methods, but only to raise NotImplementedError in them.
    if type(saver).aget_tuple is BaseCheckpointSaver.aget_tuple or isinstance(saver, SqliteSaver):
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


def _unreachable(url: str, exc: Exception) -> CheckpointerError:
    return CheckpointerError(f"cannot connect to PostgreSQL at {_redacted(url)}: {exc}")


def _postgres_connection_kwargs() -> dict[str, Any]:
    from psycopg.rows import dict_row

    return {"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row}


def _sqlite_file(target: str | None) -> Path:
    """The SQLite file of ``target`` (the default one for ``None``), its folder made."""
    path = Path(target).expanduser() if target else default_checkpoint_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CheckpointerError(f"cannot create the checkpoint folder {path.parent}: {exc}") from exc
    return path


# -- synchronous: in-process runs --------------------------------------------------------


@contextmanager
def _open_postgres(url: str) -> Iterator[BaseCheckpointSaver]:
    import psycopg
    from langgraph.checkpoint.postgres import PostgresSaver

    try:
        conn = psycopg.connect(url, connect_timeout=POSTGRES_CONNECT_TIMEOUT_S, **_postgres_connection_kwargs())
    except psycopg.Error as exc:
        raise _unreachable(url, exc) from exc
    with conn:
        saver = PostgresSaver(conn)
        saver.setup()
        logger.info("checkpoints in PostgreSQL at %s", _redacted(url))
        yield saver


@contextmanager
def _open_sqlite(target: str | None) -> Iterator[BaseCheckpointSaver]:
    from langgraph.checkpoint.sqlite import SqliteSaver

    path = _sqlite_file(target)
    try:
        conn = sqlite3.connect(str(path), check_same_thread=False)
    except sqlite3.Error as exc:
        raise CheckpointerError(f"cannot open the checkpoint file {path}: {exc}") from exc
    try:
        saver = SqliteSaver(conn)
        saver.setup()
        yield saver
    finally:
        conn.close()


@contextmanager
def open_checkpointer(target: str | None = None) -> Iterator[BaseCheckpointSaver]:
    """Open a synchronous checkpointer on ``target`` and close it on exit.

    Raises :class:`CheckpointerError` when it cannot open.
    """
    if target == "memory":
        yield InMemorySaver()
    elif is_postgres_url(target):
        with _open_postgres(str(target)) as saver:
            yield saver
    else:
        with _open_sqlite(target) as saver:
            yield saver


# -- asynchronous: the server and the workers --------------------------------------------


@asynccontextmanager
async def open_postgres_pool(url: str, *, max_size: int = POSTGRES_POOL_SIZE) -> AsyncIterator[Any]:
    """An open ``AsyncConnectionPool`` on ``url`` with the connection settings the savers need.

    Raises :class:`CheckpointerError` when the database cannot be reached.
    """
    from psycopg_pool import AsyncConnectionPool

    pool = AsyncConnectionPool(
        conninfo=url,
        min_size=1,
        max_size=max_size,
        kwargs=_postgres_connection_kwargs(),
        check=AsyncConnectionPool.check_connection,  # drop connections a restart broke
        open=False,
    )
    try:
        await pool.open(wait=True, timeout=POSTGRES_CONNECT_TIMEOUT_S)
    except Exception as exc:  # psycopg's PoolTimeout hides the cause in the log
        await pool.close()
        raise _unreachable(url, exc) from exc
    try:
        yield pool
    finally:
        await pool.close()


@asynccontextmanager
async def _open_async_postgres(url: str) -> AsyncIterator[BaseCheckpointSaver]:
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

    async with open_postgres_pool(url) as pool:
        saver = AsyncPostgresSaver(pool)
        await saver.setup()
        logger.info("checkpoints in PostgreSQL at %s", _redacted(url))
        yield saver


@asynccontextmanager
async def _open_async_sqlite(target: str | None) -> AsyncIterator[BaseCheckpointSaver]:
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    path = _sqlite_file(target)
    async with AsyncSqliteSaver.from_conn_string(str(path)) as saver:
        await saver.setup()
        logger.info("checkpoints in SQLite file %s", path)
        yield saver


@asynccontextmanager
async def open_async_checkpointer(
    target: str | BaseCheckpointSaver | None = None,
) -> AsyncIterator[BaseCheckpointSaver]:
    """Open an async checkpointer on ``target`` and close it on exit.

    ``target`` may also be a saver already open (a test's, an embedding program's): it
    is checked for the async API and handed back, and left open. Raises
    :class:`CheckpointerError` when it cannot open.
    """
    if isinstance(target, BaseCheckpointSaver):
        yield require_async(target)
    elif target == "memory":
        yield InMemorySaver()
    elif is_postgres_url(target):
        async with _open_async_postgres(str(target)) as saver:
            yield saver
    else:
        async with _open_async_sqlite(target) as saver:
            yield saver
