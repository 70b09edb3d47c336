"""Only the FastAPI adapter: OpenAPI, a free event loop, streams that end with their client."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import _webtasks
import httpx
import pytest
import schemathesis
from _webtools import make_web_app, serve, wait_until
from celery import Celery
from fastapi import Depends, FastAPI, Request
from httpx_sse import connect_sse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from taskqueue_kit import TaskInfo, TaskQueueSettings, create_celery
from taskqueue_kit.testing import unique_name
from taskqueue_kit.web import _core
from taskqueue_kit.web.fastapi import task_router

pytestmark = pytest.mark.compat

# -- OpenAPI --------------------------------------------------------------------------


def _openapi(app: Celery) -> dict[str, Any]:
    api: FastAPI = make_web_app("fastapi", app)
    return api.openapi()


def _body_schema(spec: dict[str, Any], path: str) -> dict[str, Any]:
    ref = spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"][
        "$ref"
    ]
    schema: dict[str, Any] = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return schema


def test_openapi_lists_each_exposed_task_with_its_body_model(embedded_app: Celery) -> None:
    """Each exposed task, and only those, has a POST with its body model (no `self` if bound)."""
    spec = _openapi(embedded_app)
    posts = sorted(path for path, ops in spec["paths"].items() if "post" in ops)
    exposed = sorted(f"/tasks/{task.name}" for task in _webtasks.EXPOSED)
    assert posts == sorted(exposed + [f"{path}/batch" for path in exposed])
    add = _body_schema(spec, "/tasks/webtest.add")
    assert spec["paths"]["/tasks/webtest.add"]["post"]["requestBody"]["required"] is True
    assert add["properties"]["x"]["type"] == add["properties"]["y"]["type"] == "integer"
    assert sorted(add["required"]) == ["x", "y"]
    assert add["description"] == "Add two numbers."
    count = _body_schema(spec, "/tasks/webtest.count")
    assert set(count["properties"]) == {"steps", "pause"}
    batch = _body_schema(spec, "/tasks/webtest.add/batch")
    assert batch["properties"]["items"]["items"]["$ref"].endswith("/WebtestAddArguments")
    accepted = spec["paths"]["/tasks/webtest.add"]["post"]["responses"]["202"]
    assert accepted["content"]["application/json"]["schema"]["$ref"].endswith("/TaskAccepted")
    assert (
        "text/event-stream"
        in spec["paths"]["/tasks/{task_id}/events"]["get"]["responses"]["200"]["content"]
    )


def test_links_follow_an_outer_prefix(embedded_app: Celery) -> None:
    """Included under another prefix, the router's links still point at its own routes."""
    api = FastAPI()
    api.include_router(task_router(embedded_app, tasks=[_webtasks.add]), prefix="/api/v1")
    with serve("fastapi", api) as server, httpx.Client(base_url=server.base_url) as client:
        links = client.post("/api/v1/tasks/webtest.add", json={"x": 1, "y": 2}).json()
        assert links["status_url"] == f"/api/v1/tasks/{links['task_id']}"
        assert client.get(links["status_url"]).json()["state"] == "queued"


def test_a_dependency_reads_the_parsed_body(embedded_app: Celery) -> None:
    """`await request.json()` in a dependency gets the parsed body, and the task is sent."""
    seen: list[Any] = []

    async def audit(request: Request) -> None:
        seen.append(await request.json())

    api = FastAPI()
    api.include_router(
        task_router(embedded_app, tasks=[_webtasks.add], dependencies=[Depends(audit)])
    )
    with serve("fastapi", api) as server, httpx.Client(base_url=server.base_url) as client:
        assert client.post("/tasks/webtest.add", json={"x": 1, "y": 2}).status_code == 202
    assert seen == [{"x": 1, "y": 2}]


def test_more_concurrent_sends_than_send_concurrency_all_succeed(embedded_app: Celery) -> None:
    """Sends beyond the limit wait for a thread instead of failing; every id is recorded."""
    api = FastAPI()
    api.include_router(task_router(embedded_app, tasks=[_webtasks.add], send_concurrency=2))

    async def post_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=server.base_url) as client:
            posts = [client.post("/tasks/webtest.add", json={"x": i, "y": 1}) for i in range(24)]
            return await asyncio.gather(*posts)

    with serve("fastapi", api) as server:
        answers = asyncio.run(post_all())
    assert [answer.status_code for answer in answers] == [202] * 24
    ids = {answer.json()["task_id"] for answer in answers}
    assert len(ids) == 24
    assert {_core.task_info(embedded_app, task_id).state for task_id in ids} == {"queued"}


@pytest.mark.parametrize("bad", [0, -1])
def test_send_concurrency_below_one_is_refused(embedded_app: Celery, bad: int) -> None:
    """A router that could never send is refused when it is built, naming the option."""
    with pytest.raises(ValueError, match="send_concurrency"):
        task_router(embedded_app, tasks=[_webtasks.add], send_concurrency=bad)


# -- schemathesis ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def served_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The FastAPI test app on the embedded broker, served once for the whole schema run."""
    settings_ = TaskQueueSettings(
        home=tmp_path_factory.mktemp("schemathesis"), default_queue=unique_name("st")
    )
    app = create_celery(settings_, main="schemathesis")
    with serve("fastapi", make_web_app("fastapi", app, ping_timeout=0.1)) as server:
        yield server.base_url
    app.close()


