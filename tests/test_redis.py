"""Results on Redis: Celery's own backend, with the kit's sent record and readable states."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery
from celery.backends.redis import RedisBackend
from tests._support import wait_until

from taskqueue_kit import (
    TaskQueueSettings,
    TaskState,
    create_celery,
    get_task_info,
    report_progress,
)
from taskqueue_kit._results import add_if_absent, discard_if_sent, sent_meta
from taskqueue_kit.testing import BrokerTarget, resolve_broker, run_worker, unique_name


@pytest.fixture
def redis_target(pytestconfig: pytest.Config) -> BrokerTarget:
    return resolve_broker(pytestconfig, "redis")


@pytest.fixture
def redis_app(redis_target: BrokerTarget, tmp_path: Path) -> Iterator[Celery]:
    """A kit app whose broker and result backend are this machine's Redis."""
    settings = TaskQueueSettings(
        broker_url=redis_target.broker_url,
        result_backend=redis_target.result_backend,
        home=tmp_path,
        default_queue=unique_name("redis"),
        progress_interval=0.0,
    )
    app = create_celery(settings, main="redis-backend")

    @app.task(name="double", shared=False)
    def double(x: int) -> int:
        return 2 * x

    @app.task(name="explode", shared=False)
    def explode() -> None:
        raise RuntimeError("boom")

    @app.task(name="steps", shared=False, bind=True)
    def steps(self, items: list[int]) -> int:
        for done, _ in enumerate(items, 1):
            report_progress(self, current=done, total=len(items))
            time.sleep(0.1)  # long enough for the test's polling to see each step
        return len(items)

    yield app
    app.close()


def _stored(app: Celery, task_id: str) -> dict[str, object]:
    backend = app.backend
    raw = backend.client.get(backend.get_key_for_task(task_id))
    assert raw is not None, f"no record for {task_id}"
    record: dict[str, object] = json.loads(raw)
    return record


def test_redis_urls_use_celerys_own_backend(redis_app: Celery) -> None:
    """No subclass and no patched method: the backend is Celery's RedisBackend as it ships."""
    assert type(redis_app.backend) is RedisBackend
    assert "_get_result_meta" not in vars(redis_app.backend)


def test_a_failing_task_reads_failed(redis_app: Celery) -> None:
    """A task that raises ends failed with its error as strings (not started forever)."""
    with run_worker(redis_app):
        task_id = redis_app.tasks["explode"].delay().id
        info = wait_until(
            lambda: (i := get_task_info(task_id, app=redis_app)).ready and i, what="failure"
        )
    assert info.state is TaskState.FAILED
    assert info.error is not None
    assert (info.error.type, info.error.message) == ("RuntimeError", "boom")


def test_the_sent_record_never_overwrites_a_later_state(redis_app: Celery) -> None:
    """SET NX: the first record is kept, and a worker's STARTED is never replaced by SENT."""
    task_id = unique_name("sent")
    assert add_if_absent(redis_app, task_id, sent_meta(task_id, "double", "q", 0)) is True
    assert add_if_absent(redis_app, task_id, sent_meta(task_id, "double", "q", 1)) is False
    assert _stored(redis_app, task_id)["retries"] == 0
    redis_app.backend.store_result(task_id, {"pid": 1}, "STARTED")
    assert add_if_absent(redis_app, task_id, sent_meta(task_id, "double", "q", 0)) is False
    assert get_task_info(task_id, app=redis_app).state is TaskState.STARTED


def test_only_a_record_still_saying_sent_is_taken_back(redis_app: Celery) -> None:
    """A failed publish deletes its SENT record; a record a worker moved on stays."""
    gone, moved_on = unique_name("gone"), unique_name("moved-on")
    for task_id in (gone, moved_on):
        assert add_if_absent(redis_app, task_id, sent_meta(task_id, "double", None, 0))
    redis_app.backend.store_result(moved_on, {"pid": 1}, "STARTED")
    assert discard_if_sent(redis_app, gone) is True
    assert discard_if_sent(redis_app, moved_on) is False
    assert get_task_info(gone, app=redis_app).state is TaskState.UNKNOWN
    assert get_task_info(moved_on, app=redis_app).state is TaskState.STARTED


def test_progress_and_result_records_name_the_task_and_its_queue(redis_app: Celery) -> None:
    """Progress is stored as it happens, and every record names the task and its queue."""
    seen: list[dict[str, object]] = []
    with run_worker(redis_app):
        task_id = redis_app.tasks["steps"].delay(list(range(5))).id

        def progressed() -> bool:
            record = _stored(redis_app, task_id)
            if record.get("status") == "PROGRESS":
                seen.append(record)
            return record.get("status") == "SUCCESS"

        wait_until(progressed, what="success")
    info = get_task_info(task_id, app=redis_app)
    assert (info.state, info.result, info.name) == (TaskState.SUCCEEDED, 5, "steps")
    assert info.queue == redis_app.conf.task_default_queue
    assert seen, "no progress record was seen"
    for record in seen:
        assert (record.get("name"), record.get("queue")) == ("steps", info.queue)
