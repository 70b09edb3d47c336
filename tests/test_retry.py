"""Retrying tasks: capped full-jitter backoff, no_retry_on, and strict options."""

from __future__ import annotations

import random
import warnings
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from celery import Task as CeleryTask
from celery.exceptions import CDeprecationWarning
from pydantic import BaseModel, ValidationError

from taskqueue_kit import (
    ConfigurationError,
    OptionError,
    RetryingTask,
    RetryPolicy,
    TaskQueueSettings,
    TaskState,
    UnknownQueueError,
    create_celery,
    get_task_info,
    retrying_task,
)
from taskqueue_kit.testing import run_worker, unique_name

pytestmark = pytest.mark.compat


def _one() -> int:
    return 1


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
    """A misspelt option fails at decoration time as an OptionError (a TypeError) naming it."""
    with pytest.raises(OptionError, match=r"max_retires.*did you mean 'max_retries'") as caught:
        retrying_task(name="x:y", max_retires=3)
    assert isinstance(caught.value, TypeError)
    assert caught.value.field == "max_retires"
    with pytest.raises(OptionError, match="'retry_policy'") as caught:
        retrying_task(retry_policy=RetryPolicy())  # the kit's own attribute, not an option
    assert caught.value.field == "retry_policy"


def test_policy_and_policy_fields_exclude_each_other() -> None:
    """policy= beside a policy field is an OptionError naming the field."""
    with pytest.raises(OptionError, match="either policy") as caught:
        retrying_task(policy=RetryPolicy(), max_retries=2)
    assert caught.value.field == "max_retries"


def test_a_bad_policy_value_is_a_configuration_error() -> None:
    """retry_on holding a non-exception is a ConfigurationError (a ValueError) naming retry_on."""
    with pytest.raises(ConfigurationError, match="retry_on") as caught:
        retrying_task(retry_on=("not an exception",))  # type: ignore[arg-type]
    assert type(caught.value) is ConfigurationError
    assert caught.value.field == "retry_on"
    with pytest.raises(ConfigurationError, match="takes a RetryPolicy") as caught:
        retrying_task(policy={"max_retries": 2})  # type: ignore[arg-type]
    assert caught.value.field == "policy"


def test_backoff_max_below_backoff_is_refused() -> None:
    """A cap below the base delay would make every wait shorter than backoff says."""
    with pytest.raises(ConfigurationError, match="backoff_max") as caught:
        RetryPolicy(backoff=10.0, backoff_max=5.0)
    assert caught.value.field == "backoff_max"
    assert RetryPolicy(backoff=5.0, backoff_max=5.0).countdown(3) <= 5.0


# Options from Celery's documented Task attributes and app.task keywords, each with a value
# unlike Celery's default, so the test sees that the option reached the task.
CELERY_OPTIONS: list[tuple[str, Any]] = [
    ("rate_limit", "10/m"),
    ("priority", 5),
    ("serializer", "json"),
    ("compression", "gzip"),
    ("ignore_result", True),
    ("store_errors_even_if_ignored", True),
    ("store_eager_result", True),
    ("acks_late", True),
    ("acks_on_failure_or_timeout", False),
    ("reject_on_worker_lost", True),
    ("track_started", True),
    ("expires", 60.0),
    ("typing", False),
    ("trail", False),
    ("send_events", False),
    ("throws", (KeyError,)),
    ("default_retry_delay", 5),
    ("resultrepr_maxsize", 64),
    ("routing_key", "elsewhere"),
    ("exchange", "elsewhere"),
    ("delivery_mode", 1),
    ("time_limit", 30.0),
    ("soft_time_limit", 20.0),
    ("queue", "elsewhere"),
]
# Celery 5.7 deprecates these as task attributes (for task_routes), warning when the task is
# bound; they still reach the task, which is what the kit promises. ``queue`` is the kit's
# own attribute instead (its router reads it), so it warns on no Celery.
ROUTING_ATTRIBUTES = {"exchange", "routing_key", "delivery_mode", "priority"}


@pytest.mark.parametrize(("option", "value"), CELERY_OPTIONS, ids=[o for o, _ in CELERY_OPTIONS])
def test_celery_task_options_reach_the_task(embedded_app: Celery, option: str, value: Any) -> None:
    """Each documented Celery task option is accepted and set on the task as given."""
    with warnings.catch_warnings():
        if option in ROUTING_ATTRIBUTES:
            warnings.filterwarnings("ignore", r"\s*The '\w+' task attribute", CDeprecationWarning)
        task = retrying_task(app=embedded_app, name=f"opt:{option}", **{option: value})(_one)
        attribute = "taskqueue_queue" if option == "queue" else option
        assert getattr(task, attribute) == value


def test_a_tasks_own_queue_routes_it_there_and_queue_equals_still_wins(tmp_path: Path) -> None:
    """retrying_task(queue=...) beats the name's prefix; an explicit queue= beats both."""
    own, other = unique_name("own"), unique_name("other")
    app = create_celery(TaskQueueSettings(queues=(own, other), home=tmp_path), main="own-queue")
    task = retrying_task(app=app, name="prefix:routed", queue=own)(_one)
    assert get_task_info(task.delay().id, app=app).queue == own
    assert get_task_info(task.apply_async(queue=other).id, app=app).queue == other
    undeclared = retrying_task(app=app, name="prefix:nowhere", queue="nowhere")(_one)
    with pytest.raises(UnknownQueueError, match="'nowhere'"):
        undeclared.delay()
    app.close()


