"""The FastAPI service: the seed's endpoints and the kit's /tasks, with a real worker."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from celery import Celery

from taskqueue_kit.demo.fastapi_app import create_app

from ._serve import serve

NEGATIVE = "Terrible service and the food was awful."


@pytest.fixture(scope="module")
def client(demo_app: Celery) -> Iterator[httpx.Client]:
    """A client of the FastAPI service on a loopback port."""
    with (
        serve(create_app(demo_app)) as base_url,
        httpx.Client(base_url=base_url, timeout=30) as http,
    ):
        yield http


def _until_done(client: httpx.Client, path: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        body: dict[str, Any] = client.get(path).raise_for_status().json()
        if body["ready"]:
            return body
        assert time.monotonic() < deadline, f"still {body['state']}"
        time.sleep(0.05)


def test_post_polarities_answers_a_task_id_and_the_status_follows(client: httpx.Client) -> None:
    """POST /polarities/ answers 202 and an id; GET /polarities/task/{id} ends with the score."""
    response = client.post("/polarities/", json={"review": NEGATIVE})
    assert response.status_code == 202
    accepted = response.json()
    task_id = accepted["task_id"]
    assert accepted["status_url"] == f"/polarities/task/{task_id}"
    assert accepted["events_url"] == f"/tasks/{task_id}/events"
    info = _until_done(client, accepted["status_url"])
    assert info["state"] == "succeeded"
    assert info["name"] == "polarity:analyze"
    assert info["queue"] == "polarity"
    assert info["result"] < 0
    # The kit's router reports on the same task.
    assert client.get(f"/tasks/{task_id}").json()["result"] == info["result"]


def test_seed_endpoints_refuse_bad_input(client: httpx.Client) -> None:
    """Empty or missing reviews are 422; an unknown id is 404; a malformed id is 422."""
    assert client.post("/polarities/", json={"review": ""}).status_code == 422
    assert client.post("/polarities/", json={"text": "wrong field"}).status_code == 422
    assert client.get("/polarities/task/0f3c9a1e-never-sent").status_code == 404
    assert client.get("/polarities/task/not%20an%20id").status_code == 422


def test_events_stream_of_a_batch_ends_with_every_score(client: httpx.Client) -> None:
    """POST /tasks/polarity:batch; its event stream ends with a succeeded event and the scores."""
    reviews = ["A wonderful, friendly place.", NEGATIVE, "Great value."]
    accepted = client.post("/tasks/polarity:batch", json={"reviews": reviews, "chunk_size": 1})
    assert accepted.status_code == 202
    events: list[tuple[str, dict[str, Any]]] = []
    with client.stream("GET", accepted.json()["events_url"]) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        name = ""
        for line in stream.iter_lines():
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((name, json.loads(line.removeprefix("data: "))))
    assert events[-1][0] == "succeeded"
    scores = events[-1][1]["result"]
    assert [score > 0 for score in scores] == [True, False, True]


def test_openapi_page_and_static_files(client: httpx.Client) -> None:
    """/docs lists the seed's and the kit's routes; / is the page; /static serves its script."""
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/polarities/", "/polarities/task/{task_id}", "/tasks/polarity:analyze",
            "/tasks/polarity:batch", "/tasks/{task_id}/events"} <= set(paths)  # fmt: skip
    page = client.get("/")
    assert page.status_code == 200
    assert 'data-tasks-prefix="tasks"' in page.text
    script = client.get("/static/progress.js")
    assert script.status_code == 200
    assert "EventSource" in script.text
