"""The demo's results: a table by category, the extremes, and a summary with throughput."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from taskqueue_kit.demo._display import Display
from taskqueue_kit.demo.model import sign
from taskqueue_kit.demo.reviews import Review
from taskqueue_kit.demo.tasks import ANALYZE, BATCH

__all__ = ["Phase", "report"]

_EXCERPT = 72


@dataclass(frozen=True)
class Phase:
    """How one way of sending the reviews went.

    Attributes:
        tasks: Tasks sent.
        seconds: From the first send to the last result.
        scores: One polarity per review, in the order of the reviews.
    """

    tasks: int
    seconds: float
    scores: list[float]

    def rate(self, units: int) -> float:
        """``units`` per second over the phase."""
        return units / self.seconds if self.seconds > 0 else float("inf")


def _excerpt(text: str) -> str:
    return text if len(text) <= _EXCERPT else text[: _EXCERPT - 1].rstrip() + "…"


def _row(name: str, scores: Sequence[float]) -> list[str]:
    signs = [sign(score) for score in scores]
    mean = sum(scores) / len(scores)
    return [
        name,
        str(len(scores)),
        str(signs.count("positive")),
        str(signs.count("negative")),
        str(signs.count("neutral")),
        f"{mean:+.3f}",
    ]


def report(
    display: Display,
    reviews: Sequence[Review],
    per_review: Phase,
    batch: Phase,
    chunk_size: int,
) -> bool:
    """Print the results table and the summary; True when both ways agree on every score."""
    scores = per_review.scores
    by_category: dict[str, list[float]] = defaultdict(list)
    for review, score in zip(reviews, scores, strict=True):
        by_category[review.category].append(score)
    display.line()
    display.table(
        "Results by category",
        ["category", "reviews", "positive", "negative", "neutral", "mean polarity"],
        [_row(name, by_category[name]) for name in sorted(by_category)],
        footer=_row("all", scores),
    )
    ranked = sorted(range(len(reviews)), key=lambda index: scores[index])
    for label, index in (("Most positive", ranked[-1]), ("Most negative", ranked[0])):
        display.line(f"{label}: {scores[index]:+.3f}  {_excerpt(reviews[index].text)}")

    signs = [sign(score) for score in scores]
    agree = batch.scores == scores
    total = len(reviews)
    display.line()
    display.line("Summary", style="bold")
    display.line(
        f"  reviews scored: {total} (positive {signs.count('positive')}, "
        f"negative {signs.count('negative')}, neutral {signs.count('neutral')})"
    )
    display.line(
        f"  one task per review: {per_review.tasks} {ANALYZE} tasks in "
        f"{per_review.seconds:.2f} s, {per_review.rate(per_review.tasks):,.0f} tasks/s"
    )
    display.line(
        f"  batches: {batch.tasks} {BATCH} tasks in chunks of {chunk_size}, {total} reviews "
        f"in {batch.seconds:.2f} s, {batch.rate(total):,.0f} reviews/s"
    )
    display.line(
        "  batch scores equal the per-review scores: " + ("yes" if agree else "NO"),
        style=None if agree else "bold red",
    )
    return agree