@pytest.mark.parametrize("option", ["acks_on_failure", "acks_on_timeout", "retry_on_worker_lost"])
def test_newer_celery_options_follow_the_installed_celery(
    embedded_app: Celery, option: str
) -> None:
    """Options Celery 5.7 added are accepted where this Celery's Task has them, refused before."""
    if hasattr(CeleryTask, option):
        task = retrying_task(app=embedded_app, name=f"new:{option}", **{option: True})(_one)
        assert getattr(task, option) is True
    else:
        with pytest.raises(OptionError, match=option):
            retrying_task(app=embedded_app, **{option: True})


class Point(BaseModel):
    """A task argument for pydantic=True."""

    x: int


def test_pydantic_option_validates_arguments(embedded_app: Celery) -> None:
    """pydantic=True (Celery 5.5+) turns a dict argument into the annotated model."""

    def norm(point: Point) -> int:
        assert isinstance(point, Point)
        return point.x * 2

    # Celery 5.5 reads annotations unresolved; this module's are strings (PEP 563).
    norm.__annotations__ = {"point": Point, "return": int}
    task = retrying_task(app=embedded_app, name="opt:pydantic", pydantic=True)(norm)
    assert task({"x": "3"}) == 6
    strict = retrying_task(
        app=embedded_app,
        name="opt:pydantic_strict",
        pydantic=True,
        pydantic_strict=True,
        pydantic_context={"source": "test"},
        pydantic_dump_kwargs={"by_alias": True},
    )(norm)
    assert strict({"x": 3}) == 6
    with pytest.raises(ValidationError):  # strict: the string "3" is not an int
        strict({"x": "3"})


def test_app_task_keywords_pass_through(embedded_app: Celery) -> None:
    """filter wraps the task, lazy=False builds it now, shared=True puts it on every app."""
    seen: list[Any] = []

    def keep(task: Any) -> Any:
        seen.append(task)
        return task

    task = retrying_task(
        app=embedded_app, name="kw:filtered", filter=keep, lazy=False, shared=True
    )(_one)
    assert seen == [task]
    assert isinstance(task, RetryingTask)
    other = Celery("other", set_as_current=False)
    try:
        assert "kw:filtered" in other.tasks
        assert "kw:filtered" in embedded_app.tasks
    finally:
        other.close()


def test_an_app_bound_task_is_not_shared_by_default(embedded_app: Celery) -> None:
    """With app= and no shared=, the task lives on that app alone."""
    retrying_task(app=embedded_app, name="kw:alone")(_one)
    other = Celery("other", set_as_current=False)
    try:
        assert "kw:alone" in embedded_app.tasks
        assert "kw:alone" not in other.tasks
    finally:
        other.close()


@pytest.mark.parametrize("option", ["shared", "lazy"])
def test_shared_task_refuses_what_it_cannot_do(option: str) -> None:
    """Without app= the task is a lazy shared_task, so shared=False and lazy=False are refused."""
    with pytest.raises(OptionError, match=f"{option}=False") as caught:
        retrying_task(**{option: False})
    assert caught.value.field == option


@pytest.mark.parametrize(
    ("option", "instead"),
    [
        ("autoretry_for", "retry_on"),
        ("dont_autoretry_for", "no_retry_on"),
        ("retry_kwargs", "max_retries"),
        ("retry_backoff", "backoff"),
        ("retry_backoff_max", "backoff_max"),
        ("retry_jitter", "jitter"),
    ],
)
def test_celery_autoretry_options_are_refused(option: str, instead: str) -> None:
    """Celery's automatic retry would compete with the policy; the error names the kit's option."""
    with pytest.raises(OptionError, match=f"{option}=.*use {instead}=") as caught:
        retrying_task(**{option: (ConnectionError,)})
    assert caught.value.field == option


def test_base_must_be_a_retrying_task_without_autoretry() -> None:
    """base= takes a RetryingTask subclass, and not one that sets Celery's autoretry_for."""

    class AutoRetrying(RetryingTask):
        autoretry_for = (ConnectionError,)

    with pytest.raises(OptionError, match="subclass of RetryingTask") as caught:
        retrying_task(base=CeleryTask)
    assert caught.value.field == "base"
    with pytest.raises(OptionError, match="autoretry_for"):
        retrying_task(base=AutoRetrying)


def test_checked_option_values_are_coerced_like_settings(embedded_app: Celery) -> None:
    """acks_late='false' reaches Celery as False (not a truthy string), as the settings read it."""
    task = retrying_task(app=embedded_app, name="coerced", acks_late="false")(_one)
    assert task.acks_late is False


def test_celery_sees_the_policy_max_retries(embedded_app: Celery) -> None:
    """The task's own max_retries is the policy's, so a self.retry() call stops where it does."""
    task = retrying_task(app=embedded_app, name="limit", max_retries=7)(_one)
    assert task.max_retries == 7


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
