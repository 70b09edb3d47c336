"""Suite-wide setup: point the broker fixtures at this machine's RabbitMQ and Redis by default."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery

from taskqueue_kit import TaskQueueSettings, create_celery
from taskqueue_kit.testing import unique_name

os.environ.setdefault("TASKQUEUE_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
os.environ.setdefault("TASKQUEUE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def embedded_app(tmp_path: Path) -> Iterator[Celery]:
    """An app on the embedded SQLite default, for behaviour that does not depend on the broker."""
    settings = TaskQueueSettings(
        home=tmp_path / "taskqueue", default_queue=unique_name("default"), progress_interval=0.05
    )
    app = create_celery(settings, main="embedded")
    yield app
    app.close()
