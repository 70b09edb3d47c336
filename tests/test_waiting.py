"""Awaiting task status from asyncio code: never blocking the loop, on every backend."""

from __future__ import annotations

import asyncio
import threading
import uuid

import pytest
from celery import Celery

from taskqueue_kit import (
    TaskNotFound,
    TaskState,
    aget_task_info,
    get_task_info,
    report_progress,
    wait_for_task,
)
from taskqueue_kit.testing import run_worker

pytestmark = pytest.mark.compat


async def _ticking(awaitable: object) -> tuple[object, int]:
    """Run ``awaitable`` while a ticker counts 10 ms steps: a blocked loop counts none."""
    ticks = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            await asyncio.sleep(0.01)
            ticks += 1

    tick = asyncio.create_task(ticker())
    try:
        result = await awaitable  # type: ignore[misc]
    finally:
        stop.set()
        await tick
    return result, ticks


def test_aget_task_info_reads_what_get_task_info_reads(taskqueue_app: Celery) -> None:
    """Queued, then succeeded, then an unknown id: the same answers as the blocking call."""

    @taskqueue_app.task(name="waiting.add", shared=False)
    def add(a: int, b: int) -> int:
        return a + b

    result = add.delay(2, 3)
    info = asyncio.run(aget_task_info(result.id, app=taskqueue_app))
    assert info == get_task_info(result.id, app=taskqueue_app)
    assert info.state is TaskState.QUEUED
    with run_worker(taskqueue_app):
        assert result.get(timeout=30) == 5
    done = asyncio.run(aget_task_info(result.id, app=taskqueue_app))
    assert (done.state, done.result) == (TaskState.SUCCEEDED, 5)
    unknown = asyncio.run(aget_task_info(str(uuid.uuid4()), app=taskqueue_app))
    assert unknown.state is TaskState.UNKNOWN


def test_wait_for_task_returns_the_final_state_while_the_loop_runs(
    taskqueue_app: Celery,
) -> None:
    """A task reporting progress for a while: the waiter gets its final state, and the
    event loop kept running other coroutines meanwhile."""
    gate = threading.Event()

    @taskqueue_app.task(name="waiting.slow", bind=True, shared=False)
    def slow(self: object, steps: int) -> str:
        for step in range(steps):
            report_progress(self, step, steps)
            gate.wait(0.1)
        return "done"

    result = slow.delay(5)
    with run_worker(taskqueue_app):
        info, ticks = asyncio.run(_ticking(wait_for_task(result.id, app=taskqueue_app, timeout=30)))
    assert isinstance(info, type(get_task_info(result.id, app=taskqueue_app)))
    assert (info.state, info.result) == (TaskState.SUCCEEDED, "done")  # type: ignore[attr-defined]
    assert ticks >= 10  # the 0.5 s task left the loop free to tick


def test_wait_for_task_times_out_and_refuses_unknown_ids(taskqueue_app: Celery) -> None:
    """No worker: TimeoutError after the timeout; an id with no record: TaskNotFound."""

    @taskqueue_app.task(name="waiting.never", shared=False)
    def never() -> None:
        return None

    queued = never.delay()
    with pytest.raises(TimeoutError, match="queued"):
        asyncio.run(wait_for_task(queued.id, app=taskqueue_app, timeout=0.3))
    with pytest.raises(TaskNotFound):
        asyncio.run(wait_for_task(str(uuid.uuid4()), app=taskqueue_app, timeout=5))


def test_cancelling_a_waiter_releases_its_subscription(taskqueue_app: Celery) -> None:
    """On a Redis backend the waiter holds one pub/sub subscription to the task's key while
    it waits and none once cancelled; on the embedded backend its file watch is removed
    from the loop."""

    @taskqueue_app.task(name="waiting.pending", shared=False)
    def pending() -> None:
        return None

    queued = pending.delay()
    key = taskqueue_app.backend.get_key_for_task(queued.id)  # type: ignore[attr-defined]
    client = getattr(taskqueue_app.backend, "client", None)
    on_redis = hasattr(client, "pubsub_numsub")

    def watchers() -> int:
        if on_redis:  # Celery's own result consumer may hold one too: count around it
            return int(dict(client.pubsub_numsub(key))[key])  # type: ignore[union-attr]
        selector = asyncio.get_running_loop()._selector
        return len(selector.get_map())

    async def settled(expected: int) -> int:
        for _ in range(100):  # the server drops a subscription once the command reaches it
            if (found := watchers()) == expected:
                return found
            await asyncio.sleep(0.02)
        return watchers()

    async def scenario() -> tuple[int, int, int]:
        before = watchers()
        waiter = asyncio.create_task(wait_for_task(queued.id, app=taskqueue_app))
        during = await settled(before + 1)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        return before, during, await settled(before)

    before, during, after = asyncio.run(scenario())
    assert (during, after) == (before + 1, before)
