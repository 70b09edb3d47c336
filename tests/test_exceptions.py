"""One exception story: the same bad input raises the same error from every entry point."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from taskqueue_kit import (
    ConfigurationError,
    OptionError,
    RetryPolicy,
    TaskQueueSettings,
    retrying_task,
)

pytestmark = pytest.mark.compat


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith(("TASKQUEUE_", "CELERY_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray .env file


def _env_text(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ",".join(str(item) for item in value)
    return str(value)


def _settings_from_env(kwargs: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> object:
    for name, value in kwargs.items():
        monkeypatch.setenv(f"TASKQUEUE_{name.upper()}", _env_text(value))
    return TaskQueueSettings()


EntryPoint = Callable[[dict[str, Any], pytest.MonkeyPatch], object]

ENTRY_POINTS: dict[str, EntryPoint] = {
    "TaskQueueSettings()": lambda kw, _: TaskQueueSettings(**kw),
    "TASKQUEUE_* env": _settings_from_env,
    "TaskQueueSettings.model_validate": lambda kw, _: TaskQueueSettings.model_validate(kw),
    "TaskQueueSettings.model_validate_json": lambda kw, _: TaskQueueSettings.model_validate_json(
        json.dumps(kw)
    ),
    "RetryPolicy()": lambda kw, _: RetryPolicy(**kw),
    "RetryPolicy.model_validate": lambda kw, _: RetryPolicy.model_validate(kw),
    "RetryPolicy.model_validate_json": lambda kw, _: RetryPolicy.model_validate_json(
        json.dumps(kw)
    ),
    "retrying_task()": lambda kw, _: retrying_task(**kw),
}

_SETTINGS = ("TaskQueueSettings()", "TASKQUEUE_* env", "TaskQueueSettings.model_validate")
_SETTINGS_ALL = (*_SETTINGS, "TaskQueueSettings.model_validate_json")
_POLICY = ("RetryPolicy()", "RetryPolicy.model_validate", "retrying_task()")
_POLICY_ALL = (*_POLICY, "RetryPolicy.model_validate_json")


def _same(entries: tuple[str, ...], kwargs: dict[str, Any], field: str) -> dict[str, Any]:
    return dict.fromkeys(entries, (kwargs, field))


# bad input -> (the error every entry point raises, {entry point: (its spelling, field)})
CASES: dict[str, tuple[type[Exception], dict[str, tuple[dict[str, Any], str]]]] = {
    "negative max_retries": (
        ConfigurationError,
        _same(_POLICY_ALL, {"max_retries": -1}, "max_retries"),
    ),
    "negative backoff": (ConfigurationError, _same(_POLICY_ALL, {"backoff": -1.0}, "backoff")),
    "infinite backoff": (
        ConfigurationError,
        _same(_POLICY, {"backoff": float("inf"), "backoff_max": float("inf")}, "backoff"),
    ),
    "negative backoff_max": (
        ConfigurationError,
        _same(_POLICY_ALL, {"backoff_max": -1.0}, "backoff_max"),
    ),
    "backoff_max below backoff": (
        ConfigurationError,
        _same(_POLICY_ALL, {"backoff": 10.0, "backoff_max": 1.0}, "backoff_max"),
    ),
    "retry_on holding a non-exception": (
        ConfigurationError,
        _same(_POLICY, {"retry_on": ("ConnectionError",)}, "retry_on"),
    ),
    "misspelt policy field": (OptionError, _same(_POLICY_ALL, {"max_retires": 3}, "max_retires")),
    "prefetch_multiplier 0": (
        ConfigurationError,
        _same(_SETTINGS_ALL, {"prefetch_multiplier": 0}, "prefetch_multiplier"),
    ),
    "negative hard time limit": (
        ConfigurationError,
        {
            **_same(_SETTINGS_ALL, {"task_time_limit": -1.0}, "task_time_limit"),
            "retrying_task()": ({"time_limit": -1.0}, "time_limit"),
        },
    ),
    "negative soft time limit": (
        ConfigurationError,
        {
            **_same(_SETTINGS_ALL, {"task_soft_time_limit": -5}, "task_soft_time_limit"),
            "retrying_task()": ({"soft_time_limit": -5}, "soft_time_limit"),
        },
    ),
    "infinite time limit": (
        ConfigurationError,
        {
            **_same(_SETTINGS, {"task_time_limit": float("inf")}, "task_time_limit"),
            "retrying_task()": ({"time_limit": float("inf")}, "time_limit"),
        },
    ),
    "soft time limit not below the hard one": (
        ConfigurationError,
        {
            **_same(
                _SETTINGS_ALL,
                {"task_time_limit": 10, "task_soft_time_limit": 20},
                "task_soft_time_limit",
            ),
            "retrying_task()": ({"time_limit": 10, "soft_time_limit": 20}, "soft_time_limit"),
        },
    ),
    "malformed queue name": (
        ConfigurationError,
        {
            **_same(_SETTINGS_ALL, {"queues": ["ok", "bad queue"]}, "queues"),
            "retrying_task()": ({"queue": "bad queue"}, "queue"),
        },
    ),
    "acks_late neither true nor false": (
        ConfigurationError,
        {
            **_same(_SETTINGS_ALL, {"acks_late": "maybe"}, "acks_late"),
            "retrying_task()": ({"acks_late": "maybe"}, "acks_late"),
        },
    ),
    "misspelt setting": (
        OptionError,
        _same(
            ("TaskQueueSettings()", "TaskQueueSettings.model_validate"),
            {"brokr_url": "redis://127.0.0.1:6379/0"},
            "brokr_url",
        ),
    ),
}

PARAMS = [
    pytest.param(expected, entry, kwargs, field, id=f"{case} via {entry}")
    for case, (expected, entries) in CASES.items()
    for entry, (kwargs, field) in entries.items()
]


@pytest.mark.parametrize(("expected", "entry", "kwargs", "field"), PARAMS)
def test_same_bad_input_same_error_from_every_entry_point(
    monkeypatch: pytest.MonkeyPatch,
    expected: type[Exception],
    entry: str,
    kwargs: dict[str, Any],
    field: str,
) -> None:
    """Each bad input raises exactly the same kit error type, naming the field, everywhere."""
    # Caught broadly, so an OptionError where a plain ConfigurationError is due fails below.
    with pytest.raises(ConfigurationError) as caught:
        ENTRY_POINTS[entry](kwargs, monkeypatch)
    assert type(caught.value) is expected, repr(caught.value)
    assert caught.value.field == field
    assert field in str(caught.value)


def test_kit_errors_are_also_the_builtins_they_resemble() -> None:
    """except ValueError catches a bad value, except TypeError an unknown option."""
    with pytest.raises(ValueError, match="max_retries"):
        RetryPolicy(max_retries=-1)
    with pytest.raises(TypeError, match="max_retires"):
        retrying_task(max_retires=3)
    with pytest.raises(TypeError, match="brokr_url"):
        TaskQueueSettings(brokr_url="redis://127.0.0.1:6379/0")  # type: ignore[call-arg]


def test_wrapped_errors_keep_pydantic_as_their_cause() -> None:
    """A value pydantic refused is chained to pydantic's error; the kit's own checks are not."""
    from pydantic import ValidationError

    with pytest.raises(ConfigurationError) as caught:
        RetryPolicy.model_validate({"max_retries": -1})
    assert isinstance(caught.value.__cause__, ValidationError)
    with pytest.raises(ConfigurationError) as caught:
        TaskQueueSettings.model_validate({"task_time_limit": 10, "task_soft_time_limit": 20})
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__
