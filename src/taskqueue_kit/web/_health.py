"""The health report: broker and backend reachability, workers, queues, within a deadline.

A broker that is down must not hold the answer: each check runs in a daemon thread and
is given up on at its deadline, so a 503 comes within about two seconds. An error is
reported with its text masked: the route may answer without credentials
(``public_health``), and a client's error can repeat the URL it was given, password and all.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from celery import Celery

from taskqueue_kit._masking import mask
from taskqueue_kit._taskinfo import get_task_info
from taskqueue_kit.web._models import Check, Health, WebOptions

__all__ = ["check_health", "health_status"]

T = TypeVar("T")


class _Attempt(Generic[T]):
    """A check running in a daemon thread, given up on when it outlives its deadline.

    A check stuck in a network call must not hold the health answer past its deadline;
    its thread ends on its own when that call times out.
    """

    def __init__(self, check: Callable[[], T]) -> None:
        self._outcome: list[tuple[T | None, str | None]] = []
        self._thread = threading.Thread(
            target=self._run, args=(check,), name="taskqueue-kit-health", daemon=True
        )
        self._thread.start()

    def _run(self, check: Callable[[], T]) -> None:
        try:
            self._outcome.append((check(), None))
        except Exception as exc:  # the error is the answer
            self._outcome.append((None, mask(f"{type(exc).__name__}: {exc}")))

    def wait(self, timeout: float) -> tuple[T | None, str | None]:
        """The check's value and error; an error when it has not answered in time."""
        self._thread.join(max(timeout, 0.0))
        return self._outcome[0] if self._outcome else (None, "no answer in time")


def _broker_up(app: Celery, timeout: float) -> bool:
    with app.connection_for_read(connect_timeout=timeout) as connection:
        connection.ensure_connection(max_retries=0, timeout=math.ceil(timeout))
    return True


def _backend_up(app: Celery) -> bool:
    get_task_info("taskqueue-kit-health-check", app=app)
    return True


def _workers(app: Celery, timeout: float) -> list[str]:
    replies = app.control.ping(timeout=timeout) or []
    return sorted(name for reply in replies for name in reply)


def check_health(app: Celery, options: WebOptions) -> Health:
    """Broker and backend reachability, the workers that answer a ping, the queue names.

    The broker and the backend are checked at once, within ``connect_timeout`` plus a
    second of grace; workers are pinged only when the broker answered.
    """
    deadline = time.monotonic() + options.connect_timeout + 1.0
    broker_attempt = _Attempt(lambda: _broker_up(app, options.connect_timeout))
    backend_attempt = _Attempt(lambda: _backend_up(app))
    broker_up, broker_error = broker_attempt.wait(deadline - time.monotonic())
    backend_up, backend_error = backend_attempt.wait(deadline - time.monotonic())
    workers: list[str] = []
    if broker_up:
        answered, _ = _Attempt(lambda: _workers(app, options.ping_timeout)).wait(
            options.ping_timeout + 1.0
        )
        workers = answered or []
    return Health(
        ok=bool(broker_up and backend_up),
        broker=Check(ok=bool(broker_up), error=broker_error),
        backend=Check(ok=bool(backend_up), error=backend_error),
        workers=workers,
        queues=sorted(app.amqp.queues),
    )


def health_status(report: Health) -> int:
    """The HTTP status of a health answer: 200 when broker and backend are up, else 503."""
    return 200 if report.ok else 503
