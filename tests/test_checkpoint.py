"""The one checkpointer module: every target, sync (in-process runs) and async (the server).

The PostgreSQL case that needs a database runs against a fresh one on the local
PostgreSQL (:func:`tests.services.fresh_database`), and is skipped when none answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver

from graph import build_graph
from graph.checkpoint import (
    CheckpointerError,
    checkpointer_kind,
    is_postgres_url,
    open_async_checkpointer,
    open_checkpointer,
)
from graph.runtime import run_task
from tests.fakes import ADD_TESTS, GOOD_CODE, GOOD_REVIEW, FakeScriptedModels, fenced, scripted_settings
from tests.services import fresh_database

UNREACHABLE = "postgresql://someone:s3cret@127.0.0.1:1/nothing"


def _good_models() -> FakeScriptedModels:
    return FakeScriptedModels(
        generator=[fenced(GOOD_CODE)], tester=[fenced(ADD_TESTS)], reviewer=[GOOD_REVIEW], refiner=[fenced(GOOD_CODE)]
    )


@pytest.fixture
def database_url() -> Iterator[str]:
    with fresh_database() as url:
        yield url


def test_postgres_urls_are_told_from_paths():
    assert is_postgres_url("postgres://h/db") and is_postgres_url("postgresql://u@h:5432/db")
    assert not is_postgres_url(None) and not is_postgres_url("memory") and not is_postgres_url("runs/pg.sqlite")


def test_memory_and_sqlite_targets(tmp_path: Path):
    with open_checkpointer("memory") as saver:
        assert isinstance(saver, InMemorySaver) and checkpointer_kind(saver) == "memory"
    path = tmp_path / "deep" / "folder" / "checkpoints.sqlite"
    with open_checkpointer(str(path)) as saver:
        assert isinstance(saver, SqliteSaver) and checkpointer_kind(saver) == "sqlite"
    assert path.is_file()


def test_the_default_target_is_the_sqlite_file_in_the_data_folder(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("STARCODER_AGENTS_HOME", str(tmp_path))
    with open_checkpointer() as saver:
        assert checkpointer_kind(saver) == "sqlite"
    assert (tmp_path / "checkpoints.sqlite").is_file()


def test_a_folder_that_cannot_be_made_is_a_clear_error(tmp_path: Path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(CheckpointerError, match="cannot create the checkpoint folder"):
        with open_checkpointer(str(blocker / "sub" / "checkpoints.sqlite")):
            pass


def test_an_unreachable_postgres_is_a_clear_error_that_hides_the_password(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CheckpointerError) as caught:
        with open_checkpointer(UNREACHABLE):
            pass
    assert "cannot connect to PostgreSQL at postgresql://***@127.0.0.1:1/nothing" in str(caught.value)
    assert "s3cret" not in str(caught.value)
    assert not list(tmp_path.iterdir()), "a URL must never become a SQLite file path"


def test_the_server_refuses_a_checkpointer_without_the_async_api(tmp_path: Path):
    async def opened(target: object) -> str:
        async with open_async_checkpointer(target) as saver:  # type: ignore[arg-type]
            return checkpointer_kind(saver)

    given = InMemorySaver()
    assert asyncio.run(opened(given)) == "memory"
    assert asyncio.run(opened(str(tmp_path / "c.sqlite"))) == "sqlite"
    with open_checkpointer(str(tmp_path / "sync.sqlite")) as sync_saver:
        with pytest.raises(CheckpointerError, match="no async API"):
            asyncio.run(opened(sync_saver))
    with pytest.raises(CheckpointerError, match="cannot connect to PostgreSQL"):
        asyncio.run(opened(UNREACHABLE))


def test_an_in_process_run_checkpoints_in_postgres_and_resumes_from_it(database_url: str, tmp_path: Path):
    settings = scripted_settings(results_dir=str(tmp_path / "runs"), test_timeout_s=60.0)
    with open_checkpointer(database_url) as saver:
        assert checkpointer_kind(saver) == "postgres"
        result = run_task(build_graph(_good_models(), settings=settings, checkpointer=saver), {"task": "Write add."})
    assert result["passed"] is True
    # Another connection (another process, as far as the database knows) sees the thread.
    with open_checkpointer(database_url.replace("postgresql://", "postgres://", 1)) as saver:
        app = build_graph(FakeScriptedModels(), settings=settings, checkpointer=saver)
        state = app.get_state({"configurable": {"thread_id": result["thread_id"]}})
    assert state.next == () and state.values["code"] == result["code"]
