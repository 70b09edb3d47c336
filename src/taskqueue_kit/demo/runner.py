"""What ``taskqueue-kit demo`` does, end to end, leaving nothing behind.

1. Start a real worker (``celery -A taskqueue_kit.demo.celery_app worker``) on the embedded
   broker, in a temporary directory the demo removes at exit (or on ``--broker``).
2. Send every review as its own ``polarity:analyze`` task, as the lecture's service did,
   with a live progress bar over the finished tasks.
3. Send the same reviews again as a few ``polarity:batch`` tasks, which score in chunks
   and report progress: the way to push thousands of reviews through a queue.
4. Print the results by category and a summary (counts by sign, tasks per second), check
   that both ways gave the same scores, and stop the worker.

Ctrl-C (or SIGTERM) at any point stops the worker and removes the temporary directory.
"""

from __future__ import annotations

import math
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from celery import Celery
from celery.exceptions import TimeoutError as CeleryTimeoutError

from taskqueue_kit import TaskState, get_task_info
from taskqueue_kit.demo._common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    DemoError,
    Terminated,
    check_broker,
    default_concurrency,
    describe_broker,
    require,
    settings_for,
    shielded,
    terminate_as_interrupt,
)
from taskqueue_kit.demo._display import Display, choose_display
from taskqueue_kit.demo._report import Phase, report
from taskqueue_kit.demo._worker import WorkerError, WorkerProcess
from taskqueue_kit.demo.celery_app import make_celery
from taskqueue_kit.demo.reviews import Review, cycle, sample_reviews
from taskqueue_kit.demo.tasks import ANALYZE, BATCH, DEFAULT_CHUNK_SIZE

__all__ = ["run_demo"]

SEND_SLICE = 100
"""Tasks sent between two looks at the results, so the bar moves while sending."""
BATCH_LIMIT = 5_000
"""Most reviews per batch task: bigger jobs are split so every worker process gets some."""
POLL = 0.05
EXPIRES = 600.0
"""Seconds a task may wait in the queue: an interrupted run leaves nothing that runs later."""
STALL = 60.0
"""Seconds without a finished task before the demo gives up on the worker."""


class _Watch:
    """Notices a dead worker at once and a stuck one after :data:`STALL` seconds."""

    def __init__(self, worker: WorkerProcess) -> None:
        self._worker = worker
        self._done = -1
        self._since = time.monotonic()

    def check(self, done: int) -> None:
        self._worker.check_alive()
        now = time.monotonic()
        if done != self._done:
            self._done, self._since = done, now
        elif now - self._since > STALL:
            raise DemoError(f"no task finished in {STALL:.0f} s; the worker seems stuck")


def _finished(app: Celery, pending: set[str], wait: float) -> list[tuple[str, dict[str, Any]]]:
    """The tasks of ``pending`` that finished, waiting up to ``wait`` seconds for some."""
    found: list[tuple[str, dict[str, Any]]] = []
    if not pending:
        return found
    # Celery's key-value backends (the embedded one, Redis) read many ids in one query;
    # the type stubs leave get_many out.
    backend: Any = app.backend
    try:
        for task_id, meta in backend.get_many(set(pending), timeout=wait, interval=wait):
            found.append((str(task_id), meta))
    except CeleryTimeoutError:
        pass
    return found


def _failure(app: Celery, task_id: str) -> str:
    """Why a task failed, read as strings (never as a rebuilt exception)."""
    info = get_task_info(task_id, app=app)
    if info.error is not None:
        return f"{info.error.type}: {info.error.message}"
    return info.state.value


def _one_task_per_review(
    app: Celery, reviews: Sequence[Review], display: Display, watch: _Watch
) -> Phase:
    """Send each review as a ``polarity:analyze`` task; the bar counts finished tasks."""
    task = app.tasks[ANALYZE]
    total = len(reviews)
    order: list[str] = []
    pending: set[str] = set()
    scores: dict[str, float] = {}
    failures: dict[str, str] = {}
    started = time.perf_counter()
    with (
        display.progress(f"one task per review ({ANALYZE})", total) as advance,
        app.producer_or_acquire() as producer,
    ):
        while len(order) < total or pending:
            for review in reviews[len(order) : len(order) + SEND_SLICE]:
                result = task.apply_async(args=(review.text,), expires=EXPIRES, producer=producer)
                order.append(str(result.id))
                pending.add(str(result.id))
            wait = POLL if len(order) == total else 0.001
            for task_id, meta in _finished(app, pending, wait):
                pending.discard(task_id)
                if meta["status"] == "SUCCESS":
                    scores[task_id] = float(meta["result"])
                else:
                    failures[task_id] = _failure(app, task_id)
            advance(len(scores) + len(failures))
            watch.check(len(scores) + len(failures))
    seconds = time.perf_counter() - started
    if failures:
        first = next(iter(failures.values()))
        raise DemoError(f"{len(failures)} of {total} {ANALYZE} tasks failed; the first: {first}")
    return Phase(tasks=total, seconds=seconds, scores=[scores[task_id] for task_id in order])


