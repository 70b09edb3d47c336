"""Settings: defaults, environment variables, the seed's fallbacks, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from taskqueue_kit import ConfigurationError, OptionError, TaskQueueSettings

pytestmark = pytest.mark.compat


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "CELERY_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env file


def test_defaults_are_embedded_and_safe() -> None:
    """With nothing configured, broker and backend are SQLite files under ./.taskqueue."""
    settings = TaskQueueSettings()
    assert settings.profile == "development"
    assert settings.uses_embedded_broker
    assert settings.effective_broker_url.startswith("tqsqlite://")
    assert settings.effective_result_backend.startswith("tqsqlite://")
    assert str(Path(".taskqueue").resolve()) in settings.effective_broker_url
    assert settings.all_queues == ("celery",)
    assert settings.allow_pickle is False
    assert settings.track_sent is True


def test_reads_taskqueue_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """TASKQUEUE_* variables configure the settings, queues as a comma list."""
    monkeypatch.setenv("TASKQUEUE_BROKER_URL", "redis://127.0.0.1:6379/3")
    monkeypatch.setenv("TASKQUEUE_QUEUES", "polarity, mail")
    monkeypatch.setenv("TASKQUEUE_PROFILE", "testing")
    settings = TaskQueueSettings()
    assert settings.broker_url == "redis://127.0.0.1:6379/3"
    assert settings.all_queues == ("celery", "polarity", "mail")
    assert settings.profile == "testing"


def test_seed_environment_names_are_fallbacks(monkeypatch: pytest.MonkeyPatch) -> None:
    """CELERY_BROKER_URL, CELERY_RESULT_BACKEND and CELERY_CONFIG work; TASKQUEUE_* wins."""
    monkeypatch.setenv("CELERY_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
    monkeypatch.setenv("CELERY_RESULT_BACKEND", "redis://127.0.0.1:6379/1")
    monkeypatch.setenv("CELERY_CONFIG", "testing")
    settings = TaskQueueSettings()
    assert settings.broker_url == "amqp://guest:guest@127.0.0.1:5672//"
    assert settings.result_backend == "redis://127.0.0.1:6379/1"
    assert settings.profile == "testing"
    monkeypatch.setenv("TASKQUEUE_BROKER_URL", "redis://127.0.0.1:6379/2")
    assert TaskQueueSettings().broker_url == "redis://127.0.0.1:6379/2"


def test_keyword_arguments_win_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """An explicit argument beats the environment."""
    monkeypatch.setenv("TASKQUEUE_BROKER_URL", "redis://127.0.0.1:6379/2")
    assert TaskQueueSettings(broker_url="amqp://h//").broker_url == "amqp://h//"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"profile": "staging"}, "profile"),
        ({"broker_url": "not a url"}, "broker_url"),
        ({"result_backend": "localhost:6379"}, "result_backend"),
        ({"default_queue": ""}, "default_queue"),
        ({"queues": ["ok", "bad queue"]}, "queues"),
        ({"task_time_limit": -1}, "task_time_limit"),
        ({"task_soft_time_limit": 0}, "task_soft_time_limit"),
        ({"prefetch_multiplier": 0}, "prefetch_multiplier"),
        ({"result_expires": -5}, "result_expires"),
        ({"brokr_url": "redis://x"}, "brokr_url"),
        ({"task_time_limit": 10, "task_soft_time_limit": 20}, "task_soft_time_limit"),
    ],
)
def test_bad_settings_name_the_field(kwargs: dict[str, object], field: str) -> None:
    """Bad values raise ConfigurationError naming the field, chained to pydantic's error."""
    with pytest.raises(ConfigurationError) as caught:
        TaskQueueSettings(**kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert field in str(caught.value)


def test_misspelt_setting_is_an_option_error_with_a_suggestion() -> None:
    """An unknown setting is an OptionError (also a TypeError) suggesting the setting meant."""
    with pytest.raises(OptionError, match="did you mean 'broker_url'") as caught:
        TaskQueueSettings(brokr_url="redis://127.0.0.1:6379/0")  # type: ignore[call-arg]
    assert isinstance(caught.value, TypeError)
    assert caught.value.field == "brokr_url"


def test_production_refuses_embedded_broker() -> None:
    """Production with the SQLite broker is refused, naming broker_url."""
    with pytest.raises(ConfigurationError) as caught:
        TaskQueueSettings(profile="production")
    assert caught.value.field == "broker_url"


def test_production_refuses_short_redis_visibility_timeout() -> None:
    """A Redis visibility timeout below the hard time limit would redeliver running tasks."""
    with pytest.raises(ConfigurationError) as caught:
        TaskQueueSettings(
            profile="production",
            broker_url="redis://127.0.0.1:6379/0",
            task_time_limit=7200,
            broker_transport_options={"visibility_timeout": 600},
        )
    assert caught.value.field == "broker_transport_options"
    ok = TaskQueueSettings(
        profile="production",
        broker_url="redis://127.0.0.1:6379/0",
        task_time_limit=300,
        broker_transport_options={"visibility_timeout": 600},
    )
    assert ok.effective_acks_late is True


def test_default_queue_is_always_declared() -> None:
    """The default queue is in all_queues even when queues leaves it out."""
    settings = TaskQueueSettings(default_queue="main", queues=("polarity", "main", "polarity"))
    assert settings.queues == ("main", "polarity")
    assert settings.all_queues == ("main", "polarity")
    assert TaskQueueSettings(queues=["polarity"]).queues == ("celery", "polarity")


def test_autoscale_is_accepted_on_every_broker() -> None:
    """The embedded broker drives the worker's event loop, which Celery's autoscaler needs."""
    assert TaskQueueSettings(autoscale=(4, 1)).autoscale == (4, 1)
    redis = TaskQueueSettings(broker_url="redis://127.0.0.1:6379/0", autoscale=(4, 1))
    assert redis.autoscale == (4, 1)
