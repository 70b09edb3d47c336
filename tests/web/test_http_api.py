"""The HTTP contract of section 6, run unchanged against the FastAPI and the Flask adapter.

Every test is parametrised over the adapter. What rests on the broker (sending, events,
groups, revoke, the worker ping) is one lifecycle test run on each broker, sharing one
worker, since starting and stopping a worker is most of a test's time.
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from _webtools import served_client, wait_for_state, wait_until
from celery import Celery
from httpx_sse import connect_sse

from taskqueue_kit import TaskInfo, TaskQueueSettings, TaskState, create_celery
from taskqueue_kit.testing import run_worker

pytestmark = pytest.mark.compat

ADD = "/tasks/webtest.add"
NAP = "/tasks/webtest.nap"


def _events(client: httpx.Client, url: str) -> list[tuple[str, TaskInfo]]:
    with connect_sse(client, "GET", url) as source:
        assert source.response.headers["content-type"].startswith("text/event-stream")
        return [(e.event, TaskInfo.model_validate_json(e.data)) for e in source.iter_sse()]


# -- the whole loop, on each broker ----------------------------------------------------


def _watch_from_queued_to_the_end(
    client: httpx.Client, app: Celery, marker: Path
) -> list[tuple[str, TaskInfo]]:
    """Send a task, open its stream before any worker runs, then start one and read on."""
    accepted = client.post("/tasks/webtest.count", json={"steps": 3, "pause": 0.2})
    assert accepted.status_code == 202
    links = accepted.json()
    task_id = links["task_id"]
    assert (links["status_url"], links["events_url"]) == (
        f"/tasks/{task_id}",
        f"/tasks/{task_id}/events",
    )
    with connect_sse(client, "GET", links["events_url"]) as source:
        stream = source.iter_sse()
        first = next(stream)
        assert first.event == "queued"  # no worker yet: the task waits in its queue
        with run_worker(app, concurrency=1) as worker:
            rest = [(e.event, TaskInfo.model_validate_json(e.data)) for e in stream]
            _batch_revoke_and_health(client, worker.hostname, marker)
    return rest


def _batch_revoke_and_health(client: httpx.Client, hostname: str, marker: Path) -> None:
    """A batch aggregates, a revoked queued task never runs, health names the worker."""
    batch = client.post(
        f"{ADD}/batch", json={"items": [{"x": i, "y": i} for i in range(10)]}
    ).json()
    done = wait_until(
        lambda: (g := client.get(batch["status_url"]).json())["ready"] and g, what="the batch"
    )
    assert (done["state"], done["completed"], done["counts"]) == (
        "succeeded",
        10,
        {"succeeded": 10},
    )
    assert [task["result"] for task in done["tasks"]] == [2 * i for i in range(10)]

    busy = client.post("/tasks/webtest.nap", json={"seconds": 0.6}).json()["task_id"]
    wait_for_state(client, busy, TaskState.STARTED)
    queued = client.post("/tasks/webtest.touch", json={"path": str(marker)}).json()
    revoked = client.delete(queued["status_url"])
    assert (revoked.status_code, revoked.json()["task_id"]) == (202, queued["task_id"])
    assert wait_for_state(client, queued["task_id"], TaskState.REVOKED).ready
    wait_for_state(client, busy, TaskState.SUCCEEDED)
    assert not marker.exists()

    health = client.get("/tasks/health")
    assert health.status_code == 200
    report = health.json()
    assert (report["ok"], report["broker"]["ok"], report["backend"]["ok"]) == (True, True, True)
    assert hostname in report["workers"]  # a shared broker may also hold others' workers


@pytest.mark.broker
def test_lifecycle_on_each_broker(
    broker_api: httpx.Client, taskqueue_app: Celery, tmp_path: Path
) -> None:
    """On every broker: 202, events queued to succeeded with a moving bar, result, batch, revoke."""
    events = _watch_from_queued_to_the_end(broker_api, taskqueue_app, tmp_path / "ran")
    names = [name for name, _ in events]
    assert names[0] == "started"
    assert names[-1] == "succeeded"
    percents = [info.progress.percent for _, info in events if info.progress is not None]
    assert len(percents) >= 2  # the bar moves in steps
    assert percents == sorted(percents)
    assert all(a != b for a, b in itertools.pairwise(events))  # one event per change
    info = broker_api.get(f"/tasks/{events[-1][1].task_id}").json()
    assert (info["state"], info["result"]) == ("succeeded", 3)
    assert taskqueue_app.conf.task_default_queue in broker_api.get("/tasks/health").json()["queues"]


# -- sending one task -----------------------------------------------------------------


def test_the_202_answers_are_exactly_the_documented_json(shared_api: httpx.Client) -> None:
    """One task and a batch: JSON with just the documented fields, paths under the prefix."""
    one = shared_api.post(ADD, json={"x": 1, "y": 2})
    assert one.status_code == 202
    assert one.headers["content-type"] == "application/json"
    task_id = one.json()["task_id"]
    assert one.json() == {
        "task_id": task_id,
        "status_url": f"/tasks/{task_id}",
        "events_url": f"/tasks/{task_id}/events",
    }
    batch = shared_api.post(f"{ADD}/batch", json={"items": [{"x": 1, "y": 2}, {"x": 3, "y": 4}]})
    assert batch.status_code == 202
    assert batch.headers["content-type"] == "application/json"
    body = batch.json()
    assert set(body) == {"group_id", "status_url", "task_ids"}
    assert body["status_url"] == f"/tasks/groups/{body['group_id']}"
    assert len(body["task_ids"]) == len(set(body["task_ids"])) == 2


def test_a_failure_reads_as_failed_with_its_error(api: httpx.Client, embedded_app: Celery) -> None:
    """A task that raises ends the stream with a `failed` event carrying the error as strings."""
    task_id = api.post("/tasks/webtest.fail", json={"message": "boom"}).json()["task_id"]
    with run_worker(embedded_app):
        events = _events(api, f"/tasks/{task_id}/events")
    name, info = events[-1]
    assert name == "failed"
    assert info.error is not None
    assert (info.error.type, info.error.message) == ("ValueError", "boom")


def test_wrong_body_is_422_with_field_errors(shared_api: httpx.Client) -> None:
    """A body that does not fit the task's signature is refused field by field."""
    response = shared_api.post(ADD, json={"x": "three", "z": 1})
    assert response.status_code == 422
    errors = {tuple(error["loc"]): error["type"] for error in response.json()["detail"]}
    assert errors[("body", "x")] == "int_type"
    assert errors[("body", "y")] == "missing"
    assert errors[("body", "z")] == "extra_forbidden"


