"""Helpers for the web adapter tests: the same HTTP client over FastAPI or Flask, on a real server.

Both adapters are served on a loopback port (uvicorn in a thread for FastAPI, werkzeug's
threaded server for Flask) and driven with httpx, so every behaviour test runs unchanged
against either, through a real HTTP stack.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import _webtasks
import httpx
from celery import Celery
from fastapi import Depends, FastAPI, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from flask import Flask, jsonify, request

from _support import serve, wait_until
from taskqueue_kit import TaskInfo, TaskQueueSettings, TaskState, create_celery
from taskqueue_kit.web.fastapi import task_router
from taskqueue_kit.web.flask import init_app, task_blueprint

ADAPTERS = ("fastapi", "flask")
TOKEN = "s3cret-token"
GREETING = "hello from the Flask config"
WEB_DIR = Path(__file__).parent

# Fast enough for tests to see every step, and quick health answers.
TEST_OPTIONS: dict[str, Any] = {"poll_interval": 0.05, "ping_timeout": 0.25}

_bearer = HTTPBearer(auto_error=False)


def _require_token(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    if credentials is None or credentials.credentials != TOKEN:
        raise HTTPException(
            401, "a bearer token is required", headers={"WWW-Authenticate": "Bearer"}
        )


def _flask_require_token() -> Any:
    auth = request.authorization
    if auth is None or auth.type != "bearer" or auth.token != TOKEN:
        return jsonify(detail="a bearer token is required"), 401
    return None


def make_web_app(kind: str, celery_app: Celery, *, guarded: bool = False, **options: Any) -> Any:
    """A FastAPI or Flask app exposing the test tasks under ``/tasks``."""
    options = {"tasks": _webtasks.EXPOSED, **TEST_OPTIONS, **options}
    if kind == "fastapi":
        api = FastAPI()
        dependencies = [Depends(_require_token)] if guarded else None
        api.include_router(task_router(celery_app, dependencies=dependencies, **options))
        return api
    flask_app = Flask(__name__)
    blueprint = task_blueprint(celery_app, **options)
    if guarded:
        blueprint.before_request(_flask_require_token)
    flask_app.register_blueprint(blueprint)
    return flask_app


@contextlib.contextmanager
def served_client(kind: str, celery_app: Celery, **options: Any) -> Iterator[httpx.Client]:
    """An httpx client on a served web app for ``celery_app``."""
    with (
        serve(kind, make_web_app(kind, celery_app, **options)) as server,
        httpx.Client(base_url=server.base_url, timeout=30) as client,
    ):
        yield client


def wait_for_state(
    client: httpx.Client, task_id: str, *states: TaskState, timeout: float = 20
) -> TaskInfo:
    """Poll ``GET /tasks/{id}`` until the task is in one of ``states``."""

    def reached() -> TaskInfo | None:
        response = client.get(f"/tasks/{task_id}")
        info = TaskInfo.model_validate(response.json()) if response.status_code == 200 else None
        return info if info is not None and info.state in states else None

    found: TaskInfo = wait_until(reached, timeout=timeout, what=f"task {task_id} to be {states}")
    return found


def live_apps(settings: TaskQueueSettings) -> tuple[Celery, FastAPI, Flask]:
    """The Celery, FastAPI and Flask apps a live test serves, built the way a user would."""
    celery_app = create_celery(settings, main="webserve")
    fastapi_app: FastAPI = make_web_app("fastapi", celery_app)
    flask_app: Flask = make_web_app("flask", celery_app)
    flask_app.config["GREETING"] = GREETING
    init_app(flask_app, celery_app)
    return celery_app, fastapi_app, flask_app
