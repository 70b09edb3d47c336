"""Checked by mypy, never run: the kit's decorators keep the user's signatures visible."""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.result import AsyncResult

from taskqueue_kit import (
    ConfigurationError,
    OptionError,
    RetryPolicy,
    TaskInfo,
    get_task_info,
    retrying_task,
)


@retrying_task(name="polarity:analyze", retry_on=(ConnectionError,), max_retries=5)
def analyze(review: str) -> float:
    return float(len(review))


@retrying_task(name="mail:send", policy=RetryPolicy(max_retries=3), bind=True)
def send(self: Any, to: str, subject: str = "") -> None:
    return None


@retrying_task
def bare(x: int) -> int:
    return x


app = Celery("typing")


@retrying_task(
    app=app,
    name="polarity:score",
    queue="polarity",
    time_limit=30,
    soft_time_limit=20,
    acks_late=True,
    rate_limit="10/m",
    pydantic=True,
)
def score(review: str, weight: float = 1.0) -> float:
    return weight * len(review)


def refusals() -> None:
    try:
        retrying_task(max_retires=3)
    except OptionError as exc:  # also a TypeError and a ConfigurationError
        unknown: str | None = exc.field
        del unknown
    try:
        RetryPolicy(max_retries=-1)
    except ConfigurationError as exc:
        field: str | None = exc.field
        del field


def uses() -> None:
    result: AsyncResult[float] = analyze.delay("great product")
    analyze.delay(review="fine")
    send.delay("a@example.com", subject="hi")
    bare.delay(3)
    scored: AsyncResult[float] = score.delay("fine", weight=2.0)
    value: float = analyze("direct call")
    info: TaskInfo = get_task_info(result.id)
    del value, info, scored
