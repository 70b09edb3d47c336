"""Config factories: the mapping is safe in every profile and is exactly what is applied."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
from kombu.exceptions import OperationalError

from taskqueue_kit import TaskQueueSettings, TaskState, celery_config, create_celery, get_task_info
from taskqueue_kit._results import add_if_absent, discard_if_sent, sent_meta
from taskqueue_kit.testing import resolve_broker, unique_name


@pytest.mark.parametrize("profile", ["development", "testing", "production"])
def test_json_only_in_every_profile(profile: str) -> None:
    """Serializers and accepted content are JSON only unless pickle is asked for."""
    broker = "amqp://guest:guest@127.0.0.1:5672//" if profile == "production" else None
    conf = celery_config(TaskQueueSettings(profile=profile, broker_url=broker))  # type: ignore[arg-type]
    assert conf["accept_content"] == ["json"]
    assert conf["result_accept_content"] == ["json"]
    assert conf["task_serializer"] == "json"
    assert conf["result_serializer"] == "json"
    assert conf["worker_prefetch_multiplier"] == 1
    assert conf["task_track_started"] is True


def test_pickle_only_when_allowed_and_warned(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    """allow_pickle=True accepts pickle and logs a warning naming the risk."""
    settings = TaskQueueSettings(allow_pickle=True, home=tmp_path)
    with caplog.at_level(logging.WARNING, logger="taskqueue_kit"):
        app = create_celery(settings)
    assert "pickle" in app.conf.accept_content
    assert app.conf.task_serializer == "pickle"
    assert any("arbitrary code" in record.getMessage() for record in caplog.records)


def test_production_profile_flags() -> None:
    """Production: acks late, reject on worker lost, confirmed publishing on amqp."""
    conf = celery_config(
        TaskQueueSettings(profile="production", broker_url="amqp://guest:guest@127.0.0.1:5672//")
    )
    assert conf["task_acks_late"] is True
    assert conf["task_reject_on_worker_lost"] is True
    assert conf["broker_transport_options"]["confirm_publish"] is True
    assert conf["broker_connection_retry_on_startup"] is True


def test_development_profile_acks_early() -> None:
    """Outside production acks_late is off unless asked for."""
    conf = celery_config(TaskQueueSettings())
    assert conf["task_acks_late"] is False
    assert celery_config(TaskQueueSettings(acks_late=True))["task_acks_late"] is True


def test_create_celery_applies_the_mapping(tmp_path: Path) -> None:
    """Every key of celery_config appears unchanged in the app's configuration."""
    settings = TaskQueueSettings(home=tmp_path, queues=("polarity",), send_events=True)
    app = create_celery(settings, main="svc")
    for key, value in celery_config(settings).items():
        assert app.conf[key] == value, key
    assert app.main == "svc"
    assert [q.name for q in app.conf.task_queues] == ["celery", "polarity"]


def test_queues_have_their_own_direct_exchange() -> None:
    """Each queue is bound to a direct exchange of its own name with its name as key."""
    conf = celery_config(TaskQueueSettings(queues=("polarity",)))
    for queue in conf["task_queues"]:
        assert queue.exchange.name == queue.name
        assert queue.exchange.type == "direct"
        assert queue.routing_key == queue.name


def test_testing_profile_isolates_each_app() -> None:
    """Two testing apps get different temporary embedded data directories."""
    settings = TaskQueueSettings(profile="testing")
    first, second = create_celery(settings), create_celery(settings)
    assert first.conf.broker_url != second.conf.broker_url
    assert first.conf.result_backend != second.conf.result_backend
    assert first.conf.broker_url.startswith("tqsqlite://")


_WORKER_BOUNDS = """
import sys, warnings
from taskqueue_kit import TaskQueueSettings, create_celery
warnings.simplefilter("ignore")  # Celery warns that this machine runs workers as root
redis = "redis://127.0.0.1:6379/0"  # nothing connects: only the worker's setup is read
app = create_celery(TaskQueueSettings(broker_url=redis, result_backend=redis, autoscale=(4, 1)))
explicit = {"autoscale": sys.argv[1]} if len(sys.argv) > 1 else {}
worker = app.Worker(pool="solo", quiet=True, redirect_stdouts=False, **explicit)
print(worker.max_concurrency, worker.min_concurrency)
"""


@pytest.mark.parametrize(("flag", "bounds"), [((), "4 1"), (("3,2",), "3 2")])
def test_autoscale_setting_reaches_the_worker(flag: tuple[str, ...], bounds: str) -> None:
    """autoscale=(max, min) becomes the worker's pool bounds; an explicit flag wins."""
    # In a subprocess: building a Worker switches on Celery's process-wide worker
    # optimizations, which would change how later in-process workers run their tasks.
    out = subprocess.run(
        [sys.executable, "-c", _WORKER_BOUNDS, *flag],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    assert out.stdout.split() == bounds.split()


def _never_runs() -> None:
    """A task body; its message never reaches a broker."""


@pytest.mark.parametrize("backend", ["embedded", "redis"])
def test_a_task_whose_publish_fails_reads_unknown(
    backend: str, tmp_path: Path, pytestconfig: pytest.Config
) -> None:
    """The sent record is written before publishing and taken back if the publish fails."""
    result_backend = resolve_broker(pytestconfig, "redis").result_backend
    settings = TaskQueueSettings(
        broker_url="amqp://guest:guest@127.0.0.1:1//",  # nothing listens on port 1
        result_backend=result_backend if backend == "redis" else None,
        home=tmp_path,
        default_queue=unique_name("nowhere"),
    )
    app = create_celery(settings, main="unreachable")
    app.task(name="never", shared=False)(_never_runs)
    task_id = unique_name("never-sent")
    try:
        with pytest.raises(OperationalError):
            app.tasks["never"].apply_async(task_id=task_id, retry=False)
        assert get_task_info(task_id, app=app).state is TaskState.UNKNOWN
        # Only a record still saying SENT is discarded: one a worker moved on stays.
        moved_on = unique_name("moved-on")
        assert add_if_absent(app, moved_on, sent_meta(moved_on, "never", None, 0))
        app.backend.store_result(moved_on, {"pid": 1}, "STARTED")
        assert discard_if_sent(app, moved_on) is False
        assert get_task_info(moved_on, app=app).state is TaskState.STARTED
    finally:
        app.close()
