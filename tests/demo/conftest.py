"""Fixtures for the sentiment example: its app on a temporary embedded broker, with a worker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from celery import Celery

from taskqueue_kit import TaskQueueSettings
from taskqueue_kit.demo.celery_app import make_celery
from taskqueue_kit.demo.tasks import QUEUE
from taskqueue_kit.testing import run_worker


@pytest.fixture(scope="module")
def demo_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Celery]:
    """The demo's Celery app with a real in-thread worker on ``polarity``, shared by a module."""
    settings = TaskQueueSettings(
        profile="development",
        broker_url=None,
        result_backend=None,
        home=tmp_path_factory.mktemp("demo") / "taskqueue",
        progress_interval=0.05,
    )
    app = make_celery(settings)
    with run_worker(app, queues=[QUEUE]):
        yield app
    app.close()