def _schema_run(base_url: str) -> Any:
    spec = httpx.get(f"{base_url}/openapi.json").json()
    operations = [
        result.ok() for result in schemathesis.openapi.from_dict(spec).get_all_operations()
    ]
    modes = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    cases = st.one_of([operation.as_strategy(mode) for operation in operations for mode in modes])

    @settings(
        max_examples=100, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(case=cases)
    def run(case: Any) -> None:
        case.call_and_validate(base_url=base_url, checks=[not_a_server_error], timeout=30)

    return run


def test_no_generated_request_gets_a_5xx(served_api: str) -> None:
    """Requests generated from the OpenAPI document, valid and invalid, never get a server error."""
    _schema_run(served_api)()


# -- the event loop and disconnects, on a real uvicorn server -------------------------


@pytest.fixture
def quiet_app(tmp_path: Path) -> Iterator[Celery]:
    """An app with no worker: whatever is sent stays queued, so its streams stay open."""
    settings_ = TaskQueueSettings(home=tmp_path / "home", default_queue=unique_name("quiet"))
    app = create_celery(settings_, main="quiet")
    yield app
    app.close()


class _CountingReads:
    """Counts the status reads event streams make, to see when watching stops."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        self._lock = threading.Lock()
        original = _core.read_task

        def counted(app: Celery, task_id: str) -> TaskInfo:
            with self._lock:
                self.count += 1
            return original(app, task_id)

        monkeypatch.setattr(_core, "read_task", counted)

    def settled(self, quiet: float = 0.5) -> bool:
        """True when no read happened for ``quiet`` seconds (ten poll intervals)."""
        before = self.count
        time.sleep(quiet)
        return self.count == before


def _tasks_on(loop: asyncio.AbstractEventLoop) -> int:
    async def count() -> int:
        return len(asyncio.all_tasks())

    return asyncio.run_coroutine_threadsafe(count(), loop).result(5)


def test_open_streams_do_not_block_other_requests(
    quiet_app: Celery, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With eight event streams open and polling, other requests answer promptly."""
    reads = _CountingReads(monkeypatch)
    with (
        serve("fastapi", make_web_app("fastapi", quiet_app)) as server,
        httpx.Client(base_url=server.base_url, timeout=10) as client,
    ):
        ids = [
            client.post("/tasks/webtest.add", json={"x": i, "y": 0}).json()["task_id"]
            for i in range(8)
        ]
        with contextlib.ExitStack() as stack:
            streams = []
            for task_id in ids:
                source = stack.enter_context(connect_sse(client, "GET", f"/tasks/{task_id}/events"))
                streams.append(source.iter_sse())  # kept: dropping it would close the stream
                assert next(streams[-1]).event == "queued"
            polled_before = reads.count
            slowest = 0.0
            for task_id in ids * 3:
                started = time.monotonic()
                assert client.get(f"/tasks/{task_id}").json()["state"] == "queued"
                slowest = max(slowest, time.monotonic() - started)
            wait_until(
                lambda: reads.count > polled_before + 8 * 3, what="every stream to keep polling"
            )
    print(f"slowest status answer with 8 streams open: {slowest * 1000:.0f} ms")
    assert slowest < 2.0


def test_a_client_that_leaves_stops_the_watching(
    quiet_app: Celery, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Closing the connection cancels the stream: its reads stop and its asyncio tasks end."""
    reads = _CountingReads(monkeypatch)
    with serve("fastapi", make_web_app("fastapi", quiet_app)) as server:
        assert server.loop is not None
        with httpx.Client(base_url=server.base_url, timeout=10) as client:
            task_id = client.post("/tasks/webtest.add", json={"x": 1, "y": 2}).json()["task_id"]
            # A first stream, so that per-loop helpers (sse-starlette's shutdown watcher) exist.
            with connect_sse(client, "GET", f"/tasks/{task_id}/events") as source:
                stream = source.iter_sse()
                next(stream)
        wait_until(reads.settled, what="the first stream to stop reading")
        baseline = _tasks_on(server.loop)

        with (
            httpx.Client(base_url=server.base_url, timeout=10) as client,
            connect_sse(client, "GET", f"/tasks/{task_id}/events") as source,
        ):
            stream = source.iter_sse()
            assert next(stream).event == "queued"
            before = reads.count
            wait_until(lambda: reads.count >= before + 5, what="the stream to poll")
            assert _tasks_on(server.loop) > baseline
        # The client has closed its connection.
        wait_until(reads.settled, timeout=10, what="the server to stop reading")
        wait_until(
            lambda: _tasks_on(server.loop) <= baseline, timeout=10, what="stream tasks to end"
        )


def test_unknown_id_stream_is_404_before_streaming(quiet_app: Celery) -> None:
    """An event stream for an id never sent is refused with 404, not opened."""
    with serve("fastapi", make_web_app("fastapi", quiet_app)) as server:
        response = httpx.get(f"{server.base_url}/tasks/{uuid.uuid4()}/events")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
