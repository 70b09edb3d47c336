"""The Flask service: the same endpoints and page as the FastAPI one, with a real worker."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from celery import Celery
from flask.testing import FlaskClient

from taskqueue_kit.demo.flask_app import create_app

POSITIVE = "Lovely staff and a beautiful, quiet room."


@pytest.fixture(scope="module")
def client(demo_app: Celery) -> Iterator[FlaskClient]:
    """Flask's test client on the service."""
    with create_app(demo_app).test_client() as test_client:
        yield test_client


def _until_done(client: FlaskClient, path: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        response = client.get(path)
        assert response.status_code == 200, response.get_data(as_text=True)
        body: dict[str, Any] = response.get_json()
        if body["ready"]:
            return body
        assert time.monotonic() < deadline, f"still {body['state']}"
        time.sleep(0.05)


def test_post_polarities_answers_a_task_id_and_the_status_follows(client: FlaskClient) -> None:
    """POST /polarities/ answers 202 and an id; GET /polarities/task/<id> ends with the score."""
    response = client.post("/polarities/", json={"review": POSITIVE})
    assert response.status_code == 202
    accepted = response.get_json()
    task_id = accepted["task_id"]
    assert accepted["status_url"] == f"/polarities/task/{task_id}"
    assert accepted["events_url"] == f"/tasks/{task_id}/events"
    info = _until_done(client, accepted["status_url"])
    assert info["state"] == "succeeded"
    assert info["name"] == "polarity:analyze"
    assert info["result"] > 0


def test_polarity_endpoints_refuse_bad_input(client: FlaskClient) -> None:
    """Non-JSON is 415, an empty review 422, an unknown id 404, a malformed id 422."""
    assert client.post("/polarities/", data="review=hi").status_code == 415
    refused = client.post("/polarities/", json={"review": ""})
    assert refused.status_code == 422
    assert refused.get_json()["detail"][0]["loc"] == ["body", "review"]
    assert client.get("/polarities/task/0f3c9a1e-never-sent").status_code == 404
    assert client.get("/polarities/task/not%20an%20id").status_code == 422


def test_events_stream_of_a_batch_ends_with_every_score(client: FlaskClient) -> None:
    """POST /tasks/polarity:batch; its event stream ends with a succeeded event and the scores."""
    reviews = [POSITIVE, "Broken on arrival and support was useless. Awful."]
    accepted = client.post("/tasks/polarity:batch", json={"reviews": reviews})
    assert accepted.status_code == 202
    stream = client.get(accepted.get_json()["events_url"])  # the stream closes after success
    assert stream.mimetype == "text/event-stream"
    blocks = [block for block in stream.get_data(as_text=True).split("\n\n") if "data: " in block]
    last = dict(line.split(": ", 1) for line in blocks[-1].splitlines())
    assert last["event"] == "succeeded"
    scores = json.loads(last["data"])["result"]
    assert scores[0] > 0 > scores[1]


def test_page_and_static_files(client: FlaskClient) -> None:
    """/ is the progress page and /static serves its script."""
    page = client.get("/")
    assert page.status_code == 200
    assert 'data-tasks-prefix="tasks"' in page.get_data(as_text=True)
    script = client.get("/static/progress.js")
    assert script.status_code == 200
    assert b"EventSource" in script.data
    script.close()
