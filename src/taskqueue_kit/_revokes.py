"""Revokes that hold for workers started later: recorded in the result backend.

Celery keeps revokes in the memory of the workers that were up to hear the broadcast; a
worker started afterwards runs the revoked task (Celery issue #4863, open since 2018).
:func:`record` notes each revoke made through :func:`~taskqueue_kit.revoke_task` (and the
web adapters' ``DELETE``) in the result backend, before the broadcast: the kit's own
backend keeps a table, Redis a sorted set scored by expiry. :class:`LoadRevokes`, a
consumer bootstep started right after Celery's remote-control step, adds the recorded
revokes to the worker's own list, so a revoke reaches every worker: by broadcast if the
worker was consuming when it was sent, by the record otherwise.

Other result backends record nothing; a revoke then reaches only the workers that are up,
as in plain Celery. Records expire with ``result_expires`` (three hours when it is unset).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import Celery, bootsteps

from taskqueue_kit._compat.celery import add_revoked

__all__ = ["KEY", "LoadRevokes", "record", "recorded"]

logger = logging.getLogger("taskqueue_kit")

#: The Redis key of the sorted set of revoked ids (score: when the record expires).
KEY = "taskqueue-kit-revoked"
_DEFAULT_EXPIRES = 3 * 3600.0


def _expires(app: Celery) -> float:
    value = app.conf.get("result_expires")
    seconds = value.total_seconds() if hasattr(value, "total_seconds") else value
    return float(seconds) if seconds else _DEFAULT_EXPIRES


def _redis(backend: Any) -> Any:
    client = getattr(backend, "client", None)
    return client if client is not None and hasattr(client, "zadd") else None


def record(app: Celery, task_id: str) -> bool:
    """Note in the result backend that ``task_id`` is revoked; whether it could."""
    backend: Any = app.backend
    until = time.time() + _expires(app)
    own = getattr(backend, "record_revoke", None)
    if callable(own):
        own(task_id, until)
        return True
    client = _redis(backend)
    if client is None:
        return False
    with client.pipeline() as pipe:
        pipe.zadd(KEY, {task_id: until})
        pipe.zremrangebyscore(KEY, "-inf", time.time())
        pipe.zrange(KEY, -1, -1, withscores=True)
        *_, last = pipe.execute()
    if last:  # the set lives as long as its longest-lived record
        client.expireat(KEY, int(last[0][1]) + 1)
    return True


def recorded(app: Celery) -> list[str]:
    """The revoked ids the result backend holds that have not expired."""
    backend: Any = app.backend
    own = getattr(backend, "recorded_revokes", None)
    if callable(own):
        return list(own(time.time()))
    client = _redis(backend)
    if client is None:
        return []
    return [
        member.decode() if isinstance(member, bytes) else str(member)
        for member in client.zrangebyscore(KEY, time.time(), "+inf")
    ]


class LoadRevokes(bootsteps.StartStopStep):
    """Add the revokes recorded in the result backend to this worker's list at start."""

    requires = ("celery.worker.consumer.control:Control",)

    def start(self, parent: Any) -> None:
        try:
            ids = recorded(parent.app)
        except Exception:  # the worker still runs; revokes then hold as in plain Celery
            logger.warning(
                "taskqueue-kit: could not read the recorded revokes; a task revoked while "
                "no worker ran may still run",
                exc_info=True,
            )
            return
        add_revoked(ids)
        if ids:
            logger.info("taskqueue-kit: %d recorded revoke(s) loaded", len(ids))
