"""The reviews shipped with the demo, read from CSV files inside the package.

``sample_reviews.csv``: 240 product, restaurant, hotel, book, film and service reviews in
15 categories, the demo's workload. ``labelled_reviews.csv``: 60 other reviews, 30 clearly
positive and 30 clearly negative, the yardstick the tests hold the model to. Both were
written for this project; neither was tuned to what TextBlob gets right.
"""

from __future__ import annotations

import csv
import io
import itertools
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Literal

__all__ = ["LabelledReview", "Review", "cycle", "labelled_reviews", "sample_reviews"]

_DATA = files("taskqueue_kit.demo") / "data"
_LABELS: dict[str, Literal["positive", "negative"]] = {
    "positive": "positive",
    "negative": "negative",
}


@dataclass(frozen=True)
class Review:
    """One sample review.

    Attributes:
        category: What was reviewed (``electronics``, ``hotels``, ...).
        text: The review.
    """

    category: str
    text: str


@dataclass(frozen=True)
class LabelledReview:
    """A review whose sign a person decided.

    Attributes:
        expected: ``positive`` or ``negative``.
        text: The review.
    """

    expected: Literal["positive", "negative"]
    text: str


def _rows(name: str, columns: tuple[str, str]) -> list[dict[str, str]]:
    text = (_DATA / name).read_text(encoding="utf-8")
    reader = csv.DictReader(io.StringIO(text))
    if tuple(reader.fieldnames or ()) != columns:
        raise ValueError(f"{name}: expected columns {columns}, found {reader.fieldnames}")
    return list(reader)


@cache
def sample_reviews() -> tuple[Review, ...]:
    """The demo's 240 sample reviews, in file order."""
    return tuple(
        Review(category=row["category"], text=row["review"])
        for row in _rows("sample_reviews.csv", ("category", "review"))
    )


@cache
def labelled_reviews() -> tuple[LabelledReview, ...]:
    """The 60 labelled reviews, for measuring the model's sign accuracy."""
    labelled: list[LabelledReview] = []
    for row in _rows("labelled_reviews.csv", ("expected", "review")):
        expected = _LABELS.get(row["expected"])
        if expected is None:
            raise ValueError(f"labelled_reviews.csv: unknown label {row['expected']!r}")
        labelled.append(LabelledReview(expected=expected, text=row["review"]))
    return tuple(labelled)


def cycle(count: int) -> list[Review]:
    """``count`` sample reviews, starting over from the first when the file runs out.

    Raises:
        ValueError: ``count`` below 1.
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    return list(itertools.islice(itertools.cycle(sample_reviews()), count))
