"""Prompt acks from Celery's thread pool before Celery 5.7.

Before 5.7, a worker hands the ack (and reject) of a task that a pool thread accepted or
finished to ``Consumer.call_soon``, which only queues it for the event loop's next turn. The
loop turns when a message, a timer or a poll timeout (up to seconds) wakes it, so with the
kit's ``worker_prefetch_multiplier = 1`` a thread-pool worker takes its next message seconds
after the last one finished. Celery 5.7 runs those acks at once (``call_soon_ack``).

:class:`PromptAcks` is a consumer bootstep, Celery's documented way to extend a worker: on
Celery before 5.7, with the thread pool and an event loop, it adds a 10 ms timer to the loop
so queued acks run within 10 ms (the embedded broker's too: it runs on the event loop).
Where the embedded transport is drained by Celery's blocking loop instead (eventlet, gevent),
it returns from its drain early while every prefetch slot is taken (see
``_sqlite.transport``).
"""

from __future__ import annotations

from typing import Any

import celery
from celery import bootsteps
from celery.concurrency.thread import TaskPool as ThreadPool

__all__ = ["INTERVAL", "PromptAcks", "needed"]

#: Seconds between the loop's turns while the step is active.
INTERVAL = 0.01
_FIXED_IN = (5, 7)


def needed(version: str = celery.__version__) -> bool:
    """Whether this Celery defers the thread pool's acks to the event loop's next turn."""
    major, minor = (int(part) for part in version.split(".")[:2])
    return (major, minor) < _FIXED_IN


def _turn() -> None:
    """Nothing: the timer exists only to end the loop's poll."""


class PromptAcks(bootsteps.StartStopStep):
    """Turn a thread-pool worker's event loop every 10 ms on Celery before 5.7."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self._entry: Any = None

    def start(self, parent: Any) -> None:
        hub = getattr(parent, "hub", None)
        if hub is None or not isinstance(parent.pool, ThreadPool) or not needed():
            return
        self._entry = hub.call_repeatedly(INTERVAL, _turn)

    def stop(self, parent: Any) -> None:
        if self._entry is not None:
            self._entry.cancel()
            self._entry = None

    shutdown = stop
