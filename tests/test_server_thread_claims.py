"""One run at a time per thread, as :mod:`service.thread_claims` keeps it (no server needed).

The routes' side of it (``/agent``, ``/threads``, ``/lg`` answering 409, queueing and
interrupting) is tested through a real server in ``test_server.py`` and
``test_server_lgapi.py``.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from fastapi import HTTPException

from service.thread_claims import ThreadClaims, thread_busy


def test_a_claimed_thread_refuses_a_second_claim_until_released():
    claims = ThreadClaims()
    claims.claim("t")
    assert "t" in claims and not claims.try_claim("t")
    with pytest.raises(HTTPException) as refused:
        claims.claim("t")
    assert refused.value.status_code == 409 and "already has a run in progress" in refused.value.detail
    claims.release("t")
    with claims.holding("t"):
        assert "t" in claims
    assert "t" not in claims


def test_a_requests_claims_are_freed_together_and_its_thread_reported():
    claims = ThreadClaims()
    state = SimpleNamespace()
    claims.claim_for_request(state, "a", report=False)
    claims.claim_for_request(state, "b")
    assert "a" in claims and "b" in claims
    scope_state = vars(state)
    assert scope_state["starcoder_thread_id"] == "b"
    claims.release_request(scope_state)
    assert "a" not in claims and "b" not in claims


def test_the_409_says_what_to_do_instead():
    assert "another thread id" in thread_busy("t").detail
    assert "multitask_strategy 'enqueue' or 'interrupt'" in thread_busy("t", strategies=True).detail


@pytest.mark.parametrize(
    ("strategy", "active", "busy_elsewhere", "expected"),
    [
        ("reject", [], False, []),
        ("reject", ["run-1"], False, 409),
        ("enqueue", ["run-1"], False, []),
        ("interrupt", ["run-1", "run-2"], False, ["run-1", "run-2"]),
        # A thread held by /agent or /threads cannot be queued behind or interrupted.
        ("enqueue", [], True, 409),
        ("interrupt", [], True, 409),
    ],
)
def test_the_multitask_strategies(strategy, active, busy_elsewhere, expected):
    claims = ThreadClaims()
    if busy_elsewhere:
        claims.claim("t")
    if expected == 409:
        with pytest.raises(HTTPException) as refused:
            claims.admit("t", strategy, active)
        assert refused.value.status_code == 409
    else:
        assert claims.admit("t", strategy, active) == expected


def test_queued_runs_take_their_turn_in_order_and_leave_nothing_behind():
    claims = ThreadClaims()
    order: list[str] = []

    async def run(name: str, gate: asyncio.Event | None = None) -> None:
        async with claims.turn("t"):
            order.append(f"{name} starts")
            if gate is not None:
                await gate.wait()
            order.append(f"{name} ends")

    async def main() -> None:
        gate = asyncio.Event()
        first = asyncio.create_task(run("first", gate))
        await asyncio.sleep(0)
        second = asyncio.create_task(run("second"))
        third = asyncio.create_task(run("third"))
        await asyncio.sleep(0.01)
        assert order == ["first starts"]
        third.cancel()  # a queued run that is cancelled gives up its place
        gate.set()
        await asyncio.gather(first, second, third, return_exceptions=True)

    asyncio.run(main())
    assert order == ["first starts", "first ends", "second starts", "second ends"]
    assert not claims._turns  # nothing waits: the thread's queue is forgotten
