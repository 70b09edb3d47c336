"""The periodic example: a real ``celery beat`` sends the report and the clean-up on schedule."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _exampletools import wait_until

from taskqueue_kit import UnknownQueueError
from taskqueue_kit.testing import run_worker

ROOT = Path(__file__).resolve().parents[2]


def _stale(path: Path) -> Path:
    path.write_text("left behind")
    old = time.time() - 3600
    os.utime(path, (old, old))
    return path


@pytest.mark.slow
def test_beat_sends_both_tasks_every_second(load_example, tmp_path) -> None:
    """Within a generous bound: two reports written and two stale files removed by two runs."""
    tasks = load_example(
        "examples.periodic.tasks",
        PERIODIC_REPORT_SECONDS="1",
        PERIODIC_CLEANUP_SECONDS="1",
        PERIODIC_MAX_AGE_SECONDS="600",
    )
    tasks.SCRATCH.mkdir(parents=True)
    fresh = tasks.SCRATCH / "fresh.tmp"
    fresh.write_text("still in use")
    first = _stale(tasks.SCRATCH / "first.tmp")
    log = tmp_path / "beat.log"
    with run_worker(tasks.app), log.open("wb") as sink:
        beat = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "examples.periodic.tasks", "beat",
             f"--schedule={tmp_path / 'beat-schedule'}", "--loglevel=INFO"],
            cwd=ROOT, env=dict(os.environ), stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            started = time.monotonic()
            wait_until(lambda: not first.exists(), timeout=20, what="the first clean-up")
            second = _stale(tasks.SCRATCH / "second.tmp")
            wait_until(lambda: not second.exists(), timeout=20, what="a second clean-up")
            reports = wait_until(
                lambda: len(found := sorted(tasks.REPORTS.glob("report-*.json"))) >= 2 and found,
                timeout=20,
                what="two reports",
            )
            elapsed = time.monotonic() - started
        finally:
            beat.send_signal(signal.SIGTERM)
            beat.wait(timeout=15)

    assert fresh.exists(), "a file younger than max_age was removed"
    # Beat never sends more often than the schedule says (one run a second, plus the first).
    assert len(reports) <= elapsed + 2, (len(reports), elapsed)
    summaries = [json.loads(path.read_text()) for path in reports]
    assert all(summary["files"] >= 1 for summary in summaries)  # fresh.tmp at least
    assert all(summary["bytes"] >= len("still in use") for summary in summaries)
    assert "summary report" in log.read_text()


def test_schedule_of_the_example(load_example) -> None:
    """The example's schedule: both tasks, their intervals, one period to start or be dropped."""
    tasks = load_example("examples.periodic.tasks", PERIODIC_REPORT_SECONDS="30")
    schedule = tasks.app.conf.beat_schedule
    assert schedule["summary report"]["task"] == "reports:summary"
    assert schedule["summary report"]["schedule"] == 30.0
    assert schedule["summary report"]["options"] == {"expires": 30.0}
    assert schedule["scratch clean-up"]["task"] == "maint:cleanup"
    assert schedule["scratch clean-up"]["args"] == (60.0,)
    assert schedule["scratch clean-up"]["schedule"] == 5.0


def test_an_undeclared_queue_is_refused_before_beat_starts(load_example) -> None:
    """A schedule naming a task on an undeclared queue fails when built, not at every tick."""
    tasks = load_example("examples.periodic.tasks")
    from taskqueue_kit import beat_schedule, every

    @tasks.app.task(name="billing:invoice", shared=False)
    def invoice() -> None:
        return None

    with pytest.raises(UnknownQueueError, match="billing"):
        beat_schedule(tasks.app, every(60, invoice))


def test_bad_intervals_are_refused(load_example) -> None:
    """A zero or negative interval in the environment is a clear error at import."""
    with pytest.raises(ValueError, match="PERIODIC_CLEANUP_SECONDS must be above 0"):
        load_example("examples.periodic.tasks", PERIODIC_CLEANUP_SECONDS="0")
