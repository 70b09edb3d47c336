"""Tasks the web tests expose: shared tasks, so every test app registers them.

Their names have no ``queue:`` prefix, so they go to each test's own default queue.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from celery import shared_task
from flask import current_app

from taskqueue_kit import report_progress


@shared_task(name="webtest.add")
def add(x: int, y: int) -> int:
    """Add two numbers."""
    return x + y


@shared_task(name="webtest.count", bind=True)
def count(self: Any, steps: int, pause: float = 0.05) -> int:
    """Count to ``steps``, reporting progress at each step."""
    for step in range(1, steps + 1):
        time.sleep(pause)
        report_progress(self, step, steps, f"step {step}", force=True)
    return steps


@shared_task(name="webtest.nap")
def nap(seconds: float) -> float:
    """Keep the worker busy for a while."""
    time.sleep(seconds)
    return seconds


@shared_task(name="webtest.touch")
def touch(path: str) -> str:
    """Leave a file behind, as proof that the task ran."""
    Path(path).write_text("ran")
    return path


@shared_task(name="webtest.fail")
def fail(message: str) -> None:
    """Fail with ``message``."""
    raise ValueError(message)


@shared_task(name="webtest.config_value")
def config_value(key: str) -> Any:
    """Read the Flask app's config: works only inside its app context."""
    return current_app.config[key]


@shared_task(name="webtest.hidden")
def hidden() -> str:
    """Registered on every app, but exposed by none."""
    return "should never run over HTTP"


EXPOSED = (add, count, nap, touch, fail, config_value)
