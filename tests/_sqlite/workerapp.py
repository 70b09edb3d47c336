"""A plain Celery app on the embedded broker, shared by in-process tests and worker subprocesses.

Worker subprocesses run ``celery -A _sqlite.workerapp worker`` with ``TQ_TEST_HOME`` naming
the data directory; in-process tests call :func:`make_app` with their own directory.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from celery import Celery

from taskqueue_kit import _sqlite


def make_app(home: Path, **conf: Any) -> Celery:
    """An app whose broker and results live in ``home``, JSON only, acks late."""
    _sqlite.register()
    app = Celery(
        "tqtest",
        broker=_sqlite.broker_url(home / "broker.sqlite3"),
        backend=_sqlite.backend_url(home / "results.sqlite3"),
        set_as_current=False,
    )
    app.conf.update(
        accept_content=["json"],
        result_accept_content=["json"],
        task_serializer="json",
        result_serializer="json",
        broker_connection_retry_on_startup=True,
        broker_transport_options={"polling_interval": 0.2, "accept_content": ["json"]},
        worker_hijack_root_logger=False,
        worker_prefetch_multiplier=1,
        task_acks_late=True,
        result_extended=True,
    )
    app.conf.update(conf)
    _add_tasks(app, home)
    return app


def _add_tasks(app: Celery, home: Path) -> None:
    done_log = home / "done.log"

    def record_done(token: str) -> None:
        with open(done_log, "a") as f:  # one short O_APPEND write: atomic between processes
            f.write(f"{token}\n")

    @app.task(name="tq.noop", shared=False)
    def noop() -> None:
        return None

    @app.task(name="tq.echo", shared=False)
    def echo(value: Any) -> Any:
        return value

    @app.task(name="tq.now", shared=False)
    def now() -> float:
        return time.time()

    @app.task(name="tq.total", shared=False)
    def total(values: list[int]) -> int:
        return sum(values)

    @app.task(name="tq.record", shared=False)
    def record(token: str) -> str:
        record_done(token)
        return token

    @app.task(name="tq.sleep", shared=False)
    def sleep(token: str, seconds: float) -> str:
        (home / f"{token}.started").write_text(str(os.getpid()))
        time.sleep(seconds)
        record_done(token)
        return token

    @app.task(name="tq.block_once", shared=False)
    def block_once(token: str) -> int:
        started = home / f"{token}.started"
        if not started.exists():  # first delivery: say so, then hang until killed
            started.write_text(str(os.getpid()))
            time.sleep(60)
        record_done(token)
        return os.getpid()


def make_kit_app(home: Path) -> Celery:
    """The same tasks on an app ``create_celery`` makes with the default settings."""
    from taskqueue_kit import TaskQueueSettings, create_celery

    app = create_celery(TaskQueueSettings(home=home), main="tqkit")
    _add_tasks(app, home)
    return app


app = (
    make_app(Path(os.environ["TQ_TEST_HOME"]), task_acks_late=not os.environ.get("TQ_ACKS_EARLY"))
    if "TQ_TEST_HOME" in os.environ
    else None
)
kit_app = make_kit_app(Path(os.environ["TQ_TEST_HOME"])) if "TQ_TEST_HOME" in os.environ else None
