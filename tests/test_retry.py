"""Retrying tasks: capped full-jitter backoff, no_retry_on, and strict options."""

from __future__ import annotations

import random
from typing import Any

import pytest
from celery import Celery

from taskqueue_kit import RetryPolicy, TaskState, get_task_info, retrying_task
from taskqueue_kit.testing import run_worker


def test_countdowns_follow_seeded_full_jitter() -> None:
    """With a seeded RNG the n-th wait is uniform(0, min(backoff_max, backoff * 2**n))."""
    policy = RetryPolicy(backoff=0.5, backoff_max=3.0)
    ours, reference = random.Random(7), random.Random(7)
    waits = [policy.countdown(n, rng=ours) for n in range(8)]
    expected = [reference.uniform(0.0, min(3.0, 0.5 * 2**n)) for n in range(8)]
    assert waits == expected


def test_countdowns_stay_within_the_cap() -> None:
    """Over many draws every wait lies in [0, cap] and the draws spread over the range."""
    policy = RetryPolicy(backoff=1.0, backoff_max=10.0)
    rng = random.Random(1)
    for n in range(10):
        cap = min(10.0, 2.0**n)
        draws = [policy.countdown(n, rng=rng) for _ in range(2000)]
        assert all(0.0 <= d <= cap for d in draws)
        assert max(draws) > 0.9 * cap
        assert min(draws) < 0.1 * cap


def test_without_jitter_the_wait_is_the_cap() -> None:
    """jitter=False waits exactly min(backoff_max, backoff * 2**n)."""
    policy = RetryPolicy(backoff=2.0, backoff_max=20.0, jitter=False)
    assert [policy.countdown(n) for n in range(6)] == [2.0, 4.0, 8.0, 16.0, 20.0, 20.0]
    assert policy.countdown(10_000) == 20.0


def test_unknown_option_is_a_type_error_naming_it() -> None:
    """A misspelt option fails at decoration time and names the option."""
    with pytest.raises(TypeError, match="max_retires"):
        retrying_task(name="x:y", max_retires=3)
    with pytest.raises(TypeError, match="retry_on"):
        retrying_task(retry_on=("not an exception",))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="either policy"):
        retrying_task(policy=RetryPolicy(), max_retries=2)


def test_options_pass_through_to_the_task(embedded_app: Celery) -> None:
    """time_limit, soft_time_limit and the policy land on the task."""

    @retrying_task(
        app=embedded_app,
        name="limited",
        time_limit=30,
        soft_time_limit=20,
        max_retries=4,
        backoff=0.1,
    )
    def limited() -> int:
        return 1

    assert limited.time_limit == 30
    assert limited.soft_time_limit == 20
    assert limited.retry_policy.max_retries == 4
    assert limited.name == "limited"


@pytest.mark.broker
def test_fails_twice_then_succeeds(taskqueue_app: Celery) -> None:
    """A task failing twice with a retryable error ends succeeded with retries == 2."""
    attempts: list[int] = []

    @retrying_task(
        app=taskqueue_app,
        name="flaky",
        retry_on=(ConnectionError,),
        max_retries=5,
        backoff=0.05,
        backoff_max=0.2,
        bind=True,
    )
    def flaky(self: Any, value: int) -> int:
        attempts.append(self.request.retries)
        if len(attempts) < 3:
            raise ConnectionError("broker hiccup")
        return value * 2

    with run_worker(taskqueue_app):
        result = flaky.delay(21)
        assert result.get(timeout=30) == 42
        info = get_task_info(result.id, app=taskqueue_app)
    assert attempts == [0, 1, 2]
    assert info.state is TaskState.SUCCEEDED
    assert info.retries == 2
    assert info.result == 42


def test_no_retry_on_fails_at_once(embedded_app: Celery) -> None:
    """An error listed in no_retry_on fails on the first attempt."""
    attempts: list[int] = []

    @retrying_task(
        app=embedded_app,
        name="strict",
        retry_on=(Exception,),
        no_retry_on=(ValueError,),
        max_retries=5,
        backoff=0.01,
    )
    def strict() -> None:
        attempts.append(1)
        raise ValueError("bad input")

    with run_worker(embedded_app):
        result = strict.delay()
        with pytest.raises(ValueError, match="bad input"):
            result.get(timeout=20)
        info = get_task_info(result.id, app=embedded_app)
    assert attempts == [1]
    assert info.state is TaskState.FAILED
    assert info.error is not None
    assert info.error.type == "ValueError"


def test_gives_up_after_max_retries(embedded_app: Celery) -> None:
    """After max_retries the task fails with the original error."""
    attempts: list[int] = []

    @retrying_task(
        app=embedded_app,
        name="doomed",
        retry_on=(TimeoutError,),
        max_retries=2,
        backoff=0.01,
        jitter=False,
    )
    def doomed() -> None:
        attempts.append(1)
        raise TimeoutError("still down")

    with run_worker(embedded_app):
        result = doomed.delay()
        with pytest.raises(TimeoutError):
            result.get(timeout=20)
    assert len(attempts) == 3
    assert get_task_info(result.id, app=embedded_app).retries == 2
