"""``taskqueue-kit doctor``: check settings and connectivity, and explain each problem.

Every check runs with a deadline, so a firewalled host or a closed port gives a one-line
reason in seconds rather than a hang or a traceback. A URL whose extra is not installed
fails on the broker or backend line with the extra to install, and the extras line says
which extras are there (each web adapter is imported to prove it).
"""

from __future__ import annotations

import concurrent.futures
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from celery import Celery

from taskqueue_kit import _extras
from taskqueue_kit._app import create_celery
from taskqueue_kit._exceptions import MissingExtra, TaskQueueKitError
from taskqueue_kit._results import read_meta
from taskqueue_kit._settings import TaskQueueSettings

__all__ = ["Check", "run_checks"]

Status = Literal["ok", "warn", "fail"]
T = TypeVar("T")


@dataclass(frozen=True)
class Check:
    """The outcome of one check.

    Attributes:
        name: What was checked.
        status: ``ok``, ``warn`` (works, but worth knowing) or ``fail``.
        detail: One line for a person: what was found, or what is wrong and what to do.
    """

    name: str
    status: Status
    detail: str


# The check a setting's missing extra is reported on.
_CHECK_OF_FIELD = {"broker_url": "broker", "result_backend": "result backend"}


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, MissingExtra):  # already the sentence to show
        return str(exc)
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]


def _extras_check() -> list[Check]:
    """Which extras are installed; a warning for each one installed only in part."""
    installed: list[str] = []
    problems: list[Check] = []
    for extra in _extras.EXTRAS:
        missing = _extras.missing_modules(extra.name)
        if extra.modules[0] in missing:
            continue
        if missing:
            error = MissingExtra(extra.feature, extra.name, module=missing[0])
            problems.append(Check("extras", "warn", str(error)))
            continue
        try:
            if extra.adapter:
                importlib.import_module(extra.adapter)
        except Exception as exc:  # an incompatible version: say so, and keep checking
            problems.append(Check("extras", "warn", f"{extra.adapter}: {_one_line(exc)}"))
            continue
        installed.append(extra.name)
    absent = [e.name for e in _extras.EXTRAS if e.name not in installed]
    summary = f"installed: {', '.join(installed) or 'none'}"
    if absent:
        summary += f"; not installed: {', '.join(absent)}"
    return [Check("extras", "ok", summary), *problems]


def _with_deadline(func: Callable[[], T], timeout: float) -> T:
    """Run ``func`` in a daemon-ish thread; raise TimeoutError if it takes too long."""
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    try:
        return pool.submit(func).result(timeout=timeout)
    except concurrent.futures.TimeoutError as exc:
        raise TimeoutError(f"no answer within {timeout:g}s") from exc
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _broker(app: Celery, timeout: float) -> str:
    def connect() -> str:
        with app.connection_for_write() as connection:
            connection.ensure_connection(
                max_retries=1, timeout=max(1, int(timeout)), interval_start=0
            )
            channel = connection.default_channel
            for queue in app.conf.task_queues or ():
                queue(channel).declare()
            return connection.as_uri()

    return f"reachable at {_with_deadline(connect, timeout)}"


def _backend(app: Celery, timeout: float) -> str:
    def probe() -> str:
        read_meta(app, "taskqueue-kit-doctor-probe")
        return type(app.backend).__name__

    return f"{_with_deadline(probe, timeout)} answers"


def _workers(app: Celery, timeout: float) -> tuple[Status, str]:
    replies = _with_deadline(lambda: app.control.ping(timeout=min(1.0, timeout)), timeout + 1)
    names = sorted(name for reply in replies or () for name in reply)
    if not names:
        return "warn", "no worker answered a ping (start one: celery -A yourapp worker)"
    return "ok", f"{len(names)} answered: {', '.join(names)}"


def run_checks(settings_kwargs: dict[str, Any], timeout: float = 4.0) -> list[Check]:
    """Run every check and return their outcomes; never raises for a failed check."""
    try:
        settings = TaskQueueSettings(**settings_kwargs)
        app = create_celery(settings, main="taskqueue_kit_doctor")
    except MissingExtra as exc:
        return [
            Check(_CHECK_OF_FIELD.get(exc.field or "", "settings"), "fail", str(exc)),
            *_extras_check(),
        ]
    except TaskQueueKitError as exc:
        return [Check("settings", "fail", _one_line(exc))]
    checks = [
        Check(
            "settings",
            "ok",
            f"profile {settings.profile}; queues {', '.join(settings.all_queues)}",
        ),
        *_extras_check(),
        Check(
            "serialization",
            "warn" if settings.allow_pickle else "ok",
            "pickle accepted: anyone who can publish can run code"
            if settings.allow_pickle
            else "JSON only",
        ),
    ]
    try:
        checks.append(Check("broker", "ok", _broker(app, timeout)))
    except Exception as exc:  # every failure becomes one readable line
        checks.append(Check("broker", "fail", f"{settings.effective_broker_url}: {_one_line(exc)}"))
        return checks
    try:
        checks.append(Check("result backend", "ok", _backend(app, timeout)))
    except Exception as exc:
        checks.append(
            Check(
                "result backend", "fail", f"{settings.effective_result_backend}: {_one_line(exc)}"
            )
        )
    try:
        status, detail = _workers(app, timeout)
        checks.append(Check("workers", status, detail))
    except Exception as exc:
        checks.append(Check("workers", "warn", f"ping failed: {_one_line(exc)}"))
    return checks
