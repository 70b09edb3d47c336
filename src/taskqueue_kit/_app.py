"""Config factories: from :class:`TaskQueueSettings` to a configured ``celery.Celery``.

``celery_config`` is pure: it returns the exact mapping ``init_celery`` applies, so the
mapping can be inspected, diffed and tested. ``init_celery`` applies it to any app, a
service's own included, through what Celery documents: its configuration, ``task_routes``,
the ``app.Task`` base class and the ``before_task_publish`` signal (:mod:`._sent`).
``create_celery(settings)`` is ``init_celery(Celery(main), settings)``.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import weakref
from pathlib import Path
from typing import Any

from celery import Celery
from celery.app.defaults import DEFAULTS
from kombu import Queue

from taskqueue_kit._deliveries import MAX_DELIVERIES_KEY
from taskqueue_kit._initialised import INITIALISED_KEY
from taskqueue_kit._logcontext import install as install_log_context
from taskqueue_kit._prompt_acks import PromptAcks
from taskqueue_kit._revokes import LoadRevokes
from taskqueue_kit._routing import AppRouter, declare_queues, route_task
from taskqueue_kit._sent import TRACK_SENT_KEY
from taskqueue_kit._settings import TaskQueueSettings
from taskqueue_kit._task import KitTask

__all__ = ["celery_config", "create_celery", "init_celery"]

logger = logging.getLogger("taskqueue_kit")

PROGRESS_INTERVAL_KEY = "taskqueue_progress_interval"
PROFILE_KEY = "taskqueue_profile"
AUTOSCALE_KEY = "taskqueue_autoscale"

_PICKLE_WARNING = (
    "taskqueue-kit: allow_pickle=True: workers will unpickle messages and results, so anyone "
    "who can write to the broker or the result backend can run arbitrary code in them"
)

# Settings fields an app may already have set in its own configuration, with the Celery
# setting each comes from. Where the user did not pass the field, the app's own value is
# adopted (so a service keeps its broker); where the user did, the user's value wins.
_ADOPTED = {
    "broker_url": "broker_url",
    "result_backend": "result_backend",
    "broker_transport_options": "broker_transport_options",
    "prefetch_multiplier": "worker_prefetch_multiplier",
    "acks_late": "task_acks_late",
    "task_time_limit": "task_time_limit",
    "task_soft_time_limit": "task_soft_time_limit",
    "result_expires": "result_expires",
    "send_events": "worker_send_task_events",
    "default_queue": "task_default_queue",
}


def celery_config(settings: TaskQueueSettings | None = None) -> dict[str, Any]:
    """The Celery configuration mapping for ``settings``; exactly what ``init_celery`` applies.

    Args:
        settings: The settings; read from the environment when omitted.

    Returns:
        A mapping of lowercase Celery setting names (plus three ``taskqueue_*`` keys the
        kit reads back at run time).

    Raises:
        ConfigurationError: the settings combine into something that loses work.
    """
    settings = TaskQueueSettings() if settings is None else settings
    settings.check()
    content = ["json", "pickle"] if settings.allow_pickle else ["json"]
    serializer = "pickle" if settings.allow_pickle else "json"
    production = settings.profile == "production"
    transport_options = dict(settings.broker_transport_options)
    if production and settings.broker_scheme in {"amqp", "amqps", "pyamqp"}:
        transport_options.setdefault("confirm_publish", True)
    if settings.uses_embedded_broker:
        # The embedded broker sets aside what the worker would refuse (docs/security.md).
        transport_options.setdefault("accept_content", content)
    config: dict[str, Any] = {
        "broker_url": settings.effective_broker_url,
        "result_backend": settings.effective_result_backend,
        "broker_transport_options": transport_options,
        "broker_connection_retry_on_startup": True,
        "accept_content": content,
        "result_accept_content": content,
        "task_serializer": serializer,
        "result_serializer": serializer,
        "event_serializer": "json",
        "task_default_queue": settings.default_queue,
        "task_default_exchange": settings.default_queue,
        "task_default_exchange_type": "direct",
        "task_default_routing_key": settings.default_queue,
        "task_queues": declare_queues(settings.all_queues),
        "task_routes": (route_task,),
        "task_create_missing_queues": False,
        "worker_prefetch_multiplier": settings.prefetch_multiplier,
        "task_track_started": True,
        "task_acks_late": settings.effective_acks_late,
        "task_reject_on_worker_lost": settings.effective_reject_on_worker_lost,
        "task_time_limit": settings.task_time_limit,
        "task_soft_time_limit": settings.task_soft_time_limit,
        "result_expires": settings.result_expires,
        "result_extended": True,
        "worker_send_task_events": settings.send_events,
        "task_send_sent_event": settings.send_events,
        "worker_hijack_root_logger": False,
        TRACK_SENT_KEY: settings.track_sent,
        PROGRESS_INTERVAL_KEY: settings.progress_interval,
        MAX_DELIVERIES_KEY: settings.max_deliveries,
        PROFILE_KEY: settings.profile,
        INITIALISED_KEY: True,
    }
    if settings.autoscale is not None:
        config[AUTOSCALE_KEY] = settings.autoscale
    return config


def _own_value(app: Celery, key: str) -> Any:
    """The app's own value of a Celery setting, or ``None`` where it has Celery's default."""
    value = getattr(app.conf, key) if key in {"broker_url", "result_backend"} else app.conf.get(key)
    default = DEFAULTS.get(key)
    if value is None or value == default:
        return None
    if key in {"task_time_limit", "task_soft_time_limit", "result_expires"}:
        seconds = getattr(value, "total_seconds", None)  # result_expires may be a timedelta
        return float(seconds()) if callable(seconds) else value
    return value


def _adopt(app: Celery, settings: TaskQueueSettings) -> TaskQueueSettings:
    """The settings with the app's own values where the user did not pass the field."""
    given = settings.model_fields_set
    adopted = {
        field: value
        for field, key in _ADOPTED.items()
        if field not in given and (value := _own_value(app, key)) is not None
    }
    return settings.model_copy(update=adopted) if adopted else settings


