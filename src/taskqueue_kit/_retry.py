"""Retrying tasks: exponential backoff with full jitter, declared once at the decorator.

Celery's own ``retry_backoff`` rounds its factor and its delays to whole seconds and reads
its settings from loose task attributes. Here one :class:`RetryPolicy` says it all, and the
n-th retry waits a random time in ``[0, min(backoff_max, backoff * 2**n)]``.
"""

from __future__ import annotations

import difflib
import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Concatenate, Literal, ParamSpec, TypeVar, overload

from celery import Celery, shared_task
from celery.exceptions import Ignore, Reject, Retry
from pydantic import BaseModel, ConfigDict, Field, model_validator

from taskqueue_kit._task import KitTask

__all__ = ["RetryPolicy", "RetryingTask", "retrying_task"]

P = ParamSpec("P")
R = TypeVar("R")

ExceptionTypes = tuple[type[BaseException], ...]

# Celery task options that make sense beside a retry policy; anything else is a typo.
_PASSTHROUGH = frozenset(
    {
        "name",
        "queue",
        "time_limit",
        "soft_time_limit",
        "acks_late",
        "reject_on_worker_lost",
        "ignore_result",
        "rate_limit",
        "expires",
        "priority",
        "track_started",
        "typing",
        "serializer",
        "base",
    }
)
_POLICY_FIELDS = frozenset(
    {"retry_on", "no_retry_on", "max_retries", "backoff", "backoff_max", "jitter"}
)


class RetryPolicy(BaseModel):
    """When and how a task retries.

    Attributes:
        retry_on: Exception types that trigger a retry.
        no_retry_on: Exception types that fail at once, even if ``retry_on`` matches them.
        max_retries: Retries after the first attempt; then the task fails with the error.
        backoff: Base delay in seconds; the n-th retry's cap is ``backoff * 2**n``.
        backoff_max: Upper bound of any delay, in seconds.
        jitter: Draw the delay uniformly from ``[0, cap]`` (full jitter); else wait the cap.
    """

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True, extra="forbid")

    retry_on: ExceptionTypes = (Exception,)
    no_retry_on: ExceptionTypes = ()
    max_retries: int = Field(default=3, ge=0)
    backoff: float = Field(default=1.0, ge=0)
    backoff_max: float = Field(default=600.0, ge=0)
    jitter: bool = True

    @model_validator(mode="after")
    def _check_types(self) -> RetryPolicy:
        for field in ("retry_on", "no_retry_on"):
            for item in getattr(self, field):
                if not (isinstance(item, type) and issubclass(item, BaseException)):
                    raise ValueError(f"{field} must hold exception classes, got {item!r}")
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


def _check_options(options: dict[str, Any]) -> None:
    for option in options:
        if option not in _PASSTHROUGH:
            known = sorted(_PASSTHROUGH | _POLICY_FIELDS | {"policy", "bind", "app"})
            close = difflib.get_close_matches(option, known, n=1)
            hint = (
                f"; did you mean {close[0]!r}?" if close else f"; valid options: {', '.join(known)}"
            )
            raise TypeError(f"retrying_task() got an unknown option {option!r}{hint}")


def _build_policy(policy: RetryPolicy | None, overrides: dict[str, Any]) -> RetryPolicy:
    if policy is not None and overrides:
        raise TypeError(
            f"retrying_task() takes either policy= or {', '.join(sorted(overrides))}, not both"
        )
    if policy is not None:
        return policy
    try:
        return RetryPolicy(**overrides)
    except ValueError as exc:
        raise TypeError(f"retrying_task(): invalid retry option: {exc}") from exc


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
    one by one or as ``policy=RetryPolicy(...)``. Celery options such as ``name``, ``queue``,
    ``time_limit`` and ``soft_time_limit`` pass through; any other keyword is a ``TypeError``
    at decoration time.

    Args:
        fn: The function, when used bare.
        bind: Pass the task as the first argument (``self``), as Celery's ``bind=True``.
        app: Bind to this app; by default a ``shared_task`` that every app picks up.
        policy: A complete retry policy.
        **options: Policy fields and Celery task options.

    Returns:
        The task, or a decorator that makes one.

    Raises:
        TypeError: an unknown option or an invalid policy value.
    """
    overrides = {key: options.pop(key) for key in list(options) if key in _POLICY_FIELDS}
    _check_options(options)
    resolved = _build_policy(policy, overrides)
    base = options.pop("base", RetryingTask)
    if not (isinstance(base, type) and issubclass(base, RetryingTask)):
        raise TypeError("retrying_task(base=...) must be a subclass of RetryingTask")

    def decorate(function: Callable[..., Any]) -> Any:
        if app is not None:  # bound to this app alone, not registered in every app
            return app.task(shared=False, bind=bind, base=base, retry_policy=resolved, **options)(
                function
            )
        return shared_task(bind=bind, base=base, retry_policy=resolved, **options)(function)

    return decorate(fn) if fn is not None else decorate
