"""Colon-prefix routing: a task named ``queue:rest`` goes to queue ``queue``, and only there.

:func:`route_task` is a plain Celery router (``task_routes``) that maps a name to a queue
and refuses, with :class:`UnknownQueueError`, a prefix that is not a declared queue, so a
typo in a task name fails at ``delay()`` instead of silently creating a queue that no worker
reads. An explicit ``queue=`` is checked by Celery itself (``task_create_missing_queues``
off) and reported as the same error by :class:`~taskqueue_kit.KitTask`. (Celery swallows
exceptions raised in signal handlers, so this check cannot live in ``before_task_publish``.)
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from celery import current_app
from kombu import Exchange, Queue

from taskqueue_kit._exceptions import UnknownQueueError
from taskqueue_kit._sent import note_routed

__all__ = ["QUEUE_ATTRIBUTE", "AppRouter", "declare_queues", "queue_for", "route_task"]

#: Task attribute naming the task's own queue (``retrying_task(queue=...)``), read here:
#: Celery 5.7 deprecates its own ``queue`` task attribute in favour of routers.
QUEUE_ATTRIBUTE = "taskqueue_queue"


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
    *,
    app: Any = None,
    **kw: Any,
) -> dict[str, str]:
    """Celery router: ``"polarity:analyze"`` → ``{"queue": "polarity"}``.

    Names without a colon go to the app's default queue. A task's own queue
    (``retrying_task(queue=...)``) comes before its prefix, and an explicit ``queue=`` in the
    send options wins over both: the router then answers nothing and Celery uses the option.

    Args:
        name: The task name.
        args: Positional arguments of the call (unused; part of Celery's router protocol).
        kwargs: Keyword arguments of the call (unused).
        options: Send options; an explicit ``queue`` there wins.
        task: The task object when registered; its app gives the default queue and the
            declared queues.
        app: The app, when the task is not known (``app.send_task`` by name); by default
            the task's app, else Celery's current app.
        **kw: Further keyword arguments Celery may pass.

    Returns:
        The routing decision, ``{"queue": name}``, or ``{}`` when ``queue=`` was given.

    Raises:
        UnknownQueueError: the prefix names a queue the task's app does not declare.
    """
    if options.get("queue"):
        return {}
    if task is not None and getattr(task, "app", None) is not None:
        app = task.app
    conf = (app or current_app).conf
    queue = getattr(task, QUEUE_ATTRIBUTE, None) or queue_for(
        name, conf.task_default_queue or "celery"
    )
    if app is not None and conf.get("task_create_missing_queues") is False:
        declared = app.amqp.queues
        if queue not in declared:
            raise UnknownQueueError(queue, name, tuple(declared))
    return {"queue": queue}


def declare_queues(names: Iterable[str]) -> tuple[Queue, ...]:
    """One queue per name, each bound to its own direct exchange under its own name.

    This makes a message for ``polarity`` reach queue ``polarity`` and nothing else, on
    RabbitMQ and Redis alike, instead of resting on Celery's default exchange bindings.
    """
    return tuple(Queue(name, Exchange(name, type="direct"), routing_key=name) for name in names)


class AppRouter:
    """:func:`route_task` bound to one app, as ``init_celery`` installs it in ``task_routes``.

    Celery passes a router the task object only when the task is registered; bound, the
    router knows the declared queues for ``app.send_task("name")`` by name too. It holds
    the app weakly, so the app's configuration does not keep the app alive.
    """

    def __init__(self, app: Any) -> None:
        self._app = weakref.ref(app)

    def __call__(
        self,
        name: str,
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        options: Mapping[str, Any],
        task: Any = None,
        **kw: Any,
    ) -> dict[str, str]:
        """Route as :func:`route_task` does, for this router's app."""
        app = self._app()
        if app is not None:
            note_routed(app, name)  # for the sent record of app.send_task by name
        return route_task(name, args, kwargs, options, task, app=app, **kw)

    def __eq__(self, other: object) -> bool:
        # It is route_task, bound: celery_config(settings)["task_routes"] == (route_task,)
        # still describes the app's configuration exactly.
        return other is route_task or isinstance(other, AppRouter)

    def __hash__(self) -> int:
        return hash(route_task)
