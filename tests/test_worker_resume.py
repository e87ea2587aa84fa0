"""Where a worker's run stands after the database went away under it, at every checkpoint write.

A run is cut off by PostgreSQL failing one checkpoint write (as a restart does); the
worker then asks :func:`service.worker.resume_point` where the run stands and goes on
from there. Whichever write fails, the run must finish, with the checkpoints of one
clean pass and no node run twice: in particular when a step's writes were saved and
its checkpoint was not, which ``StateSnapshot.next`` alone reports as finished.
"""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest
from langgraph.checkpoint.memory import InMemorySaver

from graph import build_graph
from service.lgschemas import RunCreate
from service.runs import execute_run, new_run_record
from service.worker import INFRASTRUCTURE_ERRORS, resume_point
from tests.fakes import ADD_TESTS, GOOD_CODE, GOOD_REVIEW, FakeScriptedModels, fenced, scripted_settings
from tests.services import CLEAN_HISTORY


class CutOnceSaver(InMemorySaver):
    """An in-memory saver whose ``cut_at``-th checkpoint write fails as a lost connection does."""

    def __init__(self, cut_at: int) -> None:
        super().__init__()
        self.cut_at = cut_at
        self.puts = 0

    async def aput(self, config: Any, checkpoint: Any, metadata: Any, new_versions: Any) -> Any:
        self.puts += 1
        if self.puts == self.cut_at:
            raise psycopg.OperationalError("consuming input failed: server closed the connection unexpectedly")
        return await super().aput(config, checkpoint, metadata, new_versions)


async def _publish(event: str, data: str) -> None:
    return None


async def _run_cut_at(cut_at: int, tmp_path: Any) -> tuple[list[str], Any, Any, FakeScriptedModels]:
    models = FakeScriptedModels(
        generator=[fenced(GOOD_CODE)], tester=[fenced(ADD_TESTS)], reviewer=[GOOD_REVIEW], refiner=[]
    )
    saver = CutOnceSaver(cut_at)
    graph = build_graph(models, settings=scripted_settings(results_dir=str(tmp_path)), checkpointer=saver)
    body = RunCreate(assistant_id="starcoder-agents", input={"task": "Write add(a, b) that returns a + b."})
    record = new_run_record("thread-1", body, "starcoder-agents")
    points, resume = [], False
    for _ in range(3):
        try:
            outcome = await execute_run(graph, record, body, _publish, resume=resume, reraise=INFRASTRUCTURE_ERRORS)
        except INFRASTRUCTURE_ERRORS:
            point = await resume_point(graph, "thread-1", record["run_id"])
            points.append(point)
            if point == "done":
                break
            resume = point == "resume"
            continue
        assert outcome.status == "success", outcome
        break
    points.append(await resume_point(graph, "thread-1", record["run_id"]))  # where the finished run stands
    config = {"configurable": {"thread_id": "thread-1"}}
    history = [list(state.next) async for state in graph.aget_state_history(config)]
    return points, list(reversed(history)), await graph.aget_state(config), models


@pytest.mark.parametrize("cut_at", range(1, 7))
def test_a_run_cut_off_at_any_checkpoint_write_finishes_once(cut_at: int, tmp_path: Any) -> None:
    points, history, state, models = asyncio.run(_run_cut_at(cut_at, tmp_path))
    # The first write holds the input: cut there, nothing of the run is saved and it starts over.
    assert points == (["start", "done"] if cut_at == 1 else ["resume", "done"])
    assert history == CLEAN_HISTORY
    assert state.values["passed"] is True
    assert [models.calls(role) for role in ("generator", "tester", "reviewer")] == [1, 1, 1]


def test_a_finished_run_is_done_and_another_run_starts(tmp_path: Any) -> None:
    points, history, _, _ = asyncio.run(_run_cut_at(0, tmp_path))  # never cut
    assert points == ["done"] and history == CLEAN_HISTORY
    graph = build_graph(FakeScriptedModels(), settings=scripted_settings(), checkpointer=InMemorySaver())

    async def fresh() -> str:
        return await resume_point(graph, "thread-1", "some-run")

    assert asyncio.run(fresh()) == "start"
