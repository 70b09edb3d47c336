"""Log correlation: records created while a task runs carry its id and name."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from taskqueue_kit import TaskQueueSettings, add_task_context, create_celery
from taskqueue_kit._logcontext import current_task
from taskqueue_kit.testing import run_worker, unique_name


class _Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def kept() -> Iterator[_Keep]:
    handler = _Keep()
    logger = logging.getLogger("service.module")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)


def test_records_inside_tasks_carry_their_ids_and_outside_none(tmp_path: Path, kept: _Keep) -> None:
    """Two tasks running at once on the thread pool each tag their own records; a record
    logged outside any task has task_id None; a service logger needs nothing of Celery's."""
    app = create_celery(
        TaskQueueSettings(home=tmp_path, log_task_context=True, default_queue=unique_name("q"))
    )
    both_running = threading.Barrier(2, timeout=20)

    @app.task(name="logs.work", shared=False)
    def work(token: str) -> str:
        logging.getLogger("service.module").info("before %s", token)
        both_running.wait()  # the two tasks overlap in two pool threads
        logging.getLogger("service.module").info("after %s", token)
        return token

    with run_worker(app, concurrency=2):
        first, second = work.delay("a"), work.delay("b")
        assert (first.get(timeout=30), second.get(timeout=30)) == ("a", "b")
    logging.getLogger("service.module").info("outside")
    by_message = {record.getMessage(): record for record in kept.records}
    for token, result in (("a", first), ("b", second)):
        for moment in ("before", "after"):
            record = by_message[f"{moment} {token}"]
            assert (record.task_id, record.task_name) == (result.id, "logs.work")  # type: ignore[attr-defined]
    assert by_message["outside"].task_id is None  # type: ignore[attr-defined]
    assert current_task() == (None, None)
    app.close()


def test_the_structlog_processor_adds_the_same_fields() -> None:
    """add_task_context is a structlog processor: it adds the ids inside a task only."""
    from taskqueue_kit import _logcontext

    assert add_task_context(None, "info", {"event": "x"}) == {"event": "x"}
    token = _logcontext._current.set(("an-id", "a.name"))
    try:
        event = add_task_context(None, "info", {"event": "x"})
    finally:
        _logcontext._current.reset(token)
    assert event == {"event": "x", "task_id": "an-id", "task_name": "a.name"}


def test_off_by_default() -> None:
    """Without log_task_context nothing is installed: the setting defaults to off."""
    assert TaskQueueSettings().log_task_context is False
