"""Colon-prefix routing, checked at the broker and by real workers."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from celery import Celery
from celery.exceptions import QueueNotFound
from tests._support import make_app

from taskqueue_kit import TaskQueueSettings, UnknownQueueError, create_celery, route_task
from taskqueue_kit.testing import run_worker, unique_name

pytestmark = pytest.mark.compat


def test_route_task_maps_prefix_to_queue() -> None:
    """The part before the first colon is the queue; no colon means the default queue."""
    create_celery(TaskQueueSettings(default_queue="main", queues=("polarity",)))  # current app
    assert route_task("polarity:analyze", (), {}, {}) == {"queue": "polarity"}
    assert route_task("a:b:c", (), {}, {}) == {"queue": "a"}
    assert route_task("cleanup", (), {}, {}) == {"queue": "main"}
    assert route_task(":odd", (), {}, {}) == {"queue": "main"}


def _queue_sizes(app: Celery, names: list[str]) -> dict[str, int]:
    with app.connection_for_write() as connection:
        channel = connection.default_channel
        sizes = {}
        for queue in app.conf.task_queues:
            if queue.name in names:
                _, count, _ = queue(channel).queue_declare()
                sizes[queue.name] = count
        return sizes


@pytest.fixture
def routing_app(
    taskqueue_settings: TaskQueueSettings, app_maker: str
) -> Iterator[tuple[Celery, str]]:
    """An app on the broker under test declaring a unique 'polarity' queue, made each way."""
    polarity = unique_name("polarity")
    settings = taskqueue_settings.model_copy(update={"queues": (polarity,)})
    app = make_app(app_maker, settings, "routing")
    yield app, polarity
    app.close()


@pytest.mark.broker
def test_prefixed_task_lands_in_its_queue_only(
    routing_app: tuple[Celery, str], taskqueue_settings: TaskQueueSettings
) -> None:
    """A task named 'polarity:analyze' is one message in queue polarity and none elsewhere."""
    app, polarity = routing_app
    default = taskqueue_settings.default_queue
    with app.connection_for_write() as connection:  # declare both queues, empty
        for queue in app.conf.task_queues:
            queue(connection.default_channel).declare()
    app.send_task(f"{polarity}:analyze", args=("good",))
    app.send_task(f"{polarity}:analyze", args=("bad",))
    app.send_task("cleanup")
    assert _queue_sizes(app, [polarity, default]) == {polarity: 2, default: 1}
    with app.connection_for_write() as connection:
        for queue in app.conf.task_queues:
            queue(connection.default_channel).delete()


@pytest.mark.broker
def test_worker_on_prefix_queue_runs_it_and_default_worker_never_sees_it(
    routing_app: tuple[Celery, str], taskqueue_settings: TaskQueueSettings
) -> None:
    """A worker on -Q polarity runs the task; a worker on the default queue alone never does."""
    app, polarity = routing_app
    seen: list[str] = []
    lock = threading.Lock()

    @app.task(shared=False, name=f"{polarity}:analyze", bind=True)
    def analyze(self: Any, text: str) -> str:
        with lock:
            seen.append(self.request.delivery_info.get("routing_key") or "")
        return text.upper()

    @app.task(shared=False, name="plain")
    def plain() -> str:
        return "ok"

    with run_worker(app, queues=[taskqueue_settings.default_queue]):
        routed = analyze.delay("hello")
        other = plain.delay()
        assert other.get(timeout=20) == "ok"
        assert not routed.ready()
    assert seen == []
    with run_worker(app, queues=[polarity]):
        assert routed.get(timeout=20) == "HELLO"
    assert seen == [polarity]


def test_undeclared_prefix_raises_at_send(tmp_path: Any, app_maker: str) -> None:
    """A prefix that names no declared queue raises UnknownQueueError when sent."""
    app = make_app(app_maker, TaskQueueSettings(home=tmp_path, queues=("polarity",)), "r")
    with pytest.raises(UnknownQueueError) as caught:
        app.send_task("polarty:analyze")
    assert caught.value.queue == "polarty"
    assert "polarty" in str(caught.value)


def _analyze() -> None:
    """A task body; its message is never run."""


def test_explicit_queue_wins_and_undeclared_is_refused(tmp_path: Any, app_maker: str) -> None:
    """queue= naming a declared queue beats the prefix; an undeclared one is refused."""
    settings = TaskQueueSettings(home=tmp_path, queues=("polarity", "bulk"))
    app = make_app(app_maker, settings, "r")
    result = app.send_task("polarity:analyze", queue="bulk")
    assert result.id
    assert _queue_sizes(app, ["bulk", "polarity"]) == {"bulk": 1, "polarity": 0}
    app.task(name="polarity:explicit", shared=False)(_analyze)
    with pytest.raises(UnknownQueueError) as caught:
        app.tasks["polarity:explicit"].apply_async(queue="nowhere")
    assert caught.value.queue == "nowhere"
    # By name, Celery checks queue= itself before any router runs, with its own error.
    with pytest.raises(QueueNotFound, match="nowhere"):
        app.send_task("polarity:analyze", queue="nowhere")
