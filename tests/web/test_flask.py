"""Only the Flask adapter: tasks in the app context, streams that end with their client."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import _webtasks
import httpx
import pytest
from _webtools import serve, wait_for_state, wait_until
from celery import Celery
from flask import Flask
from httpx_sse import connect_sse

from taskqueue_kit import TaskInfo, TaskQueueSettings, TaskState, create_celery
from taskqueue_kit.testing import run_worker, unique_name
from taskqueue_kit.web import _core
from taskqueue_kit.web.flask import init_app, task_blueprint

pytestmark = pytest.mark.compat


def _flask_app(celery_app: Celery, *, with_context: bool, **options: float) -> Flask:
    flask_app = Flask(__name__)
    flask_app.config["GREETING"] = "hello from the Flask config"
    if with_context:
        init_app(flask_app, celery_app)
    flask_app.register_blueprint(
        task_blueprint(celery_app, tasks=_webtasks.EXPOSED, poll_interval=0.05, **options)
    )
    return flask_app


def test_init_app_runs_tasks_in_the_flask_app_context(embedded_app: Celery) -> None:
    """With init_app, a task reading `current_app.config` works in the worker."""
    flask_app = _flask_app(embedded_app, with_context=True)
    init_app(flask_app, embedded_app)  # a second call changes nothing
    with serve("flask", flask_app) as server, httpx.Client(base_url=server.base_url) as client:
        task_id = client.post("/tasks/webtest.config_value", json={"key": "GREETING"}).json()[
            "task_id"
        ]
        with run_worker(embedded_app):
            info = wait_for_state(client, task_id, TaskState.SUCCEEDED, TaskState.FAILED)
    assert (info.state, info.result) == (TaskState.SUCCEEDED, "hello from the Flask config")


def test_init_app_for_two_flask_apps_gives_each_its_own_context(tmp_path: Path) -> None:
    """Two Flask apps, each with its Celery app: each task sees its own Flask app's config."""
    servers = []
    for name in ("first", "second"):
        celery_app = create_celery(
            TaskQueueSettings(home=tmp_path / name, default_queue=unique_name(name)),
            main=name,
        )
        flask_app = _flask_app(celery_app, with_context=True)
        flask_app.config["GREETING"] = f"hello from {name}"
        servers.append((celery_app, flask_app))
    for celery_app, flask_app in servers:
        with (
            serve("flask", flask_app) as server,
            httpx.Client(base_url=server.base_url) as client,
        ):
            task_id = client.post("/tasks/webtest.config_value", json={"key": "GREETING"}).json()[
                "task_id"
            ]
            with run_worker(celery_app):
                info = wait_for_state(client, task_id, TaskState.SUCCEEDED, TaskState.FAILED)
        assert (info.state, info.result) == (TaskState.SUCCEEDED, flask_app.config["GREETING"])
        celery_app.close()


def test_without_init_app_tasks_have_no_app_context(embedded_app: Celery) -> None:
    """The same task fails outside the app context: init_app is what provides it."""
    flask_app = _flask_app(embedded_app, with_context=False)
    with serve("flask", flask_app) as server, httpx.Client(base_url=server.base_url) as client:
        task_id = client.post("/tasks/webtest.config_value", json={"key": "GREETING"}).json()[
            "task_id"
        ]
        with run_worker(embedded_app):
            info = wait_for_state(client, task_id, TaskState.SUCCEEDED, TaskState.FAILED)
    assert info.state is TaskState.FAILED
    assert info.error is not None
    assert "application context" in info.error.message


def test_stream_ends_when_the_client_leaves(
    embedded_app: Celery, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A gone client is noticed at the next write, which the heartbeat makes soon; polling stops."""
    reads = 0
    lock = threading.Lock()
    original = _core.read_task

    def counted(app: Celery, task_id: str) -> TaskInfo:
        nonlocal reads
        with lock:
            reads += 1
        return original(app, task_id)

    monkeypatch.setattr(_core, "read_task", counted)
    flask_app = _flask_app(embedded_app, with_context=False, heartbeat=0.1)
    with serve("flask", flask_app) as server:
        with httpx.Client(base_url=server.base_url) as client:
            task_id = client.post("/tasks/webtest.add", json={"x": 1, "y": 2}).json()["task_id"]
            with connect_sse(client, "GET", f"/tasks/{task_id}/events") as source:
                stream = source.iter_sse()
                assert next(stream).event == "queued"
                before = reads
                wait_until(lambda: reads > before + 5, what="the stream to poll")

        def settled() -> bool:
            seen = reads
            time.sleep(0.5)
            return reads == seen

        wait_until(settled, timeout=10, what="the server to stop reading")