def _strict_json(response: httpx.Response) -> Any:
    """The response's body, read as RFC 8259 JSON: no NaN or Infinity in it."""

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} in the answer: {response.text[:200]}")

    return json.loads(response.text, parse_constant=refuse)


def _not_finite(constant: str) -> str:
    return f"{constant} is not JSON: numbers must be finite"


def _json_invalid(reason: str) -> list[dict[str, Any]]:
    """The 422 detail both adapters answer for a body that is not standard JSON."""
    error = {"type": "json_invalid", "loc": ["body"], "msg": "JSON decode error", "input": {}}
    return [{**error, "ctx": {"error": reason}}]


@pytest.mark.parametrize(
    ("path", "content", "reason"),
    [
        (ADD, b'{"x": NaN, "y": 1}', _not_finite("NaN")),
        (ADD, b'{"x": Infinity, "y": 1}', _not_finite("Infinity")),
        (ADD, b'{"x": -Infinity, "y": 1}', _not_finite("-Infinity")),
        (NAP, b'{"seconds": NaN}', _not_finite("NaN")),
        (NAP, b'{"seconds": Infinity}', _not_finite("Infinity")),
        (NAP, b'{"seconds": -Infinity}', _not_finite("-Infinity")),
        (NAP, b'{"seconds": 1e400}', "1e400 is beyond the range of a float"),
        (f"{ADD}/batch", b'{"items": [{"x": 1, "y": NaN}]}', _not_finite("NaN")),
        # Nested 5,000 levels deep in 10 KB; an integer of 5,000 digits.
        (ADD, b'{"x": ' + b"[" * 5000 + b"]" * 5000 + b', "y": 1}', "nested too deeply"),
        (ADD, b'{"x": 1' + b"0" * 5000 + b', "y": 1}', "an integer has more than 4300 digits"),
    ],
    ids=[
        "int-nan", "int-infinity", "int-minus-infinity", "float-nan", "float-infinity",
        "float-minus-infinity", "float-overflow", "batch-nan", "deep", "long-int",
    ],
)  # fmt: skip
def test_non_standard_json_is_422_in_strict_json(
    shared_api: httpx.Client, path: str, content: bytes, reason: str
) -> None:
    """NaN, infinities, overflowing floats, deep nesting, huge ints: one 422 from both adapters."""
    response = shared_api.post(path, content=content, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert _strict_json(response) == {"detail": _json_invalid(reason)}


@pytest.mark.parametrize(
    ("path", "body", "field", "error"),
    [
        (ADD, {"x": "1", "y": 1}, "x", "int_type"),
        (ADD, {"x": True, "y": 1}, "x", "int_type"),
        (ADD, {"x": 1e5, "y": 1}, "x", "int_type"),
        (ADD, {"x": 1.0, "y": 1}, "x", "int_type"),
        (NAP, {"seconds": "0.5"}, "seconds", "float_type"),
        (NAP, {"seconds": False}, "seconds", "float_type"),
        ("/tasks/webtest.touch", {"path": 1}, "path", "string_type"),
    ],
)
def test_wrong_json_types_are_422_not_coerced(
    shared_api: httpx.Client, path: str, body: dict[str, Any], field: str, error: str
) -> None:
    """Strict types: a string, a bool or a float for an int is refused, as the docs promise."""
    response = shared_api.post(path, json=body)
    assert response.status_code == 422
    detail = _strict_json(response)["detail"]
    assert [(e["loc"], e["type"], e["input"]) for e in detail] == [
        (["body", field], error, body[field])
    ]


def test_an_int_is_a_float(shared_api: httpx.Client) -> None:
    """JSON has one number type: an integer is accepted for a `float` parameter."""
    assert shared_api.post(NAP, json={"seconds": 1}).status_code == 202


def test_bound_task_body_has_no_self(shared_api: httpx.Client) -> None:
    """A bind=True task takes its arguments without `self`, and refuses a `self` field."""
    assert shared_api.post("/tasks/webtest.count", json={"steps": 1}).status_code == 202
    refused = shared_api.post("/tasks/webtest.count", json={"self": 1, "steps": 1})
    assert refused.status_code == 422
    assert [e["loc"] for e in refused.json()["detail"]] == [["body", "self"]]


@pytest.mark.parametrize("name", ["webtest.hidden", "no.such.task"])
def test_task_not_exposed_is_404(shared_api: httpx.Client, name: str) -> None:
    """Only tasks passed in tasks= can be sent, registered or not."""
    assert shared_api.post(f"/tasks/{name}", json={}).status_code == 404
    assert shared_api.post(f"/tasks/{name}/batch", json={"items": [{}]}).status_code == 404


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b"x=1&y=2", "application/x-www-form-urlencoded", 415),
        (b"1 2", "text/plain", 415),
        (b'{"x": 1,', "application/json", 422),
        (b"\xff\xfe\xfa", "application/json", 400),
    ],
)
def test_non_json_body_is_refused_clearly(
    shared_api: httpx.Client, content: bytes, content_type: str, status: int
) -> None:
    """A body in another media type is 415; malformed JSON is 422 `json_invalid`."""
    response = shared_api.post(ADD, content=content, headers={"content-type": content_type})
    assert response.status_code == status
    if status == 422:
        assert response.json()["detail"][0]["type"] == "json_invalid"


