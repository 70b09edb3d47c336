"""Config factories: the mapping is safe in every profile and is exactly what is applied."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from celery import Celery, Task
from celery.app.amqp import AMQP
from celery.loaders.app import AppLoader
from kombu import Exchange, Queue
from kombu.exceptions import OperationalError

from taskqueue_kit import (
    ConfigurationError,
    KitTask,
    TaskQueueSettings,
    TaskState,
    UnknownQueueError,
    celery_config,
    create_celery,
    get_task_info,
    init_celery,
)
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


@pytest.mark.parametrize("profile", ["development", "testing"])
def test_embedded_default_acks_late_without_rejecting_lost_workers(profile: str) -> None:
    """On the embedded broker every profile acks late (a killed worker's task comes back),
    but a task that kills its pool process is failed, not redelivered without end."""
    conf = celery_config(TaskQueueSettings(profile=profile))  # type: ignore[arg-type]
    assert (conf["task_acks_late"], conf["task_reject_on_worker_lost"]) == (True, False)


def test_development_profile_on_a_server_broker_acks_early() -> None:
    """On RabbitMQ or Redis, outside production, acks_late is off unless asked for."""
    amqp = "amqp://guest:guest@127.0.0.1:5672//"
    conf = celery_config(TaskQueueSettings(broker_url=amqp))
    assert (conf["task_acks_late"], conf["task_reject_on_worker_lost"]) == (False, False)
    conf = celery_config(TaskQueueSettings(broker_url=amqp, acks_late=True))
    assert (conf["task_acks_late"], conf["task_reject_on_worker_lost"]) == (True, True)
    conf = celery_config(TaskQueueSettings(acks_late=False))
    assert (conf["task_acks_late"], conf["task_reject_on_worker_lost"]) == (False, False)


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
import os
from taskqueue_kit import TaskQueueSettings, create_celery
redis = "redis://127.0.0.1:6379/0"  # nothing connects: only the worker's options are read
create_celery(TaskQueueSettings(broker_url=redis, result_backend=redis, autoscale=(4, 1)))
print(os.environ["CELERY_WORKER_AUTOSCALE"])
"""


@pytest.mark.parametrize(("given", "bounds"), [(None, "4,1"), ("3,2", "3,2")])
def test_autoscale_setting_reaches_the_worker_command(given: str | None, bounds: str) -> None:
    """autoscale=(max, min) becomes ``celery worker``'s --autoscale default; one set wins.

    ``celery worker`` reads every option from ``CELERY_WORKER_<OPTION>`` too (Click's
    envvar prefix, set by Celery); an explicit ``--autoscale`` on the command line wins
    over it. The end-to-end pool growth is pinned in ``tests/ops/test_autoscale.py``.
    """
    env = {key: value for key, value in os.environ.items() if key != "CELERY_WORKER_AUTOSCALE"}
    if given is not None:
        env["CELERY_WORKER_AUTOSCALE"] = given
    out = subprocess.run(
        [sys.executable, "-c", _WORKER_BOUNDS],
        capture_output=True, text=True, check=True, timeout=60, env=env,
    )  # fmt: skip
    assert out.stdout.strip() == bounds


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


# -- init_celery: a service's own app adopts the kit ------------------------------------

_AMQP = "amqp://guest:guest@127.0.0.1:5672//"


def _only_json(app: Celery) -> bool:
    conf = app.conf
    return conf.accept_content == ["json"] and conf.task_serializer == "json"


def test_init_celery_keeps_the_apps_own_broker_and_returns_the_same_app(tmp_path: Path) -> None:
    """What the settings do not name comes from the app: its broker, backend and limits."""
    app = Celery("svc", broker=_AMQP, backend="redis://127.0.0.1:6379/0")
    app.conf.task_time_limit = 30
    same = init_celery(app, TaskQueueSettings(queues=("polarity",), home=tmp_path))
    assert same is app
    assert app.conf.broker_url == _AMQP
    assert app.conf.result_backend == "redis://127.0.0.1:6379/0"
    assert app.conf.task_time_limit == 30
    assert [q.name for q in app.conf.task_queues] == ["celery", "polarity"]
    assert _only_json(app)


def test_explicit_settings_win_and_a_log_line_names_what_was_replaced(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Settings passed explicitly replace the app's own; pickle is replaced whatever was said."""
    app = Celery("svc", broker=_AMQP)
    app.conf.update(task_time_limit=30, accept_content=["pickle", "json"], task_serializer="pickle")
    with caplog.at_level(logging.INFO, logger="taskqueue_kit"):
        init_celery(app, TaskQueueSettings(task_time_limit=60, home=tmp_path))
    assert app.conf.task_time_limit == 60
    assert _only_json(app)
    (line,) = [r.getMessage() for r in caplog.records if "replaced" in r.getMessage()]
    for name in ("accept_content", "task_serializer", "task_time_limit"):
        assert name in line
    assert "broker_url" not in line


def test_production_guards_apply_to_the_apps_own_values(tmp_path: Path) -> None:
    """A Redis visibility timeout the app set itself is checked like one in the settings."""
    redis = "redis://127.0.0.1:6379/0"
    app = Celery("svc", broker=redis)
    app.conf.broker_transport_options = {"visibility_timeout": 10}
    settings = TaskQueueSettings(
        profile="production", broker_url=redis, task_time_limit=60, home=tmp_path
    )
    with pytest.raises(ConfigurationError, match="visibility_timeout"):
        init_celery(app, settings)


class _OwnAMQP(AMQP):
    """A service's own AMQP class, as ``Celery(amqp=...)`` takes it."""

    own = True


class _OwnTask(Task):  # type: ignore[type-arg]
    """A service's own task base class, as ``Celery(task_cls=...)`` takes it."""

    def greeting(self) -> str:
        return f"hello from {self.name}"


class _OwnLoader(AppLoader):
    """A service's own loader, as ``Celery(loader=...)`` takes it."""


def test_an_app_with_its_own_amqp_task_cls_and_loader_gets_every_behaviour(
    tmp_path: Path,
) -> None:
    """Own ``amqp=``, ``task_cls=`` and ``loader=`` stay; routing refusal and SENT still hold."""
    app = Celery("svc", amqp=_OwnAMQP, task_cls=_OwnTask, loader=_OwnLoader)
    init_celery(app, TaskQueueSettings(queues=("polarity",), home=tmp_path))

    @app.task(name="polarity:score", shared=False)
    def score(text: str) -> int:
        return len(text)

    @app.task(name="typo:score", shared=False)
    def typo() -> None:
        """Routes to an undeclared queue."""

    assert getattr(app.amqp, "own", False) is True
    assert isinstance(app.loader, _OwnLoader)
    assert isinstance(score, KitTask)
    assert isinstance(score, _OwnTask)
    assert score.greeting() == "hello from polarity:score"
    with pytest.raises(UnknownQueueError, match="'typo'"):
        typo.delay()
    with pytest.raises(UnknownQueueError, match="'nowhere'"):
        score.apply_async(("x",), queue="nowhere")
    task_id = score.delay("great").id
    info = get_task_info(task_id, app=app)
    assert (info.state, info.queue, info.name) == (TaskState.QUEUED, "polarity", "polarity:score")
    app.close()


def test_the_apps_own_queues_and_routes_are_kept_and_asked_first(tmp_path: Path) -> None:
    """Own ``task_queues`` stay declared as they are; own ``task_routes`` are asked first."""
    own = Queue("reports", Exchange("reports", type="direct"), routing_key="reports")
    app = Celery("svc")
    app.conf.update(task_queues=(own,), task_routes={"nightly": {"queue": "reports"}})
    init_celery(app, TaskQueueSettings(queues=("polarity",), home=tmp_path))
    app.task(name="nightly", shared=False)(_never_runs)
    app.task(name="polarity:x", shared=False)(_never_runs)
    assert {q.name for q in app.conf.task_queues} == {"reports", "celery", "polarity"}
    nightly = app.tasks["nightly"].delay().id
    prefixed = app.tasks["polarity:x"].delay().id
    assert get_task_info(nightly, app=app).queue == "reports"
    assert get_task_info(prefixed, app=app).queue == "polarity"
    app.close()


def test_an_app_the_kit_was_never_applied_to_is_refused_naming_init_celery() -> None:
    """get_task_info and both adapters refuse a plain app up front instead of answering 404."""
    from taskqueue_kit.web.fastapi import task_router
    from taskqueue_kit.web.flask import task_blueprint

    plain = Celery("plain")
    task = plain.task(name="score", shared=False)(_never_runs)
    with pytest.raises(ConfigurationError, match="init_celery"):
        get_task_info("some-id", app=plain)
    with pytest.raises(ConfigurationError, match="init_celery"):
        task_router(plain, tasks=[task])
    with pytest.raises(ConfigurationError, match="init_celery"):
        task_blueprint(plain, tasks=[task])