def _merged_queues(app: Celery, kit_queues: tuple[Queue, ...]) -> tuple[Queue, ...]:
    """The app's own declared queues as they are, then the kit's for every other name."""
    own = tuple(app.conf.get("task_queues") or ())
    names = {queue.name for queue in own}
    return own + tuple(queue for queue in kit_queues if queue.name not in names)


def _kit_task_base(app: Celery) -> None:
    """Put :class:`KitTask` in front of the app's own task base class (``task_cls``).

    ``app.Task`` is the base Celery documents for changing every task of an app; tasks
    created from now on get the kit's send path, the app's own base class behind it.
    """
    base: type[Any] = app.Task
    if issubclass(base, KitTask):
        return
    combined = type(str(base.__name__), (KitTask, base), {"__module__": base.__module__})
    app.Task = combined  # type: ignore[misc]  # a settable cached_property; celery-types says read-only
    registry: Any = app.tasks if getattr(app, "finalized", False) else {}
    stale = sorted(
        name
        for name, task in registry.items()
        if not name.startswith("celery.") and not isinstance(task, KitTask)
    )
    if stale:
        logger.warning(
            "taskqueue-kit: init_celery ran after these tasks were created, so they keep "
            "Celery's send path without the sent record: %s; call init_celery right after "
            "Celery(...)",
            ", ".join(stale),
        )


def init_celery(app: Celery, settings: TaskQueueSettings | None = None) -> Celery:
    """Apply the kit to an app you already have: configuration, routing, sent records.

    The app keeps its own broker, backend and limits wherever ``settings`` does not name
    them; what ``settings`` names wins, and a log line says which of the app's own settings
    were replaced. The kit's safety settings (JSON only unless ``allow_pickle``, refusal of
    undeclared queues, the production guards) always apply. The app's own declared queues
    and ``task_routes`` are kept: its routes are asked first, then :func:`route_task`.

    Args:
        app: The service's ``Celery`` app, with its own ``amqp=``, ``task_cls=`` or loader
            if it has them. Call this before defining tasks on it.
        settings: The settings; read from ``TASKQUEUE_*`` environment variables when omitted.

    Returns:
        The same app object. In the ``testing`` profile with the embedded default, it gets
        a fresh temporary data directory, removed when the app is garbage-collected.

    Raises:
        ConfigurationError: the settings, or the app's own values, cannot work.
    """
    settings = _adopt(app, TaskQueueSettings() if settings is None else settings)
    temporary: Path | None = None
    if settings.profile == "testing" and (not settings.broker_url or not settings.result_backend):
        temporary = Path(tempfile.mkdtemp(prefix="taskqueue-kit-"))
        settings = settings.model_copy(update={"home": temporary})
    config = celery_config(settings)
    if settings.allow_pickle:
        logger.warning(_PICKLE_WARNING)
    config["task_queues"] = _merged_queues(app, config["task_queues"])
    own_routes = app.conf.get("task_routes") or ()
    own = tuple(own_routes) if isinstance(own_routes, list | tuple) else (own_routes,)
    config["task_routes"] = (*(r for r in own if r != route_task), AppRouter(app))
    replaced = sorted(
        key
        for key, value in config.items()
        if key not in {"task_queues", "task_routes"}
        and (own := _own_value(app, key)) is not None
        and own != value
    )
    if replaced:
        logger.info("taskqueue-kit: init_celery replaced the app's own %s", ", ".join(replaced))
    app.conf.update(config)
    _kit_task_base(app)
    app.steps["consumer"].add(PromptAcks)
    app.steps["consumer"].add(LoadRevokes)
    if settings.log_task_context:
        install_log_context()
    if settings.autoscale is not None:
        # ``celery worker`` reads its options from CELERY_WORKER_* too (Click's envvar
        # prefix); an explicit --autoscale still wins.
        os.environ.setdefault("CELERY_WORKER_AUTOSCALE", "{},{}".format(*settings.autoscale))
    if temporary is not None:
        weakref.finalize(app, shutil.rmtree, temporary, ignore_errors=True)
    return app


def create_celery(
    settings: TaskQueueSettings | None = None,
    *,
    main: str | None = None,
    **celery_kwargs: Any,
) -> Celery:
    """A fully configured Celery app: ``init_celery(Celery(main, **celery_kwargs), settings)``.

    Args:
        settings: The settings; read from ``TASKQUEUE_*`` environment variables when omitted.
        main: Name of the main module, as for ``Celery(main)``.
        **celery_kwargs: Passed to ``celery.Celery`` (``include=``, ``task_cls=``, ...).

    Returns:
        The app.

    Raises:
        ConfigurationError: the settings cannot work.
    """
    celery_kwargs.setdefault("task_cls", KitTask)
    return init_celery(Celery(main, **celery_kwargs), settings)