def test_body_over_one_mebibyte_is_413_by_default(shared_api: httpx.Client) -> None:
    """The default limit is 1 MiB: just under it is read (and judged), just over it is 413."""
    under = json.dumps({"x": 1, "y": 2, "pad": "a" * ((1 << 20) - 40)}).encode()
    assert len(under) < 1 << 20
    assert (
        shared_api.post(
            ADD, content=under, headers={"content-type": "application/json"}
        ).status_code
        == 422
    )
    over = b'{"x": 1, "y": 2, "pad": "' + b"a" * (1 << 20) + b'"}'
    assert (
        shared_api.post(ADD, content=over, headers={"content-type": "application/json"}).status_code
        == 413
    )


def test_body_size_limit_is_configurable_and_counts_chunked_bodies(
    adapter: str, embedded_app: Celery
) -> None:
    """max_body_size applies to a declared length and to a chunked body alike."""
    body = json.dumps({"x": 1, "y": 2, "pad": "a" * 300}).encode()
    with served_client(adapter, embedded_app, max_body_size=256) as client:
        headers = {"content-type": "application/json"}
        assert client.post(ADD, content=body, headers=headers).status_code == 413
        chunks = (body[i : i + 64] for i in range(0, len(body), 64))
        assert client.post(ADD, content=chunks, headers=headers).status_code == 413
        assert client.post(ADD, json={"x": 1, "y": 2}).status_code == 202


# -- batches --------------------------------------------------------------------------


