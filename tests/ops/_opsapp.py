"""The app the ops tests run in worker and Flower subprocesses, configured by the environment.

The tests set ``TASKQUEUE_*`` (home, broker, ``send_events``, ``autoscale``) and
``OPS_QUEUE`` (a queue name private to the test, since Redis is shared) for the child, and
build the same app in the test process with :func:`make_app`.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from celery import Celery

from taskqueue_kit import TaskQueueSettings, create_celery


def make_app(queue: str, **settings: Any) -> Celery:
    """An app declaring ``queue``, with ``<queue>:add`` and ``<queue>:hold`` registered."""
    app = create_celery(TaskQueueSettings(queues=(queue,), **settings), main="opsapp")

    @app.task(name=f"{queue}:add", shared=False)
    def add(a: int, b: int) -> int:
        """A quick task whose result Flower should report."""
        return a + b

    @app.task(name=f"{queue}:hold", shared=False)
    def hold(seconds: float) -> int:
        """Keep one pool process busy; returns its pid, to tell processes apart."""
        time.sleep(seconds)
        return os.getpid()

    @app.task(name=f"{queue}:die", shared=False)
    def die() -> None:
        """Note the run in ``OPS_RUNS_FILE``, then SIGKILL the pool process running it."""
        with open(os.environ["OPS_RUNS_FILE"], "a") as runs:
            runs.write(f"{os.getpid()}\n")
        os.kill(os.getpid(), signal.SIGKILL)

    return app


app = make_app(os.environ.get("OPS_QUEUE", "ops"))
