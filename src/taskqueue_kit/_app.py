"""Config factories: from :class:`TaskQueueSettings` to a configured ``celery.Celery``.

``celery_config`` is pure: it returns the exact mapping ``create_celery`` applies, so the
mapping can be inspected, diffed and tested. ``create_celery`` adds what a mapping cannot
carry: the send path that records sent tasks and refuses undeclared queues.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import weakref
from collections.abc import Callable, Iterator
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

from celery import Celery
from celery.app import backends
from celery.app.amqp import AMQP
from celery.apps.worker import Worker

from taskqueue_kit._argsrepr import fast_saferepr
from taskqueue_kit._results import begin_add_if_absent, discard_if_sent, sent_meta
from taskqueue_kit._routing import KitRouter, declare_queues, route_task
from taskqueue_kit._settings import TaskQueueSettings
from taskqueue_kit._task import KitTask

__all__ = ["KitAMQP", "KitCelery", "KitWorker", "celery_config", "create_celery"]

logger = logging.getLogger("taskqueue_kit")

T = TypeVar("T")

TRACK_SENT_KEY = "taskqueue_track_sent"
PROGRESS_INTERVAL_KEY = "taskqueue_progress_interval"
PROFILE_KEY = "taskqueue_profile"
AUTOSCALE_KEY = "taskqueue_autoscale"

_PICKLE_WARNING = (
    "taskqueue-kit: allow_pickle=True: workers will unpickle messages and results, so anyone "
    "who can write to the broker or the result backend can run arbitrary code in them"
)


def celery_config(settings: TaskQueueSettings | None = None) -> dict[str, Any]:
    """The Celery configuration mapping for ``settings``; exactly what ``create_celery`` applies.

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
        "task_reject_on_worker_lost": settings.effective_acks_late,
        "task_time_limit": settings.task_time_limit,
        "task_soft_time_limit": settings.task_soft_time_limit,
        "result_expires": settings.result_expires,
        "result_extended": True,
        "worker_send_task_events": settings.send_events,
        "task_send_sent_event": settings.send_events,
        "worker_hijack_root_logger": False,
        TRACK_SENT_KEY: settings.track_sent,
        PROGRESS_INTERVAL_KEY: settings.progress_interval,
        PROFILE_KEY: settings.profile,
    }
    if settings.autoscale is not None:
        config[AUTOSCALE_KEY] = settings.autoscale
    return config


def create_celery(
    settings: TaskQueueSettings | None = None,
    *,
    main: str | None = None,
    **celery_kwargs: Any,
) -> Celery:
    """A fully configured Celery app: JSON only, declared queues, colon-prefix routing.

    Args:
        settings: The settings; read from ``TASKQUEUE_*`` environment variables when omitted.
        main: Name of the main module, as for ``Celery(main)``.
        **celery_kwargs: Passed to ``celery.Celery`` (``include=``, ``task_cls=``, ...).

    Returns:
        The app. In the ``testing`` profile with the embedded default, it gets a fresh
        temporary data directory, removed when the app is garbage-collected.

    Raises:
        ConfigurationError: the settings cannot work.
    """
    settings = TaskQueueSettings() if settings is None else settings
    temporary: Path | None = None
    if settings.profile == "testing" and (not settings.broker_url or not settings.result_backend):
        temporary = Path(tempfile.mkdtemp(prefix="taskqueue-kit-"))
        settings = settings.model_copy(update={"home": temporary})
    config = celery_config(settings)
    if settings.allow_pickle:
        logger.warning(_PICKLE_WARNING)
    celery_kwargs.setdefault("amqp", KitAMQP)
    celery_kwargs.setdefault("task_cls", KitTask)
    app = KitCelery(main, **celery_kwargs)
    app.conf.update(config)
    if temporary is not None:
        weakref.finalize(app, shutil.rmtree, temporary, ignore_errors=True)
    return app


class KitWorker(Worker):
    """``celery worker`` that takes its autoscale bounds from the settings.

    Celery reads ``--autoscale`` only from the command line; with ``autoscale=(max, min)``
    in the settings every worker of the app grows and shrinks its pool the same way. An
    explicit ``--autoscale`` still wins.
    """

    def __init__(
        self, app: Celery | None = None, hostname: str | None = None, **kwargs: Any
    ) -> None:
        app = app if app is not None else self.app
        bounds = app.conf.get(AUTOSCALE_KEY) if app is not None else None
        if kwargs.get("autoscale") is None and bounds:
            kwargs["autoscale"] = [int(bounds[0]), int(bounds[1])]
        super().__init__(app=app, hostname=hostname, **kwargs)


class _WithoutArguments:
    """A task request as the result backend sees it: everything but the call's arguments.

    With ``result_extended`` Celery copies args and kwargs into every state record: a batch
    of 10,000 reviews would be rewritten with each progress step, arguments may hold
    personal data, and pickled arguments cannot be stored as JSON at all. Name, queue,
    retries and worker are kept.
    """

    __slots__ = ("_request",)

    def __init__(self, request: Any) -> None:
        self._request = request

    def __getattr__(self, name: str) -> Any:
        if name in {"args", "kwargs"}:
            return None
        return getattr(self._request, name)