def test_batch_of_1000_answers_before_any_task_runs(
    api: httpx.Client, embedded_app: Celery
) -> None:
    """1,000 items are accepted with no worker running; the group then holds every result."""
    items = [{"x": i, "y": 1} for i in range(1000)]
    started = time.monotonic()
    accepted = api.post(f"{ADD}/batch", json={"items": items})
    print(f"batch of 1000 accepted in {time.monotonic() - started:.2f} s")
    assert accepted.status_code == 202
    batch = accepted.json()
    assert len(batch["task_ids"]) == 1000
    assert batch["status_url"] == f"/tasks/groups/{batch['group_id']}"

    waiting = api.get(batch["status_url"]).json()
    assert (waiting["state"], waiting["total"], waiting["completed"]) == ("queued", 1000, 0)
    assert waiting["counts"] == {"queued": 1000}

    with run_worker(embedded_app, concurrency=4):
        done = wait_until(
            lambda: (g := api.get(batch["status_url"]).json())["ready"] and g,
            timeout=60,
            interval=0.5,  # each read of the group reads 1,000 statuses
            what="the batch to finish",
        )
    assert done["state"] == "succeeded"
    assert done["progress"]["percent"] == 100.0
    assert [task["result"] for task in done["tasks"]] == [i + 1 for i in range(1000)]
    assert api.get(f"/tasks/{batch['task_ids'][-1]}").json()["result"] == 1000


def test_batch_items_are_validated_one_by_one(shared_api: httpx.Client) -> None:
    """A bad item is named by its index; an empty batch is refused."""
    response = shared_api.post(f"{ADD}/batch", json={"items": [{"x": 1, "y": 1}, {"x": 1}]})
    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["detail"]] == [["body", "items", 1, "y"]]
    assert shared_api.post(f"{ADD}/batch", json={"items": []}).status_code == 422


# -- status, ids and route order ------------------------------------------------------


def test_unknown_and_malformed_ids(shared_api: httpx.Client) -> None:
    """An id never sent is 404 on every route; a malformed one is 422."""
    unknown = str(uuid.uuid4())
    for method, path in [
        ("GET", f"/tasks/{unknown}"),
        ("GET", f"/tasks/{unknown}/events"),
        ("DELETE", f"/tasks/{unknown}"),
        ("GET", f"/tasks/groups/{unknown}"),
    ]:
        assert shared_api.request(method, path).status_code == 404, (method, path)
    for bad in ["bad%20id", "a" * 300, "semi%3Bcolon", "quote%22"]:
        for method, path in [
            ("GET", f"/tasks/{bad}"),
            ("GET", f"/tasks/{bad}/events"),
            ("DELETE", f"/tasks/{bad}"),
            ("GET", f"/tasks/groups/{bad}"),
        ]:
            assert shared_api.request(method, path).status_code == 422, (method, path)


def test_status_is_task_info(shared_api: httpx.Client) -> None:
    """GET /tasks/{id} answers the TaskInfo of a queued task."""
    task_id = shared_api.post(ADD, json={"x": 1, "y": 2}).json()["task_id"]
    info = TaskInfo.model_validate(shared_api.get(f"/tasks/{task_id}").json())
    assert (info.task_id, info.state, info.name, info.ready) == (
        task_id, TaskState.QUEUED, "webtest.add", False,
    )  # fmt: skip


def test_revoking_an_unreadable_record_answers_as_its_status_does(
    api: httpx.Client, embedded_app: Celery
) -> None:
    """A forged record that is no JSON: GET says `failed`, and DELETE revokes it with a 202."""
    task_id = api.post(ADD, json={"x": 1, "y": 2}).json()["task_id"]
    backend: Any = embedded_app.backend
    backend.set(backend.get_key_for_task(task_id), "(lp0\nI1\na.")  # a pickle, as text
    status = api.get(f"/tasks/{task_id}")
    assert status.status_code == 200
    assert (status.json()["state"], status.json()["error"]["type"]) == (
        "failed",
        "ResultDecodeError",
    )
    revoked = api.delete(f"/tasks/{task_id}")
    assert revoked.status_code == 202
    assert revoked.json() == {
        "task_id": task_id,
        "status_url": f"/tasks/{task_id}",
        "events_url": f"/tasks/{task_id}/events",
    }
    assert api.get(f"/tasks/{task_id}").json() == status.json()


def test_fixed_routes_are_not_read_as_task_ids(shared_api: httpx.Client) -> None:
    """/tasks/health and /tasks/groups/... reach their own handlers, not the task-id routes."""
    health = shared_api.get("/tasks/health")
    assert {"broker", "backend", "workers", "queues"} <= set(health.json())
    group = shared_api.get("/tasks/groups/health")
    assert group.status_code == 404
    assert "batch" in group.json()["detail"]


