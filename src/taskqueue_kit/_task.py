"""The kit's base task class: Celery's ``Task`` with a last look at the revoked list.

Celery checks whether a task was revoked when the message arrives and when it is handed to
the pool; with the thread and solo pools a task can wait inside the pool after that check,
so a revoke sent meanwhile would be missed. The last look costs one set lookup.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from celery import Task
from celery.exceptions import Ignore
from celery.utils.objects import Bunch
from celery.worker import state as worker_state

from taskqueue_kit._results import read_meta
from taskqueue_kit._taskinfo import validate_task_id

__all__ = ["KitTask", "revoke_task"]

_FINISHED = frozenset({"SUCCESS", "FAILURE", "REVOKED"})

if TYPE_CHECKING:
    from celery import Celery

    _TaskBase = Task[Any, Any]
else:
    _TaskBase = Task


class KitTask(_TaskBase):
    """Base class of every task on an app made by ``create_celery``."""

    def before_start(self, task_id: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Skip a task revoked while it waited in the pool, recording it as revoked."""
        if task_id in worker_state.revoked:
            self.backend.mark_as_revoked(task_id, "revoked", request=self.request)
            raise Ignore()
        super().before_start(task_id, args, kwargs)


def revoke_task(app: Celery, task_id: str, *, terminate: bool = False) -> None:
    """Revoke a task: tell every worker, and record it as revoked if it has not finished.

    The record makes the state read ``revoked`` at once, even before a worker sees the
    message; a worker that knows of the revoke skips the task when it reaches it.

    Raises:
        InvalidTaskId: the id is malformed.
    """
    validate_task_id(task_id)
    app.control.revoke(task_id, terminate=terminate)
    meta = read_meta(app, task_id) or {}
    if meta.get("status") in _FINISHED:
        return
    # Keep what the sent record knew (name, queue) in the revoked record.
    request = Bunch(
        task=meta.get("name"),
        retries=meta.get("retries", 0),
        delivery_info={"routing_key": meta.get("queue")},
        chord=None,
    )
    app.backend.mark_as_revoked(task_id, "revoked", request=request)
