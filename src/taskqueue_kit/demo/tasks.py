"""The sentiment tasks: one review per task, or many reviews scored in chunks.

Both names start with ``polarity:``, so :func:`taskqueue_kit.route_task` sends them to the
``polarity`` queue. They retry the way the seed's task did (exponential backoff with
jitter), but only on errors worth retrying: a bad review fails at once instead of five
times. They are shared tasks, so every app that imports this module can run them.

Per review, the queue's own overhead (a message, a status record, a result) dwarfs the
scoring; :func:`analyze_batch` pays it once for thousands of reviews and still reports
progress after every chunk (the writes are throttled by ``progress_interval``).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from taskqueue_kit import RetryingTask, RetryPolicy, report_progress, retrying_task
from taskqueue_kit.demo import model

__all__ = [
    "ANALYZE",
    "BATCH",
    "DEFAULT_CHUNK_SIZE",
    "MAX_BATCH",
    "MAX_CHUNK_SIZE",
    "QUEUE",
    "RETRY_POLICY",
    "ReviewText",
    "analyze",
    "analyze_batch",
]

QUEUE = "polarity"
"""The queue of both tasks: the part of their names before the colon."""
ANALYZE = f"{QUEUE}:analyze"
BATCH = f"{QUEUE}:batch"
DEFAULT_CHUNK_SIZE = 250
MAX_CHUNK_SIZE = 10_000
MAX_BATCH = 100_000
"""Most reviews in one batch task; split bigger jobs over several tasks."""

# The annotations double as the HTTP body's schema: the web adapters build their request
# models from these signatures, so a bad body is a 422 before anything is queued.
ReviewText = Annotated[str, Field(min_length=1, max_length=model.MAX_REVIEW_CHARS)]
ReviewList = Annotated[list[ReviewText], Field(min_length=1, max_length=MAX_BATCH)]
ChunkSize = Annotated[int, Field(ge=1, le=MAX_CHUNK_SIZE)]

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


@retrying_task(name=BATCH, bind=True, policy=RETRY_POLICY)
def analyze_batch(
    self: RetryingTask, reviews: ReviewList, chunk_size: ChunkSize = DEFAULT_CHUNK_SIZE
) -> list[float]:
    """Score many reviews in chunks, reporting progress after each chunk.

    Returns the polarities in the order of the reviews: a list of floats, compact in
    the result backend even for thousands of reviews.
    """
    if not isinstance(reviews, list) or not reviews:
        raise ValueError("reviews must be a non-empty list of strings")
    if len(reviews) > MAX_BATCH:
        raise ValueError(f"{len(reviews)} reviews in one batch; the limit is {MAX_BATCH}")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int):
        raise TypeError(f"chunk_size must be an integer, got {chunk_size!r}")
    if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        raise ValueError(f"chunk_size must be within [1, {MAX_CHUNK_SIZE}], got {chunk_size}")
    # Check every review before scoring any, so a bad one fails the task at once.
    checked = [model.check_review(text, f"reviews[{index}]") for index, text in enumerate(reviews)]
    score = model.load()
    total = len(checked)
    report_progress(self, 0, total, f"scoring {total} reviews")
    scores: list[float] = []
    for start in range(0, total, chunk_size):
        scores.extend(score(text) for text in checked[start : start + chunk_size])
        report_progress(self, len(scores), total, f"scored {len(scores)} of {total} reviews")
    return scores
