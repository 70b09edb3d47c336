"""Periodic tasks: a summary report and a clean-up of old files, sent by celery beat.

Worker: ``celery -A examples.periodic.tasks worker -Q reports,maint --loglevel=INFO``.
Beat:   ``celery -A examples.periodic.tasks beat --loglevel=INFO``.

Beat only sends; workers run. The schedule is built with the kit's ``every`` and
``beat_schedule``, which refuse a task whose queue is not declared before beat starts,
and drop a run no worker took within one period rather than letting runs pile up.
Intervals come from ``PERIODIC_REPORT_SECONDS`` (default 10), ``PERIODIC_CLEANUP_SECONDS``
(default 5) and ``PERIODIC_MAX_AGE_SECONDS`` (default 60), so the demo shows something
within seconds; a real service would use ``crontab(hour=7, minute=0)`` and hours.
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from typing import Any

from taskqueue_kit import (
    TaskQueueSettings,
    beat_schedule,
    create_celery,
    every,
    retrying_task,
)

settings = TaskQueueSettings(queues=("reports", "maint"))
app = create_celery(settings, main="examples.periodic")

SCRATCH = settings.home.resolve() / "scratch"
REPORTS = settings.home.resolve() / "reports"


def _seconds(variable: str, default: float) -> float:
    value = float(os.environ.get(variable, default))
    if not value > 0:
        raise ValueError(f"{variable} must be above 0 seconds, got {value}")
    return value


REPORT_EVERY = _seconds("PERIODIC_REPORT_SECONDS", 10)
CLEANUP_EVERY = _seconds("PERIODIC_CLEANUP_SECONDS", 5)
MAX_AGE = _seconds("PERIODIC_MAX_AGE_SECONDS", 60)


@retrying_task(app=app, name="reports:summary", retry_on=(OSError,), max_retries=2)
def write_report() -> dict[str, Any]:
    """Summarise the scratch directory into ``reports/report-<UTC time>.json``."""
    now = datetime.now(UTC)
    files = [path for path in SCRATCH.glob("*") if path.is_file()] if SCRATCH.exists() else []
    sizes = []
    for path in files:
        try:
            sizes.append(path.stat().st_size)
        except FileNotFoundError:  # removed by the clean-up meanwhile
            continue
    summary = {"at": now.isoformat(), "files": len(sizes), "bytes": sum(sizes)}
    REPORTS.mkdir(parents=True, exist_ok=True)
    target = REPORTS / f"report-{now:%Y%m%dT%H%M%S%fZ}.json"
    partial = target.with_name(f".{target.name}.partial")
    partial.write_text(json.dumps(summary), encoding="utf-8")
    os.replace(partial, target)  # readers never see half a report
    return {**summary, "report": target.name}


@retrying_task(app=app, name="maint:cleanup", retry_on=(OSError,), max_retries=2)
def clean_up(max_age: float) -> dict[str, Any]:
    """Remove files in the scratch directory not modified for ``max_age`` seconds."""
    if max_age <= 0:
        raise ValueError(f"max_age must be above 0 seconds, got {max_age}")
    cutoff = time.time() - max_age
    removed = []
    for path in sorted(SCRATCH.glob("*")) if SCRATCH.exists() else []:
        try:
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed.append(path.name)
        except FileNotFoundError:  # another run got there first
            continue
    return {"removed": removed}


app.conf.beat_schedule = beat_schedule(
    app,
    every(REPORT_EVERY, write_report, name="summary report"),
    every(CLEANUP_EVERY, clean_up.si(MAX_AGE), name="scratch clean-up"),
)