class KitCelery(Celery):
    """``celery.Celery`` whose result records carry task name, queue and retries, not args."""

    def _get_backend(self) -> Any:
        found: Any = backends.by_url(self.backend_cls or self.conf.result_backend, self.loader)
        backend_cls, url = found
        if backend_cls.__module__ == "celery.backends.redis":  # imports redis-py: an extra
            from taskqueue_kit._redis import kit_backend_class

            backend_cls = kit_backend_class(backend_cls)
        backend = backend_cls(app=self, url=url)
        build_meta = backend._get_result_meta

        def result_meta(
            result: Any,
            state: str,
            traceback: Any,
            request: Any,
            format_date: bool = True,
            encode: bool = False,
        ) -> dict[str, Any]:
            hidden = None if request is None else _WithoutArguments(request)
            meta: dict[str, Any] = build_meta(result, state, traceback, hidden, format_date, encode)
            return meta

        backend._get_result_meta = result_meta
        return backend

    @cached_property
    def Worker(self) -> Any:
        """``celery worker``'s class for this app: Celery's, with autoscale from settings."""
        return self.subclass_with_self(KitWorker)

    def close(self) -> None:
        """Close broker connections and, unlike Celery's, this thread's result backend too."""
        local: Any = getattr(self, "_local", None)
        backend = getattr(local, "backend", None)
        if backend is not None:
            consumer = getattr(backend, "result_consumer", None)
            stop = getattr(consumer, "stop", None)
            if callable(stop):
                stop()
            pool = getattr(getattr(backend, "client", None), "connection_pool", None)
            if pool is not None:
                pool.disconnect()
        super().close()


class KitAMQP(AMQP):
    """Celery's AMQP layer with the kit's send path (see :mod:`taskqueue_kit._routing`)."""

    def Router(self, queues: Any = None, create_missing: bool | None = None) -> KitRouter:
        """Celery's router, refusing undeclared queues at send time."""
        return KitRouter(
            self.routes,
            queues or self.queues,
            self.app.either("task_create_missing_queues", create_missing),
            app=self.app,
        )

    def as_task_v2(
        self,
        task_id: str,
        name: str,
        args: Any = None,
        kwargs: Any = None,
        *rest: Any,
        **options: Any,
    ) -> Any:
        """Celery's message, with ``argsrepr``/``kwargsrepr`` made by :func:`fast_saferepr`.

        Where it declines, or the caller gave its own, Celery's ``saferepr`` runs as before.
        """
        if options.get("argsrepr") is None or options.get("kwargsrepr") is None:
            levels = int(self.app.conf.task_repr_maxlevels)
            if options.get("argsrepr") is None:
                options["argsrepr"] = fast_saferepr(args or (), self.argsrepr_maxsize, levels)
            if options.get("kwargsrepr") is None:
                options["kwargsrepr"] = fast_saferepr(kwargs or {}, self.kwargsrepr_maxsize, levels)
        return super().as_task_v2(task_id, name, args, kwargs, *rest, **options)

    def _create_task_sender(self) -> Callable[..., Any]:
        send: Callable[..., Any] = super()._create_task_sender()  # type: ignore[misc]
        app = self.app
        track_sent = bool(app.conf.get(TRACK_SENT_KEY))

        def send_task_message(producer: Any, name: str, message: Any, **kwargs: Any) -> Any:
            queue = kwargs.get("queue")
            if kwargs.get("declare") is None and queue is not None and not isinstance(queue, str):
                kwargs["declare"] = _DeclareUnlessCached(queue, producer)
            if not track_sent:
                return send(producer, name, message, **kwargs)
            headers = message[0]
            queue_name = queue if isinstance(queue, str) or queue is None else queue.name
            task_id = headers["id"]
            meta = sent_meta(task_id, name, queue_name, headers.get("retries", 0))
            finish = _guarded(task_id, lambda: begin_add_if_absent(app, task_id, meta))
            try:
                sent = send(producer, name, message, **kwargs)
            except BaseException:
                # Celery's publish retries are over: the task never reached the broker.
                if finish is not None and _guarded(task_id, finish):
                    _guarded(task_id, lambda: discard_if_sent(app, task_id))
                raise
            if finish is not None:
                _guarded(task_id, finish)
            return sent

        return send_task_message


class _DeclareUnlessCached(list[Any]):
    """``declare=[queue]`` for kombu, empty while kombu's cache says the queue is declared.

    Celery asks kombu to declare the queue on every send, and kombu binds a copy of it
    before it finds it in the connection's cache of declarations (``declared_entities``).
    kombu reads this list on every publish attempt, retries after a reconnect included,
    and a reconnect empties that cache: the queue is then declared again, as without it.
    """

    def __init__(self, queue: Any, producer: Any) -> None:
        super().__init__([queue])
        self._hash = hash(queue)
        self._producer = producer

    def _cached(self) -> bool:
        declared: set[int] | None = getattr(self._producer.connection, "declared_entities", None)
        return declared is not None and self._hash in declared

    def __len__(self) -> int:  # bool() asks this too
        return 0 if self._cached() else 1

    def __iter__(self) -> Iterator[Any]:
        return iter(()) if self._cached() else super().__iter__()


def _guarded(task_id: str, step: Callable[[], T]) -> T | None:
    """Run one step of keeping the sent record; a failure is logged, never raised.

    A status record must never stop the task itself from being sent.
    """
    try:
        return step()
    except Exception:
        logger.warning(
            "taskqueue-kit: could not keep the sent record of task %s", task_id, exc_info=True
        )
        return None
