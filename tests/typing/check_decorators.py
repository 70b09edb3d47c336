"""Checked by mypy, never run: the kit's decorators keep the user's signatures visible."""

from __future__ import annotations

from typing import Any

from celery.result import AsyncResult

from taskqueue_kit import RetryPolicy, TaskInfo, get_task_info, retrying_task


@retrying_task(name="polarity:analyze", retry_on=(ConnectionError,), max_retries=5)
def analyze(review: str) -> float:
    return float(len(review))


@retrying_task(name="mail:send", policy=RetryPolicy(max_retries=3), bind=True)
def send(self: Any, to: str, subject: str = "") -> None:
    return None


@retrying_task
def bare(x: int) -> int:
    return x


def uses() -> None:
    result: AsyncResult[float] = analyze.delay("great product")
    analyze.delay(review="fine")
    send.delay("a@example.com", subject="hi")
    bare.delay(3)
    value: float = analyze("direct call")
    info: TaskInfo = get_task_info(result.id)
    del value, info
