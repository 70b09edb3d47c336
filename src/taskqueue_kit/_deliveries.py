"""A bound on deliveries that end with the worker process dying: poison tasks fail, once.

With late acks and ``task_reject_on_worker_lost`` (the ``production`` profile), a task whose
worker process dies goes back to the queue, which is what makes a SIGKILL or an OOM kill
lose nothing. A task that *causes* the death (a segfaulting library, memory it cannot
get) would come back without end, taking a pool process down each time.

So the kit counts, in the result backend, the deliveries of a task that the broker marks
as *redelivered*: a first delivery, nearly every delivery, costs nothing. When a task
reaches ``max_deliveries`` deliveries that way it is not run again: it is recorded as failed
with :class:`~taskqueue_kit.DeliveryLimitExceeded` and its message is acknowledged. A run
that returns (succeeds, fails or retries) clears the count. The count lives in the result
backend, so it works alike on RabbitMQ, Redis and the embedded broker; a backend that is
not a key/value store (Celery's database backend, say) keeps no count and sets no bound.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.backends.base import BaseKeyValueStoreBackend

__all__ = ["MAX_DELIVERIES_KEY", "count_redelivery", "forget", "redelivered"]

#: The Celery configuration key the kit reads the bound from (``max_deliveries``).
MAX_DELIVERIES_KEY = "taskqueue_max_deliveries"
_PREFIX = "taskqueue-kit-deliveries-"
_EXPIRES = 7 * 86_400


def redelivered(request: Any) -> bool:
    """Whether the broker marked this delivery of the task as a redelivery."""
    info = getattr(request, "delivery_info", None) or {}
    return bool(info.get("redelivered"))


def _store(app: Celery) -> BaseKeyValueStoreBackend | None:
    backend = app.backend
    return backend if isinstance(backend, BaseKeyValueStoreBackend) else None


def count_redelivery(app: Celery, task_id: str) -> int | None:
    """Count one more redelivery of ``task_id``: the deliveries so far, or ``None`` untracked."""
    backend = _store(app)
    if backend is None:
        return None
    key = f"{_PREFIX}{task_id}"
    redeliveries = int(backend.incr(key))
    backend.expire(key, _EXPIRES)
    return redeliveries + 1  # the first delivery was not counted


def forget(app: Celery, task_id: str) -> None:
    """Clear the count of ``task_id`` (a run of it returned)."""
    backend = _store(app)
    if backend is not None:
        backend.delete(f"{_PREFIX}{task_id}")
