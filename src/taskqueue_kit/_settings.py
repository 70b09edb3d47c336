"""Settings: one validated object that says everything the kit needs to build a Celery app.

Values come from keyword arguments, then ``TASKQUEUE_*`` environment variables, then a
``.env`` file. The ``CELERY_BROKER_URL``, ``CELERY_RESULT_BACKEND`` and ``CELERY_CONFIG``
of hand-written Celery setups are read as fallbacks, so such apps migrate by changing
their imports only.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self
from urllib.parse import urlsplit

from pydantic import AfterValidator, AliasChoices, Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

from taskqueue_kit import _extras, _sqlite
from taskqueue_kit._exceptions import (
    ConfigurationError,
    validation_errors_as_configuration_errors,
)

__all__ = ["Profile", "QueueName", "TaskQueueSettings", "TimeLimit", "check_time_limits"]

logger = logging.getLogger("taskqueue_kit")

Profile = Literal["development", "production", "testing"]

_QUEUE_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,200}$")
_EMBEDDED_SCHEMES = frozenset({"tqsqlite"})
# kombu's Redis transport restores unacknowledged messages after this many seconds.
_REDIS_DEFAULT_VISIBILITY = 3600.0


def _check_queue_name(value: str) -> str:
    if not _QUEUE_NAME.fullmatch(value):
        raise ValueError(f"queue name {value!r} must match [A-Za-z0-9_.-]{{1,200}}")
    return value


# Shared with ``retrying_task``, so a value the settings refuse is refused there the same way.
QueueName = Annotated[str, AfterValidator(_check_queue_name)]
"""A queue name: 1 to 200 of ``[A-Za-z0-9_.-]``."""
TimeLimit = Annotated[float, Field(gt=0, allow_inf_nan=False)]
"""A time limit in seconds: above 0 and finite (no limit is ``None``)."""


def check_time_limits(
    hard: float | None, soft: float | None, *, hard_field: str, soft_field: str
) -> None:
    """Refuse a soft time limit that would never fire before the hard one.

    Raises:
        ConfigurationError: naming ``soft_field``.
    """
    if hard is not None and soft is not None and soft >= hard:
        raise ConfigurationError(
            f"{soft_field} ({soft}) must be below {hard_field} ({hard})", field=soft_field
        )


def _env(name: str, *fallbacks: str) -> AliasChoices:
    """Accept ``TASKQUEUE_<NAME>`` first, then each ``CELERY_*`` fallback, as variables."""
    return AliasChoices(f"TASKQUEUE_{name.upper()}", *fallbacks)


class TaskQueueSettings(BaseSettings):
    """Everything ``create_celery`` needs; safe defaults in every profile.

    Attributes:
        profile: ``development`` (the default), ``production`` (acks late, confirmed
            publishing, refuses settings that lose work) or ``testing`` (a fresh temporary
            embedded data directory per app).
        broker_url: ``amqp://``, ``redis://`` or another kombu URL; ``None`` means the
            embedded SQLite broker under ``home``.
        result_backend: A Celery result backend URL; ``None`` means the embedded SQLite
            backend under ``home``. ``rpc://`` is accepted but only the sender can read it.
        home: Data directory of the embedded broker and backend (``TASKQUEUE_HOME``).
        queues: Queue names to declare; the default queue is always added, first.
        default_queue: Queue for task names without a ``prefix:``.
        prefetch_multiplier: Messages a worker process reserves ahead (1: fair dispatch).
        acks_late: Acknowledge after the task ran, so a crash redelivers it; ``None``
            means on in production and on the embedded broker, off elsewhere.
        task_time_limit: Hard limit in seconds; the worker process is killed past it.
        task_soft_time_limit: Soft limit in seconds; raises ``SoftTimeLimitExceeded``.
        result_expires: Seconds results are kept.
        send_events: Emit worker and task events (needed by Flower).
        track_sent: Record each task as ``SENT`` before publishing it, so an id that was
            never sent reads as ``unknown`` rather than Celery's ambiguous ``PENDING``.
        allow_pickle: Accept pickle. Anyone who can write to the broker can then run code
            in the worker; off unless you really need it.
        broker_transport_options: Passed to kombu as they are.
        progress_interval: Minimum seconds between two progress writes of one task.
        autoscale: ``(max, min)`` worker processes: every ``celery worker`` of the app
            grows its pool up to ``max`` under load and shrinks to ``min`` when idle, as
            with ``--autoscale=max,min`` (which still wins when given).
        max_deliveries: Deliveries after which a task whose worker process died each time
            is failed with ``DeliveryLimitExceeded`` instead of run again (counted in the
            result backend for deliveries the broker marks as redelivered); ``None``: no
            bound.
        log_task_context: Give every log record created while a task runs ``task_id``
            and ``task_name`` attributes (``None`` outside a task), in every process
            that loads the app.
    """

    model_config = SettingsConfigDict(
        env_prefix="TASKQUEUE_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="forbid",
        # By field name as well as by alias. Its pydantic 2.11 spelling (validate_by_name and
        # validate_by_alias) would raise the floors to pydantic 2.11, pydantic-settings 2.13.
        populate_by_name=True,
        frozen=True,
    )

    profile: Profile = Field(
        default="development", validation_alias=_env("profile", "CELERY_CONFIG")
    )
    broker_url: str | None = Field(
        default=None, validation_alias=_env("broker_url", "CELERY_BROKER_URL")
    )
    result_backend: str | None = Field(
        default=None, validation_alias=_env("result_backend", "CELERY_RESULT_BACKEND")
    )
    home: Path = Field(default=Path(".taskqueue"))
    default_queue: QueueName = "celery"
    queues: Annotated[tuple[QueueName, ...], NoDecode] = ()
    prefetch_multiplier: int = Field(default=1, ge=1)
    acks_late: bool | None = None
    task_time_limit: TimeLimit | None = None
    task_soft_time_limit: TimeLimit | None = None
    result_expires: float = Field(default=86_400.0, ge=0)
    send_events: bool = False
    track_sent: bool = True
    allow_pickle: bool = False
    broker_transport_options: dict[str, Any] = Field(default_factory=dict)
    progress_interval: float = Field(default=0.5, ge=0)
    autoscale: tuple[int, int] | None = None
    max_deliveries: int | None = Field(default=5, ge=1)
    log_task_context: bool = False

    if not TYPE_CHECKING:  # keep pydantic's typed __init__ visible to type checkers

        def __init__(self, *args: Any, **values: Any) -> None:
            try:
                with validation_errors_as_configuration_errors("settings", type(self).model_fields):
                    super().__init__(*args, **values)
            except SettingsError as exc:  # e.g. an environment variable that is not valid JSON
                raise ConfigurationError(f"invalid settings: {exc}") from exc
            self.check()

    # pydantic's other ways in run ``__init__`` inside its own validation and would wrap the
    # ConfigurationError it raises in a ValidationError; they raise the kit's error instead.

    @classmethod
    def model_validate(cls, obj: Any, *args: Any, **kwargs: Any) -> Self:
        """Validate a mapping or object; bad values raise :class:`ConfigurationError`."""
        with validation_errors_as_configuration_errors("settings", cls.model_fields):
            return super().model_validate(obj, *args, **kwargs)

    @classmethod
    def model_validate_json(cls, json_data: Any, *args: Any, **kwargs: Any) -> Self:
        """Validate a JSON document; bad values raise :class:`ConfigurationError`."""
        with validation_errors_as_configuration_errors("settings", cls.model_fields):
            return super().model_validate_json(json_data, *args, **kwargs)

    @classmethod
    def model_validate_strings(cls, obj: Any, *args: Any, **kwargs: Any) -> Self:
        """Validate a mapping of strings; bad values raise :class:`ConfigurationError`."""
        with validation_errors_as_configuration_errors("settings", cls.model_fields):
            return super().model_validate_strings(obj, *args, **kwargs)

    @field_validator("queues", mode="before")
    @classmethod
    def _split_queues(cls, value: Any) -> Any:
        """Let ``TASKQUEUE_QUEUES=polarity,mail`` work as well as a JSON list."""
        if isinstance(value, str):
            if value.lstrip().startswith("["):
                return json.loads(value)
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("queues")
    @classmethod
    def _add_default_queue(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        default = info.data.get("default_queue")
        # The default queue is always declared, first; duplicates are dropped.
        return tuple(dict.fromkeys((default, *value) if default else value))

    @field_validator("broker_url", "result_backend")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        parts = urlsplit(value)
        if not parts.scheme or "://" not in value:
            raise ValueError(f"{value!r} is not a URL (expected scheme://...)")
        return value

    @field_validator("autoscale")
    @classmethod
    def _check_autoscale(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        if value is not None and not (1 <= value[1] <= value[0]):
            raise ValueError("autoscale is (max, min) with 1 <= min <= max")
        return value

    # -- derived values -------------------------------------------------------------

    @property
    def all_queues(self) -> tuple[str, ...]:
        """Declared queues, the default one first, without duplicates."""
        # ``queues`` already holds the default queue unless a model_copy changed one of them.
        return tuple(dict.fromkeys((self.default_queue, *self.queues)))

    @property
    def effective_broker_url(self) -> str:
        """The broker URL in use: the configured one, or the embedded SQLite file."""
        return self.broker_url or _sqlite.broker_url(self.home.resolve() / "broker.sqlite3")

    @property
    def effective_result_backend(self) -> str:
        """The result backend URL in use: the configured one, or the embedded SQLite file."""
        return self.result_backend or _sqlite.backend_url(self.home.resolve() / "results.sqlite3")

    @property
    def broker_scheme(self) -> str:
        """The broker URL's scheme, e.g. ``amqp``, ``redis`` or ``tqsqlite``."""
        return urlsplit(self.effective_broker_url).scheme.lower()

    @property
    def uses_embedded_broker(self) -> bool:
        """True when the broker is the kit's SQLite file."""
        return self.broker_scheme in _EMBEDDED_SCHEMES

    @property
    def effective_acks_late(self) -> bool:
        """``acks_late`` as set, else on in production and on the embedded broker.

        On the embedded broker a worker that dies mid-task (SIGKILL, a crash, the machine
        going down) leaves its claimed message to come back within a second or two; with
        early acks it would be gone and its status ``started`` for good.
        """
        if self.acks_late is not None:
            return self.acks_late
        return self.profile == "production" or self.uses_embedded_broker

    @property
    def effective_reject_on_worker_lost(self) -> bool:
        """Celery's ``task_reject_on_worker_lost``: ``acks_late`` as set, else production.

        Off by default outside production even with late acks, so a task that kills its
        pool process is failed with ``WorkerLostError`` instead of being delivered again
        without end.
        """
        return self.profile == "production" if self.acks_late is None else self.acks_late

    def check(self) -> None:
        """Refuse combinations that would lose or duplicate work.

        Raises:
            ConfigurationError: naming the field at fault.
            MissingExtra: a URL needs an extra that is not installed (a ``redis://`` URL
                without the redis extra), said here rather than by Celery's import error.
        """
        _extras.require_for_url(self.broker_url, "broker", field="broker_url")
        _extras.require_for_url(self.result_backend, "result backend", field="result_backend")
        hard, soft = self.task_time_limit, self.task_soft_time_limit
        check_time_limits(
            hard, soft, hard_field="task_time_limit", soft_field="task_soft_time_limit"
        )
        if self.profile != "production":
            return
        if self.uses_embedded_broker:
            raise ConfigurationError(
                "the embedded SQLite broker is for one machine and development; "
                "set broker_url to amqp:// or redis:// in production",
                field="broker_url",
            )
        if self.broker_scheme in {"redis", "rediss", "sentinel"}:
            visibility = float(
                self.broker_transport_options.get("visibility_timeout", _REDIS_DEFAULT_VISIBILITY)
            )
            if hard is None:
                logger.warning(
                    "taskqueue-kit: no task_time_limit with Redis in production; a task running "
                    "longer than the visibility timeout (%ss) is delivered twice",
                    visibility,
                )
            elif visibility < hard:
                raise ConfigurationError(
                    f"broker_transport_options['visibility_timeout'] ({visibility}s) is shorter "
                    f"than task_time_limit ({hard}s): Redis would deliver a running task again",
                    field="broker_transport_options",
                )
