"""The kit's base task class: Celery's ``Task``, extended where Celery documents it may be.

* ``apply_async`` names the sending app for the ``SENT`` record (:mod:`._sent`), takes the
  record back when the publish fails for good, and turns Celery's ``QueueNotFound`` for an
  explicit undeclared ``queue=`` into :class:`~taskqueue_kit.UnknownQueueError`, the
  error the router raises for an undeclared prefix.
* ``before_start`` takes a last look at the revoked list: Celery checks it when the message
  arrives and when the task is handed to the pool; with the thread and solo pools a task can
  wait inside the pool after that check, so a revoke sent meanwhile would be missed.

``init_celery`` makes it the base of every task of the app, in front of the app's own
``task_cls``.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from celery import Task
from celery.exceptions import Ignore, QueueNotFound
from celery.utils.objects import Bunch

from taskqueue_kit._compat.celery import revoked_ids
from taskqueue_kit._deliveries import MAX_DELIVERIES_KEY, count_redelivery, redelivered
from taskqueue_kit._deliveries import forget as forget_deliveries
from taskqueue_kit._exceptions import DeliveryLimitExceeded, UnknownQueueError
from taskqueue_kit._progress import PROGRESS
from taskqueue_kit._results import read_meta
from taskqueue_kit._revokes import record as record_revoke
from taskqueue_kit._sent import sending
from taskqueue_kit._taskinfo import validate_task_id

__all__ = ["KitTask", "revoke_task"]

logger = logging.getLogger("taskqueue_kit")

_FINISHED = frozenset({"SUCCESS", "FAILURE", "REVOKED"})
_RUNNING = frozenset({"STARTED", PROGRESS})

if TYPE_CHECKING:
    from celery import Celery

    _TaskBase = Task[Any, Any]
else:
    _TaskBase = Task


class KitTask(_TaskBase):
    """Base class of every task on an app the kit was applied to (``init_celery``)."""

    def apply_async(self, args: Any = None, kwargs: Any = None, *more: Any, **options: Any) -> Any:
        """Celery's ``apply_async``, recording the task as sent and refusing unknown queues.

        Raises:
            UnknownQueueError: the task routes, or ``queue=`` names, an undeclared queue.
        """
        try:
            with sending(self.app):
                return super().apply_async(args, kwargs, *more, **options)
        except QueueNotFound as exc:
            if isinstance(exc, UnknownQueueError):
                raise
            queue = options.get("queue")
            name = getattr(queue, "name", queue) or _quoted(str(exc)) or "?"
            declared = tuple(self.app.amqp.queues)
            raise UnknownQueueError(str(name), str(self.name), declared) from exc

    def before_start(self, task_id: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Skip a task revoked while it waited in the pool, recording it as revoked; fail
        one whose worker process died on each of its last ``max_deliveries`` deliveries."""
        if task_id in revoked_ids():
            self.backend.mark_as_revoked(task_id, "revoked", request=self.request)
            raise Ignore()
        limit = self.app.conf.get(MAX_DELIVERIES_KEY)
        if limit and redelivered(self.request):
            deliveries = count_redelivery(self.app, task_id)
            if deliveries is not None and deliveries > limit:
                self._fail_delivered_too_often(task_id, deliveries - 1, limit)
        super().before_start(task_id, args, kwargs)

    def _fail_delivered_too_often(self, task_id: str, died: int, limit: int) -> None:
        error = DeliveryLimitExceeded(
            f"task {self.name}[{task_id}] was not run again: its worker process died on "
            f"each of its {died} deliveries so far (max_deliveries={limit})"
        )
        logger.error("taskqueue-kit: %s", error)
        self.backend.mark_as_failure(task_id, error, request=self.request)
        forget_deliveries(self.app, task_id)
        raise Ignore()

    def after_return(
        self,
        status: str,
        retval: Any,
        task_id: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        einfo: Any,
    ) -> None:
        """Clear the redelivery count of a run that returned (see ``max_deliveries``)."""
        if redelivered(self.request) and self.app.conf.get(MAX_DELIVERIES_KEY):
            forget_deliveries(self.app, task_id)
        super().after_return(status, retval, task_id, args, kwargs, einfo)


def _quoted(message: str) -> str | None:
    """The queue named in Celery's ``Queue 'x' missing from task_queues``."""
    found = re.search(r"'([^']*)'", message)
    return found.group(1) if found else None


def revoke_task(app: Celery, task_id: str, *, terminate: bool = False) -> None:
    """Revoke a task: note it in the result backend, tell every worker, record its state.

    A task that has not started reads ``revoked`` at once and never runs: the workers that
    are up skip it by Celery's broadcast, and a worker started later by the note in the
    result backend (the kit's own backend and Redis; see :mod:`._revokes`). A task already
    running goes on (unless ``terminate``) and keeps its state, so a final state never
    changes: a task that read ``revoked`` never reads ``succeeded`` afterwards.

    Raises:
        InvalidTaskId: the id is malformed.
    """
    validate_task_id(task_id)
    record_revoke(app, task_id)  # before the broadcast: a worker starting now sees one
    app.control.revoke(task_id, terminate=terminate)
    meta = read_meta(app, task_id) or {}
    status = meta.get("status")
    if status in _FINISHED or (status in _RUNNING and not terminate):
        return
    # Keep what the sent record knew (name, queue) in the revoked record.
    request = Bunch(
        task=meta.get("name"),
        retries=meta.get("retries", 0),
        delivery_info={"routing_key": meta.get("queue")},
        chord=None,
    )
    app.backend.mark_as_revoked(task_id, "revoked", request=request)
