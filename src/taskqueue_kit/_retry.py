"""Retrying tasks: exponential backoff with full jitter, declared once at the decorator.

Celery's own ``retry_backoff`` rounds its factor and its delays to whole seconds and reads
its settings from loose task attributes. Here one :class:`RetryPolicy` says it all, and the
n-th retry waits a random time in ``[0, min(backoff_max, backoff * 2**n)]``.

``retrying_task`` takes every option the installed Celery's ``app.task`` takes, read from
Celery itself (:func:`_celery_task_options`), and refuses any other name with an
:class:`~taskqueue_kit.OptionError` (a ``TypeError``) naming it. Values are refused by the
same rules, and with the same :class:`~taskqueue_kit.ConfigurationError`, as
:class:`RetryPolicy` and ``TaskQueueSettings`` apply to them.
"""

from __future__ import annotations

import inspect
import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Concatenate, Literal, ParamSpec, Self, TypeVar, overload

import celery.app.task
from celery import Celery, shared_task
from celery.exceptions import Ignore, Reject, Retry
from kombu import Queue
from pydantic import BaseModel, ConfigDict, Field, model_validator

from taskqueue_kit._compat.celery import exec_option_names, task_from_fun_keywords
from taskqueue_kit._exceptions import (
    ConfigurationError,
    OptionError,
    validation_errors_as_configuration_errors,
)
from taskqueue_kit._routing import QUEUE_ATTRIBUTE
from taskqueue_kit._settings import QueueName, TimeLimit, check_time_limits
from taskqueue_kit._task import KitTask

__all__ = ["RetryPolicy", "RetryingTask", "retrying_task"]

P = ParamSpec("P")
R = TypeVar("R")

ExceptionTypes = tuple[type[BaseException], ...]


