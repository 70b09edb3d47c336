"""Whether the kit was applied to an app: the check behind every entry point that needs it.

An app the kit was never applied to has no ``SENT`` records and routes wherever Celery's
defaults say, so its status would read ``unknown`` for tasks that are queued: the web
adapters and ``get_task_info`` refuse it up front, naming the call that fixes it.
"""

from __future__ import annotations

from celery import Celery

from taskqueue_kit._exceptions import ConfigurationError

__all__ = ["INITIALISED_KEY", "ensure_initialised"]

#: Set in the app's configuration by ``init_celery``.
INITIALISED_KEY = "taskqueue_kit"


def ensure_initialised(app: Celery) -> Celery:
    """Return ``app``, or refuse an app the kit was never applied to.

    Raises:
        ConfigurationError: the app has not been through ``init_celery``.
    """
    if not app.conf.get(INITIALISED_KEY):
        raise ConfigurationError(
            f"the Celery app {app.main!r} was not set up by taskqueue-kit: call "
            "taskqueue_kit.init_celery(app, settings) on it (or build it with create_celery)",
            field=None,
        )
    return app
