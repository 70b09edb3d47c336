"""Tests of myservice: a real worker in a thread, on a throwaway embedded broker."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from myservice.api import api
from myservice.tasks import analyze, app
from myservice.webapp import flask_app

from taskqueue_kit import get_task_info
from taskqueue_kit.testing import run_worker

AUTH = {"Authorization": "Bearer test-token"}
BODY = {"reviews": ["great product", "arrived broken"]}


def call_api(method: str, path: str, **kwargs: Any) -> httpx.Response:
    """One request to the FastAPI app, in process (no server, no port)."""

    async def request() -> httpx.Response:
        transport = httpx.ASGITransport(app=api)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.request(method, path, **kwargs)

    return asyncio.run(request())


def test_analyze_scores_each_review() -> None:
    """The task runs on a real worker and its result reads back as JSON."""
    with run_worker(app):
        result = analyze.delay(BODY["reviews"])
        assert result.get(timeout=30) == [0.5, -0.5]
    info = get_task_info(result.id, app=app)
    assert info.state == "succeeded"
    assert info.queue == "polarity"


def test_fastapi_sends_the_task_and_reports_it() -> None:
    """POST answers 202 with a status URL that ends up showing the result."""
    with run_worker(app):
        accepted = call_api("POST", "/tasks/polarity:analyze", json=BODY, headers=AUTH)
        assert accepted.status_code == 202
        app.AsyncResult(accepted.json()["task_id"]).get(timeout=30)
    status = call_api("GET", accepted.json()["status_url"], headers=AUTH)
    assert status.json()["state"] == "succeeded"
    assert status.json()["result"] == [0.5, -0.5]


def test_flask_sends_the_task() -> None:
    """The blueprint answers 202 with the same links as the FastAPI router."""
    response = flask_app.test_client().post("/tasks/polarity:analyze", json=BODY, headers=AUTH)
    assert response.status_code == 202
    accepted = response.get_json()
    assert accepted["status_url"] == f"/tasks/{accepted['task_id']}"


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}])
def test_both_apps_refuse_a_missing_or_wrong_token(headers: dict[str, str]) -> None:
    """Without the right token nothing is sent, over FastAPI or Flask."""
    fastapi_answer = call_api("POST", "/tasks/polarity:analyze", json=BODY, headers=headers)
    flask_answer = flask_app.test_client().post(
        "/tasks/polarity:analyze", json=BODY, headers=headers
    )
    assert (fastapi_answer.status_code, flask_answer.status_code) == (401, 401)
