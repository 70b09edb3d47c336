"""Colon-prefix routing: a task named ``queue:rest`` goes to queue ``queue``, and only there.

Routing has two halves. :func:`route_task` is a plain Celery router that maps a name to a
queue. :class:`KitRouter` is the send path: it refuses any queue that is not declared, so a
typo in a task name raises :class:`UnknownQueueError` at ``delay()`` instead of silently
creating a queue that no worker reads. (Celery swallows exceptions raised in signal
handlers, so this check cannot live in ``before_task_publish``.)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from celery import current_app
from celery.app import routes
from celery.exceptions import QueueNotFound
from kombu import Exchange, Queue

from taskqueue_kit._exceptions import UnknownQueueError

__all__ = ["KitRouter", "declare_queues", "queue_for", "route_task"]


def queue_for(task_name: str, default_queue: str) -> str:
    """The queue a task name routes to: the part before the first colon, else the default."""
    prefix, colon, _ = task_name.partition(":")
    return prefix if colon and prefix else default_queue


def route_task(
    name: str,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    options: Mapping[str, Any],
    task: Any = None,
    **kw: Any,
) -> dict[str, str]:
    """Celery router: ``"polarity:analyze"`` → ``{"queue": "polarity"}``.

    Names without a colon go to the app's default queue. An explicit ``queue=`` in the
    send options wins, because Celery merges the options over what the router returns.

    Args:
        name: The task name.
        args: Positional arguments of the call (unused; part of Celery's router protocol).
        kwargs: Keyword arguments of the call (unused).
        options: Send options (unused: Celery applies them over the answer).
        task: The task object when registered; its app gives the default queue.
        **kw: Further keyword arguments Celery may pass.

    Returns:
        The routing decision, ``{"queue": name}``.
    """
    app = task.app if task is not None and getattr(task, "app", None) is not None else current_app
    default = app.conf.task_default_queue or "celery"
    return {"queue": queue_for(name, default)}


def declare_queues(names: Iterable[str]) -> tuple[Queue, ...]:
    """One queue per name, each bound to its own direct exchange under its own name.

    This makes a message for ``polarity`` reach queue ``polarity`` and nothing else, on
    RabbitMQ and Redis alike, instead of resting on Celery's default exchange bindings.
    """
    return tuple(Queue(name, Exchange(name, type="direct"), routing_key=name) for name in names)


class KitRouter(routes.Router):
    """Celery's router with one difference: an undeclared queue is an error at send time."""

    queues: Any
    app: Any

    def route(
        self,
        options: dict[str, Any],
        name: str,
        args: Sequence[Any] | None = (),
        kwargs: Mapping[str, Any] | None = None,
        task_type: Any = None,
    ) -> dict[str, Any]:
        """Resolve the destination, raising :class:`UnknownQueueError` for unknown queues."""
        explicit = options.get("queue")
        if isinstance(explicit, Queue) and explicit.name not in self.queues:
            raise UnknownQueueError(explicit.name, name, tuple(self.queues))
        try:
            result: dict[str, Any] = super().route(
                options, name, tuple(args or ()), dict(kwargs or {}), task_type
            )
        except QueueNotFound as exc:
            if isinstance(explicit, str) and explicit not in self.queues:
                queue = explicit
            else:
                queue = queue_for(name, self.app.conf.task_default_queue)
            raise UnknownQueueError(queue, name, tuple(self.queues)) from exc
        return result
