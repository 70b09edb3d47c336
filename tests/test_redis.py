"""The kit's Redis result backend: fewer round trips than Celery's, the same records and results."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import Celery, states
from celery.backends.redis import RedisBackend
from celery.signals import before_task_publish
from tests._support import wait_until

from taskqueue_kit import TaskQueueSettings, TaskState, create_celery, get_task_info
from taskqueue_kit._redis import KitRedisBackend, kit_backend_class
from taskqueue_kit._results import add_if_absent, begin_add_if_absent, read_meta, sent_meta
from taskqueue_kit.testing import BrokerTarget, resolve_broker, run_worker, unique_name


@pytest.fixture
def redis_target(pytestconfig: pytest.Config) -> BrokerTarget:
    return resolve_broker(pytestconfig, "redis")


def _app_on(target: BrokerTarget, home: Path, **conf: Any) -> Celery:
    """A kit app whose broker and result backend are ``target``'s Redis; ``conf`` applied."""
    settings = TaskQueueSettings(
        broker_url=target.broker_url,
        result_backend=target.result_backend,
        home=home,
        default_queue=unique_name("redis"),
    )
    app = create_celery(settings, main="redis-backend")
    app.conf.update(conf)  # before the backend exists: it reads them when made
    return app


@pytest.fixture
def redis_app(redis_target: BrokerTarget, tmp_path: Path) -> Iterator[Celery]:
    """A kit app whose broker and result backend are this machine's Redis."""
    app = _app_on(redis_target, tmp_path)

    @app.task(name="double", shared=False)
    def double(x: int) -> int:
        return 2 * x

    yield app
    app.close()


def _count_commands(backend: Any) -> list[str]:
    """Record every command and pipeline the backend's client runs, in order."""
    calls: list[str] = []
    client = backend.client
    execute, pipeline = client.execute_command, client.pipeline

    def counting_execute(*args: Any, **options: Any) -> Any:
        calls.append(str(args[0]))
        return execute(*args, **options)

    def counting_pipeline(*args: Any, **kwargs: Any) -> Any:
        calls.append("PIPELINE")
        return pipeline(*args, **kwargs)

    client.execute_command = counting_execute
    client.pipeline = counting_pipeline
    return calls


def test_redis_urls_get_the_kit_backend(redis_app: Celery) -> None:
    """create_celery's apps use the kit's subclass for redis://; other classes are kept."""
    assert type(redis_app.backend) is KitRedisBackend
    assert kit_backend_class(RedisBackend) is KitRedisBackend
    assert kit_backend_class(dict) is dict


def test_sending_subscribes_to_nothing_unlike_plain_celery(
    redis_app: Celery, redis_target: BrokerTarget
) -> None:
    """Celery subscribes the sender to every task sent; the kit's backend to none."""
    queue = unique_name("plain")
    plain = Celery("plain", broker=redis_target.broker_url, backend=redis_target.result_backend)
    plain.conf.update(task_default_queue=queue, accept_content=["json"])
    try:
        kept = plain.send_task("double", args=(1,))  # kept: collecting it would unsubscribe
        assert plain.backend.result_consumer.subscribed_to, "plain Celery should subscribe"
        kit_result = redis_app.tasks["double"].delay(1)
        assert not redis_app.backend.result_consumer.subscribed_to
        assert kept.id != kit_result.id
    finally:
        with plain.connection_for_write() as conn:
            conn.default_channel.queue_delete(queue)
        plain.close()


def test_get_receives_results_sent_before_and_after_it_subscribes(redis_app: Celery) -> None:
    """.get() subscribes then reads the stored state: an early result is not missed."""
    double = redis_app.tasks["double"]
    with run_worker(redis_app):
        assert double.delay(21).get(timeout=20) == 42
        early = double.delay(5)
        wait_until(
            lambda: get_task_info(early.id, app=redis_app).state is TaskState.SUCCEEDED,
            what="the early task to succeed",
        )
        assert not redis_app.backend.result_consumer.subscribed_to
        assert early.get(timeout=5) == 10


