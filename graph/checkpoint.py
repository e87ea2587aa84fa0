"""Where checkpoints are kept: a SQLite file by default, memory in tests.

``open_checkpointer`` is a context manager so the connection closes with the run.
PostgreSQL (for several server replicas) is handled where the server is wired.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver

from graph.config import data_home

__all__ = ["default_checkpoint_path", "open_checkpointer"]


def default_checkpoint_path() -> Path:
    """The default SQLite file of checkpoints."""
    return data_home() / "checkpoints.sqlite"


@contextmanager
def open_checkpointer(target: str | None = None) -> Iterator[BaseCheckpointSaver]:
    """Open a checkpointer: ``None`` (the default file), ``"memory"``, or a SQLite file path."""
    if target == "memory":
        yield InMemorySaver()
        return
    path = Path(target).expanduser() if target else default_checkpoint_path()
    if str(path).startswith(("postgres://", "postgresql://")):
        raise ValueError("PostgreSQL checkpoints are served by the HTTP server; give a file path here")
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), check_same_thread=False)
    try:
        saver = SqliteSaver(conn)
        saver.setup()
        yield saver
    finally:
        conn.close()
