"""As a user runs it: a real web server, a worker in another process, httpx over loopback.

FastAPI runs under uvicorn in its own process; Flask runs under werkzeug's threaded WSGI
server (``werkzeug.serving.make_server``) in a thread of the test. Either way the worker is
a ``celery worker`` process (prefork pool) importing ``_webserve``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
from _webtools import GREETING, WEB_DIR, live_apps, serve
from httpx_sse import connect_sse

from taskqueue_kit import TaskInfo, TaskQueueSettings
from taskqueue_kit.testing import subprocess_worker

pytestmark = [pytest.mark.slow, pytest.mark.broker]


def _environment(settings: TaskQueueSettings) -> dict[str, str]:
    """The settings as the environment variables a deployed service reads."""
    env = {
        "TASKQUEUE_HOME": str(settings.home),
        "TASKQUEUE_DEFAULT_QUEUE": settings.default_queue,
        "TASKQUEUE_PROGRESS_INTERVAL": str(settings.progress_interval),
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(WEB_DIR), str(WEB_DIR.parent), os.environ.get("PYTHONPATH")])
        ),
    }
    if settings.broker_url:
        env["TASKQUEUE_BROKER_URL"] = settings.broker_url
    if settings.result_backend:
        env["TASKQUEUE_RESULT_BACKEND"] = settings.result_backend
    return env


@pytest.fixture
def worker(taskqueue_settings: TaskQueueSettings) -> Iterator[dict[str, str]]:
    """A `celery worker` process for the test's settings; yields the environment it runs in."""
    env = _environment(taskqueue_settings)
    with subprocess_worker("_webserve:celery_app", env=env, cwd=WEB_DIR, concurrency=2):
        yield env


@contextlib.contextmanager
def _uvicorn(env: dict[str, str]) -> Iterator[str]:
    """uvicorn in its own process on a socket bound here, so the port is never raced for."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    base_url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    command = [
        sys.executable, "-m", "uvicorn", "_webserve:fastapi_app", "--fd", str(listener.fileno()),
        "--log-level", "warning", "--ws", "none", "--lifespan", "off",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=WEB_DIR, env={**os.environ, **env}, pass_fds=(listener.fileno(),)
    )
    listener.close()  # the server process holds its own copy
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base_url}/openapi.json", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"uvicorn did not start (exit code {process.poll()})")
            time.sleep(0.1)
        yield base_url
    finally:
        process.terminate()
        process.wait(15)


def _full_loop(client: httpx.Client) -> None:
    """Enqueue, watch the events to the end, read the result; then the Flask-context task."""
    accepted = client.post("/tasks/webtest.count", json={"steps": 4, "pause": 0.1})
    assert accepted.status_code == 202
    links = accepted.json()
    with connect_sse(client, "GET", links["events_url"]) as source:
        events = [(e.event, TaskInfo.model_validate_json(e.data)) for e in source.iter_sse()]
    assert events[-1][0] == "succeeded"
    assert any(info.progress is not None for _, info in events)
    result = client.get(links["status_url"]).json()
    assert (result["state"], result["result"]) == ("succeeded", 4)

    greeting = client.post("/tasks/webtest.config_value", json={"key": "GREETING"}).json()
    with connect_sse(client, "GET", greeting["events_url"]) as source:
        *_, last = source.iter_sse()
    assert TaskInfo.model_validate_json(last.data).result == GREETING


@pytest.mark.parametrize("taskqueue_broker", ["sqlite"], indirect=True)
def test_fastapi_under_uvicorn_with_a_worker_process(worker: dict[str, str]) -> None:
    """uvicorn and a worker, each in its own process, run the whole loop over HTTP."""
    started = time.monotonic()
    with _uvicorn(worker) as base_url, httpx.Client(base_url=base_url, timeout=30) as client:
        _full_loop(client)
    print(f"full loop under uvicorn in {time.monotonic() - started:.2f} s")


@pytest.mark.parametrize("taskqueue_broker", ["sqlite"], indirect=True)
def test_flask_under_werkzeug_with_a_worker_process(
    worker: dict[str, str], taskqueue_settings: TaskQueueSettings
) -> None:
    """A threaded WSGI server and a worker process run the loop, tasks in the Flask app context."""
    celery_app, _, flask_app = live_apps(taskqueue_settings)
    try:
        with (
            serve("flask", flask_app) as server,
            httpx.Client(base_url=server.base_url, timeout=30) as client,
        ):
            _full_loop(client)
    finally:
        celery_app.close()