def _split(reviews: Sequence[Review], workers: int) -> list[list[str]]:
    """Reviews in as many parts as worker processes (more for very big jobs)."""
    parts = min(len(reviews), max(workers, math.ceil(len(reviews) / BATCH_LIMIT)))
    size = math.ceil(len(reviews) / parts)
    return [[review.text for review in reviews[i : i + size]] for i in range(0, len(reviews), size)]


def _batches(
    app: Celery, reviews: Sequence[Review], workers: int, display: Display, watch: _Watch
) -> Phase:
    """Send the reviews as a few ``polarity:batch`` tasks; the bar sums their progress."""
    parts = _split(reviews, workers)
    task = app.tasks[BATCH]
    started = time.perf_counter()
    sent = [
        task.apply_async(args=(part,), kwargs={"chunk_size": DEFAULT_CHUNK_SIZE}, expires=EXPIRES)
        for part in parts
    ]
    with display.progress(f"in chunks ({BATCH}, {len(parts)} tasks)", len(reviews)) as advance:
        while True:
            infos = [get_task_info(str(result.id), app=app) for result in sent]
            done = 0
            for info, part in zip(infos, parts, strict=True):
                if info.state is TaskState.SUCCEEDED:
                    done += len(part)
                elif info.progress is not None:
                    done += int(info.progress.current)
            advance(done)
            if all(info.ready for info in infos):
                break
            watch.check(done)
            time.sleep(POLL)
    seconds = time.perf_counter() - started
    failed = [info for info in infos if info.state is not TaskState.SUCCEEDED]
    if failed:
        error = failed[0].error
        why = f"{error.type}: {error.message}" if error else failed[0].state.value
        raise DemoError(f"{len(failed)} {BATCH} tasks did not succeed; the first: {why}")
    scores: list[float] = []
    for info in infos:
        if not isinstance(info.result, list):
            raise DemoError(f"{BATCH} returned {type(info.result).__name__}, not a list")
        scores.extend(float(score) for score in info.result)  # type: ignore[arg-type]
    return Phase(tasks=len(parts), seconds=seconds, scores=scores)


def _run(
    display: Display,
    reviews: Sequence[Review],
    broker_url: str | None,
    workers: int,
    scratch: Path,
) -> bool:
    settings = settings_for(
        broker_url, home=scratch / "data", isolated=True, progress_interval=0.2, result_expires=3600
    )
    app = make_celery(settings)
    worker = WorkerProcess(settings, concurrency=workers, output=scratch / "worker.log")
    try:
        check_broker(app)
        where = describe_broker(settings)
        if settings.uses_embedded_broker:
            where = "embedded SQLite, in a temporary directory removed at exit"
        display.line(
            f"Sentiment demo: {len(reviews)} reviews scored by TextBlob in a Celery worker"
        )
        display.line(f"  broker: {where}")
        display.line(f"  worker: {worker.display_command}")
        worker.start()
        ready = worker.wait_ready(app)
        display.line(f"  worker ready in {ready:.1f} s (pid {worker.pid}, {workers} processes)")
        display.line()
        watch = _Watch(worker)
        per_review = _one_task_per_review(app, reviews, display, watch)
        batch = _batches(app, reviews, workers, display, watch)
        return report(display, reviews, per_review, batch, DEFAULT_CHUNK_SIZE)
    finally:
        with shielded():
            worker.stop()
            app.close()


def run_demo(
    *,
    count: int | None = None,
    broker_url: str | None = None,
    concurrency: int | None = None,
    display: Display | None = None,
) -> int:
    """Run the demo; return the exit status.

    Args:
        count: Reviews to score; all the shipped ones by default, repeated past their end.
        broker_url: A RabbitMQ or Redis URL instead of the embedded broker.
        concurrency: Worker processes; one per CPU (at most 4) by default.
        display: Where to show progress and results; chosen for stdout by default.

    Returns:
        0 on success, 1 on a failure (explained), 130 after Ctrl-C, 143 after SIGTERM.
    """
    display = choose_display() if display is None else display
    try:
        with terminate_as_interrupt():
            require("textblob")
            reviews = cycle(count or len(sample_reviews()))
            workers = concurrency or default_concurrency()
            scratch = Path(tempfile.mkdtemp(prefix="taskqueue-demo-"))
            try:
                agree = _run(display, reviews, broker_url, workers, scratch)
            finally:
                with shielded():
                    shutil.rmtree(scratch, ignore_errors=True)
        display.line("Worker stopped; nothing left running.")
        if not agree:
            print("demo failed: the batch and per-review scores differ", file=sys.stderr)
            return EXIT_FAILED
        return EXIT_OK
    except KeyboardInterrupt as exc:
        display.line()
        display.line("Interrupted: the worker is stopped and the temporary data removed.")
        return EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED
    except (DemoError, WorkerError) as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