def test_a_running_state_does_not_wait_and_the_result_waits_for_it(redis_app: Celery) -> None:
    """STARTED goes out without waiting; the result reads both replies; no GET round trips."""
    backend = redis_app.backend
    task_id = unique_name("one-trip")
    calls = _count_commands(backend)
    writer = backend._state_writer()
    backend.store_result(task_id, {"pid": 1}, states.STARTED)
    assert writer._unread == 1  # sent, its reply not waited for
    assert calls == []  # Celery's backend: GET, then PIPELINE (SETEX, PUBLISH)
    wait_until(lambda: (read_meta(redis_app, task_id) or {}).get("status") == "STARTED")
    calls.clear()
    backend.store_result(task_id, 3, states.SUCCESS)
    assert writer._unread == 0
    assert calls == []
    meta = read_meta(redis_app, task_id)
    assert meta is not None
    assert (meta["status"], meta["result"], meta["task_id"]) == ("SUCCESS", 3, task_id)


def test_a_result_always_lands_after_its_running_states(redis_app: Celery) -> None:
    """One connection, in order: a STARTED that did not wait never overwrites the result."""
    backend = redis_app.backend
    for number in range(50):
        task_id = unique_name(f"order-{number}")
        backend.store_result(task_id, {"pid": 1}, states.STARTED)
        backend.store_result(task_id, {"current": 1, "total": 2}, "PROGRESS")
        backend.mark_as_failure(task_id, ValueError("boom"))
        meta = read_meta(redis_app, task_id)
        assert meta is not None
        assert meta["status"] == "FAILURE", number


def test_unread_replies_stay_bounded(redis_app: Celery) -> None:
    """A long run of progress writes reads its replies now and then; none are lost."""
    backend = redis_app.backend
    task_id = unique_name("progress")
    for step in range(600):
        backend.store_result(task_id, {"current": step, "total": 600}, "PROGRESS")
        assert backend._state_writer()._unread <= 256
    backend.store_result(task_id, 600, states.SUCCESS)
    meta = read_meta(redis_app, task_id)
    assert meta is not None
    assert meta["result"] == 600


def test_a_stored_success_is_never_overwritten(redis_app: Celery) -> None:
    """A redelivered duplicate's STARTED or FAILURE does not undo a SUCCESS, as in Celery."""
    backend = redis_app.backend
    task_id = unique_name("kept")
    backend.store_result(task_id, 1, states.SUCCESS)
    backend.store_result(task_id, {"pid": 2}, states.STARTED)
    backend.mark_as_failure(task_id, RuntimeError("late duplicate"))
    meta = read_meta(redis_app, task_id)
    assert meta is not None
    assert (meta["status"], meta["result"]) == ("SUCCESS", 1)


def test_a_failure_replaces_started_and_keeps_its_own_expiry(redis_app: Celery) -> None:
    """Non-final states are overwritten, and the record expires as Celery's would."""
    backend = redis_app.backend
    task_id = unique_name("failed")
    backend.store_result(task_id, {"pid": 3}, states.STARTED)
    backend.mark_as_failure(task_id, ValueError("boom"))
    meta = read_meta(redis_app, task_id)
    assert meta is not None
    assert meta["status"] == "FAILURE"
    ttl = backend.client.ttl(backend.get_key_for_task(task_id))
    assert 0 < ttl <= int(redis_app.conf.result_expires)


