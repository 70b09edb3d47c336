"""The demo's Celery app, for ``celery -A taskqueue_kit.demo.celery_app worker -Q polarity``.

Settings come from ``TASKQUEUE_*`` environment variables (and ``.env``) like any app made
with :func:`taskqueue_kit.create_celery`: with none set, the broker and the results live
in ``./.taskqueue``, so a worker and a web process started in the same directory find
each other with no server installed.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import worker_init

from taskqueue_kit import TaskQueueSettings, create_celery
from taskqueue_kit.demo import model, tasks
from taskqueue_kit.demo.tasks import QUEUE

__all__ = ["QUEUE", "app", "make_celery"]


def make_celery(settings: TaskQueueSettings | None = None) -> Celery:
    """A Celery app for the sentiment tasks, declaring the ``polarity`` queue.

    Args:
        settings: The settings; read from the environment when omitted. The ``polarity``
            queue is added to their queues.

    Returns:
        The app, with :mod:`taskqueue_kit.demo.tasks` registered.
    """
    settings = TaskQueueSettings() if settings is None else settings
    if QUEUE not in settings.all_queues:
        settings = settings.model_copy(update={"queues": (*settings.queues, QUEUE)})
    # The tasks are shared tasks: importing their module registers them on every app;
    # include= makes a worker import it too.
    return create_celery(settings, main="taskqueue_kit.demo", include=[tasks.__name__])


app = make_celery()


@worker_init.connect
def _load_model_before_fork(sender: Any = None, **_: Any) -> None:
    """Load TextBlob in the worker's main process, so forked pool processes share it.

    Without this, each pool process would spend about a second importing TextBlob when
    its first review arrives.
    """
    if getattr(sender, "app", None) is app:
        model.load()
