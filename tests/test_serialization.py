"""Safe serialization: a pickle message is refused by the worker and its body never runs."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from kombu import Producer

from taskqueue_kit import TaskQueueSettings, TaskState, create_celery, get_task_info
from taskqueue_kit.testing import run_worker


class _RunsCommand:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.broker
def test_pickle_message_is_rejected(taskqueue_app: Celery, tmp_path: Path) -> None:
    """A pickled task message published around the kit is discarded; the task never runs."""
    ran: list[Any] = []
    marker = tmp_path / "pwned"

    @taskqueue_app.task(shared=False, name="victim")
    def victim(payload: Any) -> None:
        ran.append(payload)

    @taskqueue_app.task(shared=False, name="after")
    def after() -> str:
        return "ok"

    task_id = uuid.uuid4().hex
    message = taskqueue_app.amqp.as_task_v2(task_id, "victim", args=(_RunsCommand(marker),))
    queue = taskqueue_app.amqp.queues[taskqueue_app.conf.task_default_queue]
    with taskqueue_app.connection_for_write() as connection:
        Producer(connection.default_channel).publish(
            message.body,
            serializer="pickle",
            headers=message.headers,
            exchange=queue.exchange,
            routing_key=queue.routing_key,
            declare=[queue],
            **message.properties,
        )
    with run_worker(taskqueue_app):
        assert after.delay().get(timeout=20) == "ok"  # same queue, FIFO: the pickle came first
    assert ran == []
    assert not marker.exists()
    assert get_task_info(task_id, app=taskqueue_app).state is TaskState.UNKNOWN


def test_allow_pickle_round_trips(tmp_path: Path) -> None:
    """With allow_pickle=True a task accepts arguments only pickle can carry."""
    app = create_celery(TaskQueueSettings(home=tmp_path, allow_pickle=True))

    @app.task(shared=False, name="pair")
    def pair(values: frozenset[int]) -> list[int]:
        assert isinstance(values, frozenset)
        return sorted(values)

    with run_worker(app):
        assert pair.delay(frozenset({2, 1})).get(timeout=20) == [1, 2]