# -- health ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "broker_url",
    ["amqp://guest:guest@127.0.0.1:1//", "redis://127.0.0.1:1/0"],
    ids=["amqp", "redis"],
)
def test_health_is_503_within_3_s_when_the_broker_is_down(
    adapter: str, broker_url: str, tmp_path: Path
) -> None:
    """A broker that refuses connections makes health answer 503, naming it, within 3 seconds."""
    settings = TaskQueueSettings(broker_url=broker_url, home=tmp_path / "home")
    app = create_celery(settings, main="down")
    try:
        with served_client(adapter, app) as client:
            started = time.monotonic()
            health = client.get("/tasks/health")
            elapsed = time.monotonic() - started
    finally:
        app.close()
    print(f"health with the broker down answered in {elapsed:.2f} s")
    assert health.status_code == 503
    assert elapsed < 3
    report = health.json()
    assert (report["ok"], report["broker"]["ok"], report["backend"]["ok"]) == (False, False, True)
    assert report["broker"]["error"]
    assert report["workers"] == []


@pytest.mark.parametrize(
    ("broker_url", "result_backend", "failing"),
    [
        ("amqp://guest:wrongpass@127.0.0.1:5672//", None, "broker"),
        (None, "redis://taskqueue-kit-nobody:wrongpass@127.0.0.1:6379/0", "backend"),
    ],
    ids=["rabbitmq-password", "redis-password"],
)
def test_health_names_a_refused_password_without_showing_it(
    adapter: str,
    broker_url: str | None,
    result_backend: str | None,
    failing: str,
    tmp_path: Path,
) -> None:
    """A wrong password on the local RabbitMQ or Redis: 503, the refusal named, no password."""
    urls = {"broker_url": broker_url, "result_backend": result_backend}
    settings = TaskQueueSettings(
        home=tmp_path / "home", **{name: url for name, url in urls.items() if url}
    )
    app = create_celery(settings, main="refused")
    try:
        with served_client(adapter, app) as client:
            health = client.get("/tasks/health")
    finally:
        app.close()
    assert health.status_code == 503
    report = health.json()
    assert report[failing]["ok"] is False
    assert report[failing]["error"].startswith(("AccessRefused: ", "AuthenticationError: "))
    assert "wrongpass" not in health.text


# -- auth -----------------------------------------------------------------------------


def _guarded_routes() -> list[tuple[str, str, dict[str, object] | None]]:
    some_id = str(uuid.uuid4())
    return [
        ("POST", ADD, {"x": 1, "y": 2}),
        ("POST", f"{ADD}/batch", {"items": [{"x": 1, "y": 2}]}),
        ("GET", f"/tasks/{some_id}", None),
        ("GET", f"/tasks/{some_id}/events", None),
        ("DELETE", f"/tasks/{some_id}", None),
        ("GET", f"/tasks/groups/{some_id}", None),
    ]


def test_every_route_needs_the_token_when_guarded(adapter: str, embedded_app: Celery) -> None:
    """Auth plugs in the framework's way: without the bearer token every route is 401."""
    routes = [*_guarded_routes(), ("GET", "/tasks/health", None)]  # health too, by default
    with served_client(adapter, embedded_app, guarded=True) as client:
        for method, path, body in routes:
            assert client.request(method, path, json=body).status_code == 401, (method, path)
            wrong = {"Authorization": "Bearer nope"}
            assert client.request(method, path, json=body, headers=wrong).status_code == 401
        authorized = {"Authorization": "Bearer s3cret-token"}
        for method, path, body in routes:
            status = client.request(method, path, json=body, headers=authorized).status_code
            assert status in {200, 202, 404}, (method, path, status)
        # Field errors would describe the task's signature: only for a client with the token.
        assert client.post(ADD, json={"x": "1"}).status_code == 401
        assert client.post(ADD, json={"x": "1"}, headers=authorized).status_code == 422
        # A body in another media type is refused, but only once the token was checked.
        text = {"Content-Type": "text/plain"}
        assert client.post(ADD, content=b"x=1", headers=text).status_code == 401
        assert client.post(ADD, content=b"x=1", headers={**text, **authorized}).status_code == 415


def test_public_health_answers_without_the_token_and_nothing_else_does(
    adapter: str, embedded_app: Celery
) -> None:
    """public_health=True: health answers without credentials; every other route is still 401."""
    with served_client(adapter, embedded_app, guarded=True, public_health=True) as client:
        health = client.get("/tasks/health")
        assert health.status_code == 200, health.text
        assert health.json()["broker"]["ok"] is True
        assert client.get("/tasks/health", headers={"Authorization": "Bearer nope"}).is_success
        for method, path, body in _guarded_routes():
            assert client.request(method, path, json=body).status_code == 401, (method, path)
        # "health" is still no task id for the routes that take one.
        assert client.delete("/tasks/health").status_code == 401
        assert client.get("/tasks/groups/health").status_code == 401
