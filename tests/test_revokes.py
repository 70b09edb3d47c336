"""Revokes that hold: a task revoked while no worker ran never runs on a worker started later,
and a final state never changes afterwards."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from celery import Celery

from taskqueue_kit import TaskState, get_task_info, revoke_task
from taskqueue_kit._compat.celery import revoked_ids
from taskqueue_kit._revokes import LoadRevokes, record, recorded
from taskqueue_kit.testing import run_worker

pytestmark = pytest.mark.compat


def test_every_kit_app_loads_recorded_revokes(taskqueue_app: Celery) -> None:
    """init_celery adds the bootstep that reads the recorded revokes when a worker starts."""
    assert LoadRevokes in taskqueue_app.steps["consumer"]


def test_a_recorded_revoke_reads_back_until_it_expires(taskqueue_app: Celery) -> None:
    """The kit's backend and Redis keep the revoked ids, each until result_expires is past."""
    task_id = str(uuid.uuid4())
    assert record(taskqueue_app, task_id) is True
    assert task_id in recorded(taskqueue_app)
    taskqueue_app.conf.result_expires = 0.05
    short = str(uuid.uuid4())
    record(taskqueue_app, short)
    time.sleep(0.2)
    assert short not in recorded(taskqueue_app)
    assert task_id in recorded(taskqueue_app)


def test_a_task_revoked_while_no_worker_ran_never_runs(taskqueue_app: Celery) -> None:
    """Sent, revoked with no worker up, then a worker starts: the task is skipped, the task
    behind it runs, and the revoked one reads revoked throughout."""
    ran: list[str] = []

    @taskqueue_app.task(name="revokes.note", shared=False)
    def note(token: str) -> str:
        ran.append(token)
        return token

    doomed = note.delay("doomed")
    revoke_task(taskqueue_app, doomed.id)
    # No worker heard the broadcast: this process's revoked list does not have it yet.
    assert doomed.id not in revoked_ids()
    behind = note.delay("behind")
    with run_worker(taskqueue_app):
        assert behind.get(timeout=30) == "behind"
    assert ran == ["behind"]
    assert get_task_info(doomed.id, app=taskqueue_app).state is TaskState.REVOKED


def test_revoking_a_running_task_never_turns_revoked_into_succeeded(
    taskqueue_app: Celery,
) -> None:
    """A running task goes on after a revoke (no terminate): it reads started, then
    succeeded; it never reads revoked and then something else."""
    gate = threading.Event()
    started = threading.Event()

    @taskqueue_app.task(name="revokes.gated", shared=False)
    def gated() -> str:
        started.set()
        gate.wait(30)
        return "finished"

    with run_worker(taskqueue_app):
        running = gated.delay()
        assert started.wait(30)
        deadline = time.monotonic() + 10
        while get_task_info(running.id, app=taskqueue_app).state is not TaskState.STARTED:
            assert time.monotonic() < deadline, "the task never read started"
            time.sleep(0.02)
        revoke_task(taskqueue_app, running.id)
        assert get_task_info(running.id, app=taskqueue_app).state is TaskState.STARTED
        gate.set()
        assert running.get(timeout=30) == "finished"
    assert get_task_info(running.id, app=taskqueue_app).state is TaskState.SUCCEEDED
