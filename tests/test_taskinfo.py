"""Task info: every state observed with a real worker; always JSON; nothing trusted as code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from taskqueue_kit import (
    InvalidTaskId,
    TaskInfo,
    TaskQueueSettings,
    TaskState,
    get_task_info,
    report_progress,
    retrying_task,
    revoke_task,
)
from taskqueue_kit._results import add_if_absent
from taskqueue_kit.testing import run_worker

pytestmark = pytest.mark.compat


def _wait_for(app: Celery, task_id: str, state: TaskState, timeout: float = 20) -> TaskInfo:
    deadline = time.monotonic() + timeout
    info = get_task_info(task_id, app=app)
    while info.state is not state:
        if time.monotonic() > deadline:
            raise AssertionError(f"{task_id} stayed {info.state}, expected {state}")
        time.sleep(0.02)
        info = get_task_info(task_id, app=app)
    return info


def _until_worker_knows_revoked(app: Celery, task_id: str) -> None:
    """Revokes are broadcast; wait until the worker has it, as a queued task would."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        replies = app.control.inspect(timeout=0.5).revoked() or {}
        if any(task_id in ids for ids in replies.values()):
            return
    raise AssertionError("the worker never acknowledged the revoke")


class PaymentDeclinedError(Exception):
    """A custom error a task raises."""


@pytest.mark.broker
def test_every_state_with_a_real_worker(taskqueue_app: Celery) -> None:
    """unknown, queued, started, progress, retrying, succeeded, failed, revoked are all seen."""
    gate = threading.Event()
    app = taskqueue_app

    @app.task(shared=False, name="blocker", bind=True)
    def blocker(self: Any, with_progress: bool) -> str:
        if with_progress:
            report_progress(self, 3, 10, "resizing")
        gate.wait(20)
        return "done"

    @retrying_task(app=app, name="retrier", retry_on=(ConnectionError,), backoff=60.0, jitter=False)
    def retrier() -> None:
        raise ConnectionError("down")

    @app.task(shared=False, name="fails")
    def fails() -> None:
        raise PaymentDeclinedError("card declined")

    assert get_task_info(uuid.uuid4().hex, app=app).state is TaskState.UNKNOWN
    queued = blocker.delay(False)
    info = get_task_info(queued.id, app=app)
    assert info.state is TaskState.QUEUED
    assert info.name == "blocker"
    assert info.queue == app.conf.task_default_queue

    with run_worker(app, concurrency=2):
        assert _wait_for(app, queued.id, TaskState.STARTED).ready is False
        progressing = blocker.delay(True)
        progress = _wait_for(app, progressing.id, TaskState.PROGRESS).progress
        assert progress is not None
        assert (progress.current, progress.total, progress.percent) == (3, 10, 30.0)
        revoked = blocker.delay(False)  # both slots are busy: this one waits
        revoke_task(app, revoked.id)
        assert get_task_info(revoked.id, app=app).state is TaskState.REVOKED
        _until_worker_knows_revoked(app, revoked.id)
        gate.set()
        assert queued.get(timeout=20) == "done"
        succeeded = _wait_for(app, queued.id, TaskState.SUCCEEDED)
        assert succeeded.result == "done"
        assert succeeded.ready is True
        assert succeeded.date_done is not None
        _wait_for(app, revoked.id, TaskState.REVOKED)
        retrying = _wait_for(app, retrier.delay().id, TaskState.RETRYING)
        assert retrying.error is not None
        assert retrying.error.type == "ConnectionError"
        failed = _wait_for(app, fails.delay().id, TaskState.FAILED)
    assert failed.error is not None
    assert failed.error.type.endswith("PaymentDeclinedError")
    assert failed.error.message == "card declined"
    assert failed.ready is True
    for state in (succeeded, failed, retrying):
        json.dumps(state.model_dump(mode="json"))


def test_unserialisable_result_fails_clearly(embedded_app: Celery) -> None:
    """A task returning something JSON cannot hold ends failed with a readable error."""

    @embedded_app.task(shared=False, name="returns_set")
    def returns_set() -> set[int]:
        return {1, 2}

    with run_worker(embedded_app):
        result = returns_set.delay()
        info = _wait_for(embedded_app, result.id, TaskState.FAILED)
    assert info.error is not None
    assert "JSON" in info.error.message or "serializ" in info.error.message.lower()
    json.dumps(info.model_dump(mode="json"))


def test_forged_failure_record_stays_strings(embedded_app: Celery, tmp_path: Path) -> None:
    """A record naming os/system as exception class is reported as text and runs nothing."""
    marker = tmp_path / "pwned"
    task_id = uuid.uuid4().hex
    add_if_absent(
        embedded_app,
        task_id,
        {
            "status": "FAILURE",
            "result": {
                "exc_type": "system",
                "exc_module": "os",
                "exc_message": [f"touch {marker}"],
            },
            "task_id": task_id,
        },
    )
    other = uuid.uuid4().hex
    add_if_absent(
        embedded_app,
        other,
        {
            "status": "FAILURE",
            "result": {"exc_type": "Browser", "exc_module": "webbrowser", "exc_message": ["x"]},
            "task_id": other,
        },
    )
    info = get_task_info(task_id, app=embedded_app)
    assert info.state is TaskState.FAILED
    assert info.error is not None
    assert info.error.type == "os.system"
    assert info.error.message == f"touch {marker}"
    assert get_task_info(other, app=embedded_app).error is not None
    assert "webbrowser" not in sys.modules
    assert not marker.exists()


@pytest.mark.parametrize("bad", ["", "a" * 256, "abc/def", "id with space", "x\n", "é"])
def test_malformed_ids_are_refused(embedded_app: Celery, bad: str) -> None:
    """Empty, over-long and odd-character ids raise InvalidTaskId, for reads and revokes."""
    with pytest.raises(InvalidTaskId):
        get_task_info(bad, app=embedded_app)
    with pytest.raises(InvalidTaskId):
        revoke_task(embedded_app, bad)


def test_readable_from_another_process(taskqueue_settings: TaskQueueSettings) -> None:
    """A process other than the sender reads the task's state from the shared backend."""
    from taskqueue_kit import create_celery

    app = create_celery(taskqueue_settings)
    result = app.send_task("whatever", args=(1,))
    env = {
        **os.environ,
        "TASKQUEUE_HOME": str(taskqueue_settings.home),
        "TASKQUEUE_DEFAULT_QUEUE": taskqueue_settings.default_queue,
    }
    for key, value in (
        ("TASKQUEUE_BROKER_URL", taskqueue_settings.broker_url),
        ("TASKQUEUE_RESULT_BACKEND", taskqueue_settings.result_backend),
    ):
        if value:
            env[key] = value
    code = (
        "import sys, taskqueue_kit as t\n"
        "app = t.create_celery(t.TaskQueueSettings())\n"
        "print(t.get_task_info(sys.argv[1], app=app).model_dump_json())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, result.id],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=60,
    )
    app.close()
    data = json.loads(out.stdout.strip().splitlines()[-1])
    assert data["state"] == "queued"
    assert data["name"] == "whatever"
