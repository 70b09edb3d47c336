"""Sentiment figure: one task per review against the batch task, reviews per second.

The demo's own app and tasks (:mod:`taskqueue_kit.demo`) on the embedded default, with a
2-process worker started for each measurement and warmed up (TextBlob loaded) first.
End to end means from the first task sent to every score read back by the sender:

* per review: ``reviews`` ``polarity:analyze`` tasks, sent in a loop; the scores are read
  in bulk once every task has finished (the last one sent is polled every 5 ms);
* batch: the reviews split into one ``polarity:batch`` task per worker process (the demo's
  own split), chunks of the demo's default size; each result is a list of scores.

Both must give the same scores, or the figure is refused.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from celery import Celery

from bench._measure import alternating, medians, ratio, wait_until
from bench._workers import CONCURRENCY, celery_worker_command, running
from taskqueue_kit import TaskQueueSettings
from taskqueue_kit.demo._worker import worker_environment
from taskqueue_kit.demo.celery_app import make_celery
from taskqueue_kit.demo.reviews import cycle
from taskqueue_kit.demo.tasks import ANALYZE, BATCH, DEFAULT_CHUNK_SIZE, QUEUE

Log = Callable[[str], None]
TIMEOUT = 600.0
_CHUNK = 1000
LABELS = {
    "per_review": f"one task per review ({ANALYZE})",
    "batch": f"batch task ({BATCH}, one per worker process, chunks of {DEFAULT_CHUNK_SIZE})",
}


def _per_review(app: Celery, reviews: Sequence[str]) -> list[float]:
    task = app.tasks[ANALYZE]
    with app.producer_or_acquire() as producer:
        ids = [str(task.apply_async(args=(text,), producer=producer).id) for text in reviews]
    backend: Any = app.backend

    def metas(chunk: Sequence[str]) -> list[dict[str, Any] | None]:
        raws = backend.mget([backend.get_key_for_task(i) for i in chunk])
        return [None if raw is None else backend.decode(raw) for raw in raws]

    def finished(meta: dict[str, Any] | None) -> bool:
        status = None if meta is None else meta.get("status")
        if status in {"FAILURE", "REVOKED"}:
            raise RuntimeError(f"a {ANALYZE} task ended {status}: {meta}")
        return status == "SUCCESS"

    wait_until(lambda: finished(metas(ids[-1:])[0]), TIMEOUT, what="the last review")
    scores: list[float] = []
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        for task_id, meta in zip(chunk, metas(chunk), strict=True):
            while not finished(meta):  # a straggler the other process was still scoring
                time.sleep(0.005)
                meta = metas([task_id])[0]
            assert meta is not None
            scores.append(float(meta["result"]))
    return scores


def _batch(app: Celery, reviews: Sequence[str]) -> list[float]:
    size = math.ceil(len(reviews) / CONCURRENCY)
    task = app.tasks[BATCH]
    sent = [
        task.apply_async(
            args=(list(reviews[i : i + size]),), kwargs={"chunk_size": DEFAULT_CHUNK_SIZE}
        )
        for i in range(0, len(reviews), size)
    ]
    scores: list[float] = []
    for result in sent:
        scores.extend(float(s) for s in result.get(timeout=TIMEOUT))
    return scores


RUNS: dict[str, Callable[[Celery, Sequence[str]], list[float]]] = {
    "per_review": _per_review,
    "batch": _batch,
}


def _once(key: str, reviews: Sequence[str]) -> tuple[float, list[float], float]:
    """Seconds, scores and worker peak RSS of one measurement on fresh state."""
    with tempfile.TemporaryDirectory(prefix="bench-sentiment-") as tmp:
        settings = TaskQueueSettings(
            profile="development",
            broker_url=None,
            result_backend=None,
            home=Path(tmp) / "taskqueue",
            queues=(QUEUE,),
        )
        app = make_celery(settings)
        command = celery_worker_command("taskqueue_kit.demo.celery_app", [QUEUE])
        try:
            with running(command, worker_environment(settings)) as worker:
                for _ in range(3):  # worker up, TextBlob loaded, both processes warm
                    worker.check_alive()
                    app.tasks[ANALYZE].delay("warming up").get(timeout=120)
                start = time.perf_counter()
                scores = RUNS[key](app, reviews)
                seconds = time.perf_counter() - start
                worker.check_alive()
        finally:
            app.close()
    return seconds, scores, worker.peak_rss_mib


def measure(*, reviews: int, rounds: int, log: Log) -> dict[str, Any]:
    """Alternate per-review and batch over ``rounds``; medians and the batch's speed-up."""
    texts = [review.text for review in cycle(reviews)]
    measured: dict[str, list[dict[str, Any]]] = {key: [] for key in RUNS}
    reference: list[float] | None = None
    for number, key in alternating(list(RUNS), rounds):
        seconds, scores, rss = _once(key, texts)
        if reference is None:
            reference = scores
        elif scores != reference:
            raise RuntimeError(f"{LABELS[key]} gave other scores than the first measurement")
        figures = {
            "reviews": len(texts),
            "seconds": seconds,
            "reviews_per_s": len(texts) / seconds,
            "rss_peak_mib": rss,
        }
        rate = figures["reviews_per_s"]
        log(f"  round {number + 1}/{rounds}: {LABELS[key]}: {rate:,.0f} reviews/s")
        measured[key].append(figures)
    middle = {key: medians(values) for key, values in measured.items()}
    return {
        "reviews": len(texts),
        "runs": {
            key: {"label": LABELS[key], "rounds": measured[key], "median": middle[key]}
            for key in RUNS
        },
        "batch_over_per_review": ratio(
            middle["batch"]["reviews_per_s"], middle["per_review"]["reviews_per_s"]
        ),
    }