def test_the_script_is_loaded_again_after_a_script_flush(
    redis_app: Celery, caplog: pytest.LogCaptureFixture
) -> None:
    """After SCRIPT FLUSH a running state is lost (and logged), but the result is stored."""
    backend = redis_app.backend
    backend.store_result(unique_name("warm"), 1, states.SUCCESS)  # script loaded
    backend.client.script_flush()
    task_id = unique_name("flushed")
    backend.store_result(task_id, {"pid": 1}, states.STARTED)
    backend.store_result(task_id, 7, states.SUCCESS)
    meta = read_meta(redis_app, task_id)
    assert meta is not None
    assert (meta["status"], meta["result"]) == ("SUCCESS", 7)
    assert any("state write was refused" in record.getMessage() for record in caplog.records)
    later = unique_name("later")
    backend.store_result(later, {"pid": 1}, states.STARTED)  # the script is back
    backend.store_result(later, 8, states.SUCCESS)
    assert (read_meta(redis_app, later) or {}).get("result") == 8


def test_the_sent_record_is_added_once_and_its_connection_reused(redis_app: Celery) -> None:
    """SET NX: a second record for the same id is refused; the spare connection is reused."""
    task_id = unique_name("sent")
    meta = sent_meta(task_id, "double", "celery", 0)
    finish = begin_add_if_absent(redis_app, task_id, meta)
    spare = redis_app.backend.__dict__.get("_kit_spare_connection")
    assert finish() is True
    assert add_if_absent(redis_app, task_id, dict(meta, retries=1)) is False
    stored = read_meta(redis_app, task_id)
    assert stored is not None
    assert (stored["status"], stored["retries"]) == ("SENT", 0)
    held = redis_app.backend.__dict__["_kit_spare_connection"]
    assert held[0] == os.getpid()
    assert spare is None or spare is held


def test_the_queue_is_declared_once_per_connection(redis_app: Celery) -> None:
    """Celery asks to declare the queue on every send; after the first, the kit passes none."""
    seen: list[Any] = []

    def record(declare: Any = None, **_: Any) -> None:
        seen.append(list(declare or []))

    before_task_publish.connect(record, weak=False)
    try:
        double = redis_app.tasks["double"]
        with redis_app.producer_or_acquire() as producer:
            double.apply_async((1,), producer=producer)
            double.apply_async((2,), producer=producer)
            producer.connection.declared_entities.clear()  # what kombu does on reconnect
            double.apply_async((3,), producer=producer)
    finally:
        before_task_publish.disconnect(record)
    queue = redis_app.conf.task_default_queue
    assert [[q.name for q in declared] for declared in seen] == [[queue], [], [queue]]


def _client_id(connection: Any) -> int:
    connection.send_command("CLIENT", "ID")
    return int(connection.read_response())


def test_connections_the_server_closed_while_idle_are_replaced(redis_app: Celery) -> None:
    """A sent record or a running state after an idle disconnect is not lost."""
    backend = redis_app.backend
    warm = unique_name("warm")
    assert add_if_absent(redis_app, warm, sent_meta(warm, "double", "celery", 0))
    backend.store_result(warm, 1, states.SUCCESS)
    spare = backend.__dict__["_kit_spare_connection"][1]
    writer = backend._state_writer()._connection
    for connection in (spare, writer):
        backend.client.client_kill_filter(_id=_client_id(connection))
    task_id = unique_name("after-idle")
    assert add_if_absent(redis_app, task_id, sent_meta(task_id, "double", "celery", 0))
    backend.store_result(task_id, {"pid": 1}, states.STARTED)  # does not wait
    wait_until(lambda: (read_meta(redis_app, task_id) or {}).get("status") == "STARTED")


def test_compressed_records_keep_a_stored_success(
    redis_target: BrokerTarget, tmp_path: Path
) -> None:
    """With result_compression the scripts cannot read records: Celery's own store is used."""
    app = _app_on(redis_target, tmp_path, result_compression="gzip")
    try:
        task_id = unique_name("gzip")
        assert add_if_absent(app, task_id, sent_meta(task_id, "double", "celery", 0))
        assert get_task_info(task_id, app=app).state is TaskState.QUEUED
        app.backend.store_result(task_id, 5, states.SUCCESS)
        app.backend.store_result(task_id, {"pid": 1}, states.STARTED)
        assert get_task_info(task_id, app=app).state is TaskState.SUCCEEDED
    finally:
        app.close()
