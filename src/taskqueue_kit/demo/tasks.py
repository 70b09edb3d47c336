"""The sentiment tasks: one review per task, or many reviews scored in chunks.

Both names start with ``polarity:``, so :func:`taskqueue_kit.route_task` sends them to the
``polarity`` queue. They retry the way the hand-written Celery task of the article's
original service did (exponential backoff with jitter), but only on errors worth
retrying: a bad review fails at once instead of five times. They are shared tasks, so
every app that imports this module can run them.

Per review, the queue's own overhead (a message, a status record, a result) dwarfs the
scoring; :func:`analyze_batch` pays it once for thousands of reviews and still reports
progress after chunks (the writes are throttled by ``progress_interval``). Its progress
message carries the scores found since the last write, so a page can show each review's
score while the batch runs (see :func:`progress_message`).
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

from pydantic import Field

from taskqueue_kit import RetryingTask, RetryPolicy, report_progress, retrying_task
from taskqueue_kit.demo import model

__all__ = [
    "ANALYZE",
    "BATCH",
    "DEFAULT_CHUNK_SIZE",
    "MAX_BATCH",
    "MAX_CHUNK_SIZE",
    "MAX_PACED_SECONDS",
    "QUEUE",
    "RETRY_POLICY",
    "ReviewText",
    "analyze",
    "analyze_batch",
    "progress_message",
]

QUEUE = "polarity"
"""The queue of both tasks: the part of their names before the colon."""
ANALYZE = f"{QUEUE}:analyze"
BATCH = f"{QUEUE}:batch"
DEFAULT_CHUNK_SIZE = 250
MAX_CHUNK_SIZE = 10_000
MAX_BATCH = 100_000
"""Most reviews in one batch task; split bigger jobs over several tasks."""
MAX_PACED_SECONDS = 60.0
"""Longest a batch may be slowed down by ``pace`` in all."""
_REPORT_EVERY = 0.05
"""Fewest seconds between two progress reports of a batch, however small its chunks: each
report's message holds every score not yet written, so it must not be rebuilt per review."""

# The annotations double as the HTTP body's schema: the web adapters build their request
# models from these signatures, so a bad body is a 422 before anything is queued.
ReviewText = Annotated[str, Field(min_length=1, max_length=model.MAX_REVIEW_CHARS)]
ReviewList = Annotated[list[ReviewText], Field(min_length=1, max_length=MAX_BATCH)]
ChunkSize = Annotated[int, Field(ge=1, le=MAX_CHUNK_SIZE)]
Pace = Annotated[float, Field(ge=0, le=1)]

RETRY_POLICY = RetryPolicy(
    # Reading TextBlob's lexicon from disk is the only I/O a scoring task does; a bad
    # review (TypeError, ValueError) or a missing TextBlob (ImportError) fails at once.
    retry_on=(OSError,),
    no_retry_on=(ValueError, TypeError),
    max_retries=5,
    backoff=1.0,
    backoff_max=60.0,
    jitter=True,
)


@retrying_task(name=ANALYZE, policy=RETRY_POLICY)
def analyze(review: ReviewText) -> float:
    """Score one review: polarity from -1.0 (negative) to 1.0 (positive)."""
    return model.polarity(review)


def progress_message(text: str, first: int, scores: list[float]) -> str:
    """A batch's progress message: JSON with words for people and the newest scores.

    ``{"text": "scored 40 of 100 reviews", "first": 20, "scores": [0.5, ...]}``: the
    scores of reviews ``first``, ``first + 1``, ... scored since the last progress write.
    A reader that missed a write (an event stream reads the latest status only) sees a
    ``first`` past what it has; the missing scores come with the result.
    """
    return json.dumps({"text": text, "first": first, "scores": [round(s, 4) for s in scores]})


@retrying_task(name=BATCH, bind=True, policy=RETRY_POLICY)
def analyze_batch(
    self: RetryingTask,
    reviews: ReviewList,
    chunk_size: ChunkSize = DEFAULT_CHUNK_SIZE,
    pace: Pace = 0.0,
) -> list[float]:
    """Score many reviews in chunks, reporting progress, and the new scores, after chunks.

    Returns the polarities in the order of the reviews: a list of floats, compact in
    the result backend even for thousands of reviews. ``pace`` is seconds to wait after
    each review, standing in for a slower model so that a person can watch the scores
    arrive (TextBlob scores a review in a tenth of a millisecond); at most
    :data:`MAX_PACED_SECONDS` in all.
    """
    _check(reviews, chunk_size, pace)
    # Check every review before scoring any, so a bad one fails the task at once.
    checked = [model.check_review(text, f"reviews[{index}]") for index, text in enumerate(reviews)]
    score = model.load()
    total = len(checked)
    report_progress(self, 0, total, progress_message(f"scoring {total} reviews", 0, []))
    scores: list[float] = []
    written = 0  # scores already carried by a progress write
    last_report = time.monotonic()
    for start in range(0, total, chunk_size):
        for review in checked[start : start + chunk_size]:
            scores.append(score(review))
            if pace:
                time.sleep(pace)
        done = len(scores)
        if done < total and time.monotonic() - last_report < _REPORT_EVERY:
            continue
        last_report = time.monotonic()
        message = progress_message(f"scored {done} of {total} reviews", written, scores[written:])
        if report_progress(self, done, total, message):
            written = done
    return scores


def _check(reviews: Any, chunk_size: Any, pace: Any) -> None:
    """Refuse what the HTTP body model refuses, for callers that skip it; and long paces."""
    if not isinstance(reviews, list) or not reviews:
        raise ValueError("reviews must be a non-empty list of strings")
    if len(reviews) > MAX_BATCH:
        raise ValueError(f"{len(reviews)} reviews in one batch; the limit is {MAX_BATCH}")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int):
        raise TypeError(f"chunk_size must be an integer, got {chunk_size!r}")
    if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        raise ValueError(f"chunk_size must be within [1, {MAX_CHUNK_SIZE}], got {chunk_size}")
    if isinstance(pace, bool) or not isinstance(pace, int | float):
        raise TypeError(f"pace must be a number of seconds, got {pace!r}")
    if not 0 <= pace <= 1:
        raise ValueError(f"pace must be within [0, 1] seconds, got {pace}")
    if pace * len(reviews) > MAX_PACED_SECONDS:
        raise ValueError(
            f"pace {pace} s for {len(reviews)} reviews is {pace * len(reviews):.0f} s; "
            f"the limit is {MAX_PACED_SECONDS:.0f} s"
        )
