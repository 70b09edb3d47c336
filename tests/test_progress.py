"""Progress: validated values, throttled writes, the final step always lands."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from celery import Celery

from taskqueue_kit import Progress, TaskState, get_task_info, report_progress
from taskqueue_kit.testing import run_worker

pytestmark = pytest.mark.compat


@pytest.mark.parametrize(
    ("current", "total"),
    [(-1, 10), (11, 10), (0, 0), (1, -5), ("1", 10), (True, 10)],
)
def test_out_of_bounds_is_a_value_error(current: Any, total: Any) -> None:
    """current must lie in [0, total] and total must be above zero."""
    with pytest.raises(ValueError, match=r"current|total"):
        Progress.of(current, total)


def test_percent_is_derived() -> None:
    """percent is 100 * current / total, rounded to one decimal."""
    assert Progress.of(1, 3, "a third").model_dump() == {
        "current": 1,
        "total": 3,
        "percent": 33.3,
        "message": "a third",
    }


def test_throttled_and_final_write_lands(embedded_app: Celery) -> None:
    """100,000 calls make a bounded number of writes and the final current == total lands."""
    embedded_app.conf.taskqueue_progress_interval = 0.05
    release = threading.Event()
    writes: list[int] = []

    @embedded_app.task(shared=False, name="loop", bind=True)
    def loop(self: Any) -> int:
        started = time.monotonic()
        count = sum(
            report_progress(self, current=i, total=100_000, message="looping")
            for i in range(1, 100_001)
        )
        elapsed = time.monotonic() - started
        writes.append(count)
        writes.append(int(elapsed / 0.05) + 2)  # the most the throttle may allow
        release.wait(10)
        return count

    with run_worker(embedded_app):
        result = loop.delay()
        deadline = time.monotonic() + 30
        info = get_task_info(result.id, app=embedded_app)
        while (
            not (info.progress and info.progress.current == 100_000) and time.monotonic() < deadline
        ):
            time.sleep(0.02)
            info = get_task_info(result.id, app=embedded_app)
        release.set()
        count = result.get(timeout=30)
    assert info.state is TaskState.PROGRESS
    assert info.progress is not None
    assert info.progress.percent == 100.0
    assert info.progress.message == "looping"
    assert writes[0] == count
    assert 2 <= count <= writes[1]
    assert count < 1000


def test_outside_a_worker_nothing_is_written(embedded_app: Celery) -> None:
    """Called directly (not through a worker) report_progress writes nothing."""

    @embedded_app.task(shared=False, name="direct", bind=True)
    def direct(self: Any) -> bool:
        return report_progress(self, 1, 2)

    assert direct() is False
