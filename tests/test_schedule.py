"""Beat schedules: entries built from tasks, checked against the app before beat starts."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from celery import Celery, chain
from celery.beat import Scheduler
from celery.schedules import crontab, schedule

from taskqueue_kit import (
    ScheduleEntry,
    TaskQueueSettings,
    UnknownQueueError,
    beat_schedule,
    create_celery,
    every,
)


@pytest.fixture
def app(tmp_path) -> Celery:
    settings = TaskQueueSettings(home=tmp_path / "tq", queues=("reports", "maint"))
    app = create_celery(settings, main="schedule")
    yield app
    app.close()


@pytest.fixture
def report(app):
    @app.task(name="reports:daily", shared=False)
    def daily(region: str = "all", *, detailed: bool = False) -> str:
        return region

    return daily


def test_interval_entry_expires_after_one_period(report) -> None:
    """Seconds or a timedelta give a float schedule, the signature as name, expires = period."""
    entry = every(30, report.si("eu", detailed=True))
    assert entry == ScheduleEntry(
        name="reports:daily('eu', detailed=True)",
        task="reports:daily",
        schedule=30.0,
        args=("eu",),
        kwargs={"detailed": True},
        options={"expires": 30.0},
    )
    assert every(timedelta(minutes=2), report).schedule == 120.0
    assert every(timedelta(minutes=2), report).options == {"expires": 120.0}
    assert every(timedelta(minutes=2), report).name == "reports:daily()"


def test_celery_schedules_are_kept_and_crontab_does_not_expire(report) -> None:
    """crontab keeps no default expiry (periods vary); Celery's interval schedule still does."""
    morning = crontab(hour=7, minute=0)
    entry = every(morning, report, name="morning")
    assert entry.schedule is morning
    assert entry.options == {}
    assert every(morning, report, expires=600).options == {"expires": 600.0}
    interval = schedule(run_every=timedelta(seconds=90))
    assert every(interval, report).schedule is interval
    assert every(interval, report).options == {"expires": 90.0}
    assert every(10, report, expires=None).options == {}


def test_signature_options_are_kept(report) -> None:
    """Options set on the signature (queue, priority, an explicit expiry) survive."""
    entry = every(10, report.si().set(queue="maint", priority=3, expires=4.0))
    assert entry.options == {"queue": "maint", "priority": 3, "expires": 4.0}


@pytest.mark.parametrize(
    ("when", "error", "message"),
    [
        (0, ValueError, "above 0"),
        (-5, ValueError, "above 0"),
        (math.nan, ValueError, "above 0"),
        (math.inf, ValueError, "above 0"),
        (timedelta(0), ValueError, "above 0"),
        (True, TypeError, "not a bool"),
        ("10", TypeError, "seconds, a timedelta or a Celery schedule"),
    ],
)
def test_bad_intervals_are_refused(report, when, error, message) -> None:
    """Zero, negative, infinite and non-numeric intervals are refused with a clear error."""
    with pytest.raises(error, match=message):
        every(when, report)


def test_bad_tasks_names_and_expiries_are_refused(report) -> None:
    """A task name string, a chain, an empty name or a zero expiry is refused, saying why."""
    with pytest.raises(TypeError, match="pass the task object rather than its name"):
        every(10, "reports:daily")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not a chain, group or chord"):
        every(10, chain(report.si(), report.si()))
    with pytest.raises(ValueError, match="name must not be empty"):
        every(10, report, name=" ")
    for expires in (0, -1.0, True, "5"):
        with pytest.raises(ValueError, match="expires must be seconds above 0 or None"):
            every(10, report, expires=expires)


def test_beat_schedule_is_what_celery_beat_reads(app, report) -> None:
    """The mapping loads into Celery's own scheduler with the intended entries."""
    app.conf.beat_schedule = beat_schedule(
        app,
        every(15, report.si("eu"), name="eu"),
        every(crontab(minute="*/5"), report, name="all"),
    )
    scheduler = Scheduler(app, lazy=True)
    scheduler.setup_schedule()
    eu, every_five = scheduler.schedule["eu"], scheduler.schedule["all"]
    assert eu.task == "reports:daily"
    assert eu.args == ("eu",)
    assert eu.options == {"expires": 15.0}
    assert eu.schedule.run_every == timedelta(seconds=15)
    assert every_five.schedule == crontab(minute="*/5")


def test_beat_schedule_refuses_undeclared_queues_and_duplicates(app, report) -> None:
    """An undeclared queue (prefix or explicit) and a repeated name are caught when built."""

    @app.task(name="billing:invoice", shared=False)
    def invoice() -> None:
        return None

    with pytest.raises(UnknownQueueError, match="'billing'"):
        beat_schedule(app, every(60, invoice))
    with pytest.raises(UnknownQueueError, match="'nowhere'"):
        beat_schedule(app, every(60, report.si().set(queue="nowhere")))
    with pytest.raises(ValueError, match="two entries are named 'reports:daily\\(\\)'"):
        beat_schedule(app, every(60, report), every(30, report))
    with pytest.raises(TypeError, match="entries made by every"):
        beat_schedule(app, {"task": "reports:daily", "schedule": 5})  # type: ignore[arg-type]
    assert list(beat_schedule(app, every(60, report), every(30, report, name="often"))) == [
        "reports:daily()",
        "often",
    ]