class RetryPolicy(BaseModel):
    """When and how a task retries.

    Bad values raise :class:`~taskqueue_kit.ConfigurationError` naming the field, and an
    unknown field :class:`~taskqueue_kit.OptionError`, from ``RetryPolicy(...)``,
    ``RetryPolicy.model_validate(...)`` and ``retrying_task(...)`` alike.

    Attributes:
        retry_on: Exception types that trigger a retry.
        no_retry_on: Exception types that fail at once, even if ``retry_on`` matches them.
        max_retries: Retries after the first attempt (0 or more); then the task fails with
            the error.
        backoff: Base delay in seconds (0 or more); the n-th retry's cap is
            ``backoff * 2**n``.
        backoff_max: Upper bound of any delay, in seconds; not below ``backoff``, which
            would cap every wait, the first included, below what ``backoff`` says.
        jitter: Draw the delay uniformly from ``[0, cap]`` (full jitter); else wait the cap.
    """

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True, extra="forbid")

    retry_on: ExceptionTypes = (Exception,)
    no_retry_on: ExceptionTypes = ()
    max_retries: int = Field(default=3, ge=0)
    backoff: float = Field(default=1.0, ge=0, allow_inf_nan=False)
    backoff_max: float = Field(default=600.0, ge=0, allow_inf_nan=False)
    jitter: bool = True

    if not TYPE_CHECKING:  # keep pydantic's typed __init__ visible to type checkers

        def __init__(self, /, **values: Any) -> None:
            with validation_errors_as_configuration_errors("retry policy", _POLICY_FIELDS):
                super().__init__(**values)

    # pydantic's other ways in run ``__init__`` inside its own validation, which would wrap
    # the ConfigurationError it raises in a ValidationError; they raise the kit's error.

    @classmethod
    def model_validate(cls, obj: Any, *args: Any, **kwargs: Any) -> Self:
        """Validate a mapping or object; bad values raise :class:`ConfigurationError`."""
        with validation_errors_as_configuration_errors("retry policy", _POLICY_FIELDS):
            return super().model_validate(obj, *args, **kwargs)

    @classmethod
    def model_validate_json(cls, json_data: Any, *args: Any, **kwargs: Any) -> Self:
        """Validate a JSON document; bad values raise :class:`ConfigurationError`."""
        with validation_errors_as_configuration_errors("retry policy", _POLICY_FIELDS):
            return super().model_validate_json(json_data, *args, **kwargs)

    @classmethod
    def model_validate_strings(cls, obj: Any, *args: Any, **kwargs: Any) -> Self:
        """Validate a mapping of strings; bad values raise :class:`ConfigurationError`."""
        with validation_errors_as_configuration_errors("retry policy", _POLICY_FIELDS):
            return super().model_validate_strings(obj, *args, **kwargs)

    @model_validator(mode="after")
    def _check_bounds(self) -> Self:
        if self.backoff_max < self.backoff:
            raise ConfigurationError(
                f"invalid retry policy: backoff_max ({self.backoff_max}) is below backoff "
                f"({self.backoff}), so no wait would ever be backoff * 2**n; for a constant "
                "wait give both the same value",
                field="backoff_max",
            )
        return self

    def cap(self, retries: int) -> float:
        """The longest wait before retry number ``retries`` (counted from 0)."""
        # Compute 2**n only up to the point where it exceeds the bound, so huge n is cheap.
        exponent = min(max(retries, 0), 64)
        return min(self.backoff_max, self.backoff * (2.0**exponent))

    def countdown(self, retries: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number ``retries``, jittered if the policy says so."""
        cap = self.cap(retries)
        if not self.jitter:
            return cap
        return (rng or random).uniform(0.0, cap)


_POLICY_FIELDS = frozenset(RetryPolicy.model_fields)


class RetryingTask(KitTask):
    """A Celery task class that retries by its :class:`RetryPolicy`."""

    retry_policy: RetryPolicy = RetryPolicy()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the task; turn a retryable error into a scheduled retry."""
        policy = self.retry_policy
        try:
            return super().__call__(*args, **kwargs)
        except (Retry, Ignore, Reject):
            raise
        except Exception as exc:
            if (
                isinstance(exc, policy.no_retry_on)
                or not isinstance(exc, policy.retry_on)
                or self.request.called_directly
            ):
                raise
            retries = int(self.request.retries or 0)
            raise self.retry(
                exc=exc, countdown=policy.countdown(retries), max_retries=policy.max_retries
            ) from exc


# -- the options Celery takes ---------------------------------------------------------

# ``app.task()`` reads these itself, in an inner function Celery gives no handle on.
_APP_TASK_KEYWORDS = frozenset({"shared", "lazy", "filter"})
# Public class attributes of Celery's ``Task`` that are its machinery, not options.
_TASK_MACHINERY = frozenset({"abstract", "app", "from_config", "request_stack"})
# Celery's automatic retry, with the policy field to use instead of each. Beside the policy
# it would be a second retry mechanism that takes over the errors it names, with Celery's
# own backoff, so the kit refuses it rather than leaving one of the two silently unused.
_AUTORETRY = {
    "autoretry_for": "retry_on",
    "dont_autoretry_for": "no_retry_on",
    "retry_kwargs": "max_retries",
    "retry_backoff": "backoff",
    "retry_backoff_max": "backoff_max",
    "retry_jitter": "jitter",
}


def _celery_task_options() -> frozenset[str]:
    """The options the installed Celery's ``app.task`` honours.

    Celery makes every keyword of ``app.task`` an attribute of the new task class, so its
    options are: ``Task``'s public data attributes (and settable properties: ``backend``),
    the attributes it fills from the configuration (``Task.from_config``), the message
    options ``apply_async`` reads off the task (``queue``, ``routing_key``, ``exchange``...),
    the keywords of ``Celery._task_from_fun`` (``name``, ``base``, ``bind``, ``pydantic``
    and its companions) and those of ``app.task`` itself. Read from Celery rather than
    listed here, an option is accepted exactly on the Celery versions that honour it
    (``acks_on_failure`` and ``retry_on_worker_lost`` from 5.7, ``pydantic`` from 5.5).
    """
    names: set[str] = set(_APP_TASK_KEYWORDS)
    task_cls = celery.app.task.Task
    for name in dir(task_cls):
        if name.startswith("_"):
            continue
        attribute = inspect.getattr_static(task_cls, name)
        if isinstance(attribute, property):
            if attribute.fset is not None:
                names.add(name)
        elif not callable(attribute) and not isinstance(attribute, classmethod):
            names.add(name)
    names.update(option for option, _setting in getattr(task_cls, "from_config", ()))
    names.update(exec_option_names())
    names.update(task_from_fun_keywords())
    return frozenset(names - _TASK_MACHINERY - _POLICY_FIELDS)


_CELERY_OPTIONS = _celery_task_options()
_OWN_KEYWORDS = frozenset({"app", "bind", "policy"})
_KNOWN = _CELERY_OPTIONS | _POLICY_FIELDS | _OWN_KEYWORDS


class _CheckedOptions(BaseModel):
    """The Celery options the settings take too, checked by the settings' rules."""

    model_config = ConfigDict(frozen=True)

    queue: QueueName | None = None
    time_limit: TimeLimit | None = None
    soft_time_limit: TimeLimit | None = None
    acks_late: bool | None = None
    send_events: bool | None = None
    shared: bool = True
    lazy: bool = True


def _check_names(options: dict[str, Any]) -> None:
    for option in options:
        if option in _AUTORETRY:
            raise OptionError(
                f"retrying_task() does not take Celery's {option}=: the retry policy replaces "
                f"Celery's automatic retries; use {_AUTORETRY[option]}= instead",
                field=option,
            )
        if option not in _CELERY_OPTIONS:
            raise OptionError.unknown(option, _KNOWN, where="retrying_task()")


def _check_values(options: dict[str, Any]) -> dict[str, Any]:
    """The options with the checked ones validated (``acks_late="false"`` becomes False)."""
    given = {name: options[name] for name in _CheckedOptions.model_fields if name in options}
    if isinstance(given.get("queue"), Queue):  # a kombu Queue names itself; Celery takes it
        del given["queue"]
    with validation_errors_as_configuration_errors("task options"):
        checked = _CheckedOptions.model_validate(given)
    check_time_limits(
        checked.time_limit,
        checked.soft_time_limit,
        hard_field="time_limit",
        soft_field="soft_time_limit",
    )
    return {**options, **{name: getattr(checked, name) for name in given}}


def _build_policy(policy: RetryPolicy | None, overrides: dict[str, Any]) -> RetryPolicy:
    if policy is not None and overrides:
        raise OptionError(
            f"retrying_task() takes either policy= or {', '.join(sorted(overrides))}, not both",
            field=min(overrides),
        )
    if policy is None:
        return RetryPolicy(**overrides)
    if not isinstance(policy, RetryPolicy):
        raise ConfigurationError(
            f"retrying_task(policy=...) takes a RetryPolicy, got {policy!r}", field="policy"
        )
    return policy


def _check_base(base: Any) -> type[RetryingTask]:
    if not (isinstance(base, type) and issubclass(base, RetryingTask)):
        raise OptionError(
            f"retrying_task(base=...) takes a subclass of RetryingTask, got {base!r}",
            field="base",
        )
    if getattr(base, "autoretry_for", ()):
        raise OptionError(
            f"retrying_task(base={base.__name__}): the base sets Celery's autoretry_for, a "
            "second retry mechanism beside the retry policy; use retry_on= instead",
            field="base",
        )
    return base


if TYPE_CHECKING:
    from celery.app.task import Task as TypedTask


@overload
def retrying_task(fn: Callable[P, R], /) -> TypedTask[P, R]: ...


@overload
def retrying_task(
    *,
    bind: Literal[True],
    app: Celery | None = ...,
    policy: RetryPolicy | None = ...,
    retry_on: ExceptionTypes = ...,
    no_retry_on: ExceptionTypes = ...,
    max_retries: int = ...,
    backoff: float = ...,
    backoff_max: float = ...,
    jitter: bool = ...,
    **options: Any,
) -> Callable[[Callable[Concatenate[Any, P], R]], TypedTask[P, R]]: ...


@overload
def retrying_task(
    *,
    bind: Literal[False] = ...,
    app: Celery | None = ...,
    policy: RetryPolicy | None = ...,
    retry_on: ExceptionTypes = ...,
    no_retry_on: ExceptionTypes = ...,
    max_retries: int = ...,
    backoff: float = ...,
    backoff_max: float = ...,
    jitter: bool = ...,
    **options: Any,
) -> Callable[[Callable[P, R]], TypedTask[P, R]]: ...


def retrying_task(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    bind: bool = False,
    app: Celery | None = None,
    policy: RetryPolicy | None = None,
    **options: Any,
) -> Any:
    """Declare a Celery task that retries with capped, fully jittered exponential backoff.

    Usable bare (``@retrying_task``) or with options. Policy fields (``retry_on``,
    ``no_retry_on``, ``max_retries``, ``backoff``, ``backoff_max``, ``jitter``) may be given
    one by one or as ``policy=RetryPolicy(...)``. Every option the installed Celery's
    ``app.task`` takes passes through (``name``, ``queue``, ``time_limit``,
    ``soft_time_limit``, ``acks_late``, ``rate_limit``, ``priority``, ``pydantic``,
    ``typing``, ``throws``, ...), except Celery's automatic retry (``autoretry_for``,
    ``retry_backoff`` and their companions), which the policy replaces. ``shared``,
    ``lazy`` and ``filter`` act as in ``app.task`` with ``app=``; without it the task is a
    ``shared_task``, always shared and lazy, so ``shared=False`` and ``lazy=False`` are
    refused there. ``default_retry_delay`` applies to the task's own ``self.retry()``
    calls only; the policy sets every wait it schedules.

    Args:
        fn: The function, when used bare.
        bind: Pass the task as the first argument (``self``), as Celery's ``bind=True``.
        app: Bind to this app; by default a ``shared_task`` that every app picks up.
        policy: A complete retry policy.
        **options: Policy fields and Celery task options.

    Returns:
        The task, or a decorator that makes one.

    Raises:
        OptionError: (a ``TypeError``) an option Celery does not take, naming it; Celery's
            autoretry options; ``policy=`` beside policy fields; a ``base=`` that is not a
            :class:`RetryingTask`; ``shared=False`` or ``lazy=False`` without ``app=``.
        ConfigurationError: (a ``ValueError``) a bad value for a policy field, or for an
            option the settings take too (``queue``, the time limits, ``acks_late``,
            ``send_events``), refused as ``RetryPolicy`` and ``TaskQueueSettings`` refuse it.
    """
    overrides = {key: options.pop(key) for key in list(options) if key in _POLICY_FIELDS}
    _check_names(options)
    resolved = _build_policy(policy, overrides)
    options = _check_values(options)
    base = _check_base(options.pop("base", RetryingTask))
    # The policy's limit also serves the task's own ``self.retry()`` calls.
    options["max_retries"] = resolved.max_retries
    if app is None:
        for option in ("shared", "lazy"):
            if options.pop(option, True) is False:
                raise OptionError(
                    f"retrying_task({option}=False) needs app=: without it the task is a "
                    "shared_task, registered lazily on every app",
                    field=option,
                )
    task_filter = options.pop("filter", None)
    if isinstance(options.get("queue"), str):
        # Celery 5.7 deprecates ``queue`` as a task attribute in favour of task_routes; the
        # kit's router reads this one instead, so the task still goes where it says.
        options[QUEUE_ATTRIBUTE] = options.pop("queue")

    def decorate(function: Callable[..., Any]) -> Any:
        if app is not None:  # bound to this app alone unless shared=True says otherwise
            options.setdefault("shared", False)
            task = app.task(bind=bind, base=base, retry_policy=resolved, **options)(function)
        else:
            task = shared_task(bind=bind, base=base, retry_policy=resolved, **options)(function)
        return task_filter(task) if task_filter is not None else task

    return decorate(fn) if fn is not None else decorate
