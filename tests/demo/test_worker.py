"""The demo's worker process reads exactly the settings of the process that sends its tasks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from taskqueue_kit import TaskQueueSettings
from taskqueue_kit.demo._worker import worker_environment


def test_worker_environment_rebuilds_the_same_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Settings written as TASKQUEUE_* variables read back equal, seed variables and .env aside."""
    settings = TaskQueueSettings(
        broker_url=None,
        result_backend="redis://127.0.0.1:6379/3",
        home=tmp_path / "data",
        queues=("polarity", "mail"),
        task_time_limit=30.0,
        send_events=True,
        broker_transport_options={"visibility_timeout": 60, "polling_interval": 0.1},
    )
    (tmp_path / ".env").write_text("TASKQUEUE_BROKER_URL=amqp://elsewhere//\n")
    base = {"CELERY_BROKER_URL": "amqp://seed//", "CELERY_CONFIG": "production", "PATH": "/bin"}
    env = worker_environment(settings, base)
    assert "CELERY_BROKER_URL" not in env
    assert "CELERY_CONFIG" not in env
    assert env["PATH"] == "/bin"
    monkeypatch.chdir(tmp_path)  # where the .env file would mislead the worker
    for key in [key for key in os.environ if key.startswith(("TASKQUEUE_", "CELERY_"))]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    rebuilt = TaskQueueSettings()
    assert rebuilt.model_dump() == settings.model_dump()
    assert rebuilt.effective_broker_url == settings.effective_broker_url
