"""Suite-wide setup: the broker fixtures run on sqlite, this machine's RabbitMQ and its Redis."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery
from tests._support import APP_MAKERS, make_app

from taskqueue_kit import TaskQueueSettings
from taskqueue_kit.testing import unique_name

os.environ.setdefault("TASKQUEUE_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
os.environ.setdefault("TASKQUEUE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def pytest_configure(config: pytest.Config) -> None:
    """Ask for all three brokers, so under CI a missing one fails; the command line or ini wins."""
    if config.getoption("taskqueue_brokers") is None and not config.getini("taskqueue_brokers"):
        config.option.taskqueue_brokers = "sqlite,amqp,redis"


@pytest.fixture(params=APP_MAKERS)
def app_maker(request: pytest.FixtureRequest) -> str:
    """Each way of making a kit app in turn."""
    return str(request.param)


@pytest.fixture
def taskqueue_app(taskqueue_settings: TaskQueueSettings, app_maker: str) -> Iterator[Celery]:
    """The plugin's app on the broker under test, made each way in turn."""
    app = make_app(app_maker, taskqueue_settings, f"test_{unique_name('app')}")
    yield app
    app.close()


@pytest.fixture
def embedded_app(tmp_path: Path, app_maker: str) -> Iterator[Celery]:
    """An app on the embedded SQLite default, for behaviour that does not depend on the broker."""
    settings = TaskQueueSettings(
        home=tmp_path / "taskqueue", default_queue=unique_name("default"), progress_interval=0.05
    )
    app = make_app(app_maker, settings, "embedded")
    yield app
    app.close()
