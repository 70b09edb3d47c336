"""The FastAPI service: the original service's endpoints and the kit's /tasks, with a worker."""

from __future__ import annotations

import asyncio
import json
import re
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


def test_polarity_endpoints_refuse_bad_input(client: httpx.Client) -> None:
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
    """The schema lists the original endpoints and the kit's; / is the page; /static its script."""
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/polarities/", "/polarities/task/{task_id}", "/tasks/polarity:analyze",
            "/tasks/polarity:batch", "/tasks/{task_id}/events"} <= set(paths)  # fmt: skip
    page = client.get("/")
    assert page.status_code == 200
    assert 'data-tasks-prefix="tasks"' in page.text
    script = client.get("/static/progress.js")
    assert script.status_code == 200
    assert "EventSource" in script.text


@pytest.mark.parametrize(("page", "title"), [("/docs", "Swagger UI"), ("/redoc", "ReDoc")])
def test_docs_pages_load_everything_from_the_service(
    client: httpx.Client, page: str, title: str
) -> None:
    """/docs and /redoc name no other host: each script, style sheet and icon is served here."""
    html = client.get(page)
    assert html.status_code == 200
    assert f"<title>Sentiment analysis with taskqueue-kit - {title}</title>" in html.text
    assert "fonts.googleapis.com" not in html.text
    urls = re.findall(r"""(?:src|href)=["']([^"']+)["']|url: ?["']([^"']+)["']""", html.text)
    assets = [url for pair in urls for url in pair if url]
    assert assets, html.text
    assert all(url.startswith("/") and not url.startswith("//") for url in assets), assets
    for url in assets:
        assert client.get(url).status_code == 200, url


def test_docs_follow_the_root_path(demo_app: Celery) -> None:
    """Behind a proxy that mounts the service under a path, /docs asks for assets under it."""

    async def docs_page() -> str:
        transport = httpx.ASGITransport(app=create_app(demo_app), root_path="/reviews")
        async with httpx.AsyncClient(transport=transport, base_url="http://proxy") as http:
            return (await http.get("/reviews/docs")).raise_for_status().text

    html = asyncio.run(docs_page())
    assert "'/reviews/openapi.json'" in html
    assert '"/reviews/docs-assets/swagger-ui-bundle.js"' in html
