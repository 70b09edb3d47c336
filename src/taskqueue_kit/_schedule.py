"""Beat schedules built from task objects and checked before beat starts.

Celery's ``beat_schedule`` is a dict of dicts that names tasks by string, and beat finds its
mistakes late or never: a task whose queue is not declared fails at every tick (the kit's
send path refuses it, beat logs the error and carries on, nothing runs); two entries under
one key replace each other; and while no worker runs, beat keeps sending, so a worker that
comes back first works through a backlog of stale runs. :func:`every` and
:func:`beat_schedule` refuse the first two when the schedule is built, and give interval
entries an expiry of one period, so a run that no worker took in time is dropped instead of
piling up::

    app.conf.beat_schedule = beat_schedule(
        app,
        every(30, cleanup.si(max_age=3600)),
        every(crontab(hour=7, minute=0), daily_report, name="morning report"),
    )
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final

from celery import Celery, Task
from celery.canvas import Signature
from celery.schedules import BaseSchedule, schedule

from taskqueue_kit._exceptions import UnknownQueueError
from taskqueue_kit._routing import queue_for

__all__ = ["ScheduleEntry", "beat_schedule", "every"]


class _Unset:
    """Tells "expires not given" (one period) from ``expires=None`` (never expires)."""

    def __repr__(self) -> str:
        return "<one period>"


_ONE_PERIOD: Final = _Unset()

if TYPE_CHECKING:
    When = float | timedelta | BaseSchedule
    Runnable = Task[Any, Any] | Signature[Any]


@dataclass(frozen=True)
class ScheduleEntry:
    """One periodic task, ready to become a ``beat_schedule`` item.

    Attributes:
        name: The key in ``beat_schedule``, unique within one schedule.
        task: The task name beat sends.
        schedule: Seconds between runs, or a Celery schedule (``crontab``, ``solar``).
        args: Positional arguments of every run.
        kwargs: Keyword arguments of every run.
        options: Send options (``expires``, ``queue``, ...).
    """

    name: str
    task: str
    schedule: float | BaseSchedule
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)

    def as_beat_entry(self) -> dict[str, Any]:
        """The entry in the form Celery's ``beat_schedule`` takes."""
        return {
            "task": self.task,
            "schedule": self.schedule,
            "args": tuple(self.args),
            "kwargs": dict(self.kwargs),
            "options": dict(self.options),
        }


def _seconds(when: object) -> float | None:
    """Length of one period in seconds for an interval, ``None`` for calendar schedules."""
    if isinstance(when, bool):
        raise TypeError("every() takes seconds, a timedelta or a Celery schedule, not a bool")
    if isinstance(when, int | float):
        seconds = float(when)
    elif isinstance(when, timedelta):
        seconds = when.total_seconds()
    elif isinstance(when, schedule):  # Celery's interval schedule
        run_every: timedelta = when.run_every  # type: ignore[attr-defined]  # not in celery-types
        seconds = run_every.total_seconds()
    elif isinstance(when, BaseSchedule):  # crontab, solar: periods vary
        return None
    else:
        raise TypeError(
            f"every() takes seconds, a timedelta or a Celery schedule such as crontab(...), "
            f"got {when!r}"
        )
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"every(): the interval must be above 0 seconds, got {when!r}")
    return seconds


def _signature(task: object) -> Signature[Any]:
    if isinstance(task, Task):
        return task.si()
    if type(task) is Signature:  # chains and groups are Signature subclasses
        return task
    if isinstance(task, Signature):
        raise TypeError(
            "every(): beat sends one task by name, not a chain, group or chord; "
            "start the workflow from inside a task instead"
        )
    raise TypeError(
        f"every() takes a task or a signature such as task.si(...), got {task!r}; "
        "pass the task object rather than its name, so a typo fails at import"
    )


def every(
    when: When,
    task: Runnable,
    *,
    name: str | None = None,
    expires: float | _Unset | None = _ONE_PERIOD,
) -> ScheduleEntry:
    """A periodic run of ``task``.

    Args:
        when: Seconds between runs, a ``timedelta``, or a Celery schedule such as
            ``crontab(hour=7, minute=0)``.
        task: The task (run without arguments) or a signature carrying its arguments;
            for tasks made by ``retrying_task`` or ``shared_task``, type checkers check
            ``task.si(...)`` against the task's parameters.
        name: The entry's key; by default the signature, e.g. ``"maint:cleanup(max_age=60)"``.
        expires: Seconds after sending when a run that has not started is dropped. Interval
            schedules default to one period, so runs do not pile up while no worker is up;
            calendar schedules default to never. ``None`` means never.

    Returns:
        The entry, for :func:`beat_schedule`.

    Raises:
        TypeError: ``when`` or ``task`` of the wrong kind.
        ValueError: an interval or expiry that is not above 0, or an empty name.
    """
    period = _seconds(when)
    signature = _signature(task)
    if name is not None and not name.strip():
        raise ValueError("every(): name must not be empty")
    options = dict(signature.options)
    if isinstance(expires, _Unset):
        expires = period
    elif expires is not None and (
        isinstance(expires, bool)
        or not isinstance(expires, int | float)
        or not (math.isfinite(expires) and expires > 0)
    ):
        raise ValueError(f"every(): expires must be seconds above 0 or None, got {expires!r}")
    if expires is not None:
        options.setdefault("expires", float(expires))
    return ScheduleEntry(
        name=name or repr(signature),
        task=signature.name,
        # Celery's own schedule objects go in as they are (they may carry more than a period).
        schedule=when if isinstance(when, BaseSchedule) else float(period or 0),
        args=tuple(signature.args or ()),
        kwargs=dict(signature.kwargs or {}),
        options=options,
    )


def beat_schedule(app: Celery, *entries: ScheduleEntry) -> dict[str, dict[str, Any]]:
    """Celery's ``beat_schedule`` mapping for ``entries``, checked against ``app``.

    Assign it to ``app.conf.beat_schedule``; it is a plain dict, so it can be inspected
    and merged like any Celery setting.

    Raises:
        UnknownQueueError: an entry's task routes to a queue ``app`` does not declare.
        ValueError: two entries with one name.
        TypeError: an argument that is not a :class:`ScheduleEntry` (see :func:`every`).
    """
    declared = tuple(queue.name for queue in app.conf.task_queues or ())
    default = app.conf.task_default_queue or "celery"
    result: dict[str, dict[str, Any]] = {}
    for entry in entries:
        if not isinstance(entry, ScheduleEntry):
            raise TypeError(f"beat_schedule() takes entries made by every(), got {entry!r}")
        if entry.name in result:
            raise ValueError(
                f"beat_schedule(): two entries are named {entry.name!r}; "
                "give one of them another name with every(..., name=...)"
            )
        explicit = entry.options.get("queue")
        queue = getattr(explicit, "name", explicit) or queue_for(entry.task, default)
        if declared and queue not in declared:
            raise UnknownQueueError(queue, entry.task, declared)
        result[entry.name] = entry.as_beat_entry()
    return result
