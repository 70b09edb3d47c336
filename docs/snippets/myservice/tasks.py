"""The Celery app and its tasks: what the worker imports (``celery -A myservice.tasks``)."""

from __future__ import annotations

from typing import Any

from taskqueue_kit import TaskQueueSettings, create_celery, report_progress, retrying_task

# Broker, backend and profile come from TASKQUEUE_* variables (or .env); with none set,
# both live in SQLite files under ./.taskqueue, shared by every process started here.
settings = TaskQueueSettings(queues=("polarity",))
app = create_celery(settings, main="myservice")

POSITIVE = frozenset({"good", "great", "fine", "love", "excellent"})
NEGATIVE = frozenset({"bad", "awful", "poor", "hate", "broken"})


def score(review: str) -> float:
    """Polarity of one review, from -1 (negative) to 1 (positive)."""
    words = review.lower().split()
    hits = sum(word in POSITIVE for word in words) - sum(word in NEGATIVE for word in words)
    return max(-1.0, min(1.0, hits / 2))


@retrying_task(app=app, name="polarity:analyze", bind=True, retry_on=(ConnectionError,))
def analyze(self: Any, reviews: list[str]) -> list[float]:
    """Score each review, reporting progress as it goes."""
    scores = []
    for done, review in enumerate(reviews, start=1):
        scores.append(score(review))
        report_progress(self, current=done, total=len(reviews), message="scoring reviews")
    return scores
