"""The sentiment model: TextBlob's polarity, imported only when first needed.

TextBlob's default analyzer (the ``pattern`` lexicon shipped inside the package) needs no
corpus download, so nothing is fetched at run time. It is imported lazily: importing the
demo package, or a web process that only sends tasks, does not need TextBlob installed;
the worker that scores reviews does, and says which extra to install when it is missing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Literal

__all__ = [
    "MAX_REVIEW_CHARS",
    "Sign",
    "check_review",
    "load",
    "polarities",
    "polarity",
    "sign",
]

MAX_REVIEW_CHARS = 5_000
"""Longest review accepted, in characters: scoring time grows with length."""

Sign = Literal["positive", "negative", "neutral"]

_INSTALL_HINT = "the sentiment demo needs TextBlob: pip install 'taskqueue-kit[examples]'"
_lock = threading.Lock()
_scorer: Callable[[str], float] | None = None


def load() -> Callable[[str], float]:
    """Import TextBlob and load its lexicon once per process; return ``text -> polarity``.

    A worker calls this before forking its pool, so every pool process shares the loaded
    lexicon. The lock keeps two threads of a threaded pool from loading it twice.

    Raises:
        ImportError: TextBlob is not installed; the message names the extra to install.
        RuntimeError: the lexicon file is missing from the TextBlob installation.
    """
    global _scorer
    if _scorer is not None:
        return _scorer
    with _lock:
        if _scorer is None:
            try:
                # The same analyzer as TextBlob(text).sentiment (PatternAnalyzer), without
                # building a blob and a named tuple class per call.
                from textblob.en import sentiment
            except ImportError as exc:
                raise ImportError(_INSTALL_HINT) from exc
            if not sentiment("great")[0] > 0:
                raise RuntimeError(
                    "TextBlob's sentiment lexicon (en-sentiment.xml) is missing: reinstall textblob"
                )

            def score(text: str) -> float:
                return float(sentiment(text)[0])

            _scorer = score
    return _scorer


def check_review(review: object, where: str = "review") -> str:
    """The review as a string fit for scoring.

    Raises:
        TypeError: not a string.
        ValueError: empty, blank, or longer than :data:`MAX_REVIEW_CHARS`.
    """
    if not isinstance(review, str):
        raise TypeError(f"{where} must be a string, got {type(review).__name__}")
    if not review.strip():
        raise ValueError(f"{where} is empty")
    if len(review) > MAX_REVIEW_CHARS:
        raise ValueError(f"{where} has {len(review)} characters; the limit is {MAX_REVIEW_CHARS}")
    return review


def polarity(review: str) -> float:
    """Polarity of one review: -1.0 (negative) to 1.0 (positive), 0.0 when neutral.

    Raises:
        TypeError: not a string.
        ValueError: empty or too long (see :func:`check_review`).
    """
    return load()(check_review(review))


def polarities(reviews: Sequence[str]) -> list[float]:
    """Polarity of each review, in order; the reviews are checked before any is scored."""
    checked = [check_review(review, f"reviews[{index}]") for index, review in enumerate(reviews)]
    score = load()
    return [score(review) for review in checked]


def sign(score: float) -> Sign:
    """``positive`` above zero, ``negative`` below, ``neutral`` at exactly zero."""
    if score > 0:
        return "positive"
    if score < 0:
        return "negative"
    return "neutral"
