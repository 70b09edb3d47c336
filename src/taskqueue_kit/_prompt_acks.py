"""Prompt acks from Celery's thread pool before Celery 5.7.

Before 5.7, a worker hands the ack (and reject) of a task that a pool thread accepted or
finished to ``Consumer.call_soon``, which only queues it for the event loop's next turn. The
loop turns when a message, a timer or a poll timeout (up to seconds) wakes it, so with the
kit's ``worker_prefetch_multiplier = 1`` a thread-pool worker takes its next message seconds
after the last one finished. Celery 5.7 runs those acks at once (``call_soon_ack``).

:class:`PromptAcks` is a consumer bootstep, Celery's documented way to extend a worker: on
Celery before 5.7, with the thread pool and an event loop, it adds a timer to the loop, every
10 ms while tasks come and go and every 100 ms when the worker is idle, so queued acks run
within 10 ms (the embedded broker's too: it runs on the event loop).
Where the embedded transport is drained by Celery's blocking loop instead (eventlet, gevent),
it returns from its drain early while every prefetch slot is taken (see
``_sqlite.transport``).
"""

from __future__ import annotations

import time
from typing import Any

import celery
from celery import bootsteps
from celery.concurrency.thread import TaskPool as ThreadPool
from celery.signals import task_postrun, task_prerun, task_received

__all__ = ["IDLE_INTERVAL", "INTERVAL", "PromptAcks", "needed"]

#: Seconds between the loop's turns while tasks come and go (and for a moment after).
INTERVAL = 0.01
#: Seconds between them otherwise, so an idle worker costs next to nothing.
IDLE_INTERVAL = 0.1
#: How long after the last task event the worker counts as busy.
_BUSY_FOR = 0.5
_FIXED_IN = (5, 7)

_last_activity = 0.0


def needed(version: str = celery.__version__) -> bool:
    """Whether this Celery defers the thread pool's acks to the event loop's next turn."""
    major, minor = (int(part) for part in version.split(".")[:2])
    return (major, minor) < _FIXED_IN


def _note_activity(**_: Any) -> None:
    global _last_activity
    _last_activity = time.monotonic()


class PromptAcks(bootsteps.StartStopStep):
    """Turn a thread-pool worker's event loop every 10 ms while tasks run (Celery < 5.7).

    A task received, started or finished counts as activity (Celery's ``task_received``,
    ``task_prerun`` and ``task_postrun`` signals); for half a second after one the loop
    turns every 10 ms, otherwise every 100 ms.
    """

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self._hub: Any = None
        self._entry: Any = None

    def start(self, parent: Any) -> None:
        hub = getattr(parent, "hub", None)
        if hub is None or not isinstance(parent.pool, ThreadPool) or not needed():
            return
        for signal in (task_received, task_prerun, task_postrun):
            signal.connect(_note_activity, weak=False, dispatch_uid=f"{__name__}.activity")
        self._hub = hub
        self._turn()

    def _turn(self) -> None:
        if self._hub is None:
            return
        busy = time.monotonic() - _last_activity < _BUSY_FOR
        self._entry = self._hub.call_later(INTERVAL if busy else IDLE_INTERVAL, self._turn)

    def stop(self, parent: Any) -> None:
        self._hub = None
        if self._entry is not None:
            self._entry.cancel()
            self._entry = None

    shutdown = stop
