"""A multinomial naive Bayes text classifier in plain Python, saved as JSON.

Small on purpose: the example is about training in a task, not about the model. Word
counts per class with add-one smoothing; prediction picks the class with the highest
log-probability. Saved as JSON, never pickled, so loading a model file runs no code.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_WORD = re.compile(r"[a-z']+")
_NEGATIONS = frozenset({"not", "no", "never", "nothing", "don't", "didn't", "isn't", "wasn't"})

Example = tuple[str, str]
"""A labelled text: ``(label, text)``."""


def tokens(text: str) -> list[str]:
    """Lower-case words; a word right after a negation is marked (``not good`` → ``NOT_good``)."""
    words = _WORD.findall(text.lower())
    return [
        f"NOT_{word}" if index and words[index - 1] in _NEGATIONS else word
        for index, word in enumerate(words)
    ]


@dataclass
class NaiveBayes:
    """Word counts per class; fit once, then predict."""

    class_counts: Counter[str] = field(default_factory=Counter)
    word_counts: dict[str, Counter[str]] = field(default_factory=dict)

    def fit(self, examples: Sequence[Example]) -> NaiveBayes:
        """Count words per class; returns ``self``.

        Raises:
            ValueError: no examples, or only one class.
        """
        for label, text in examples:
            self.class_counts[label] += 1
            self.word_counts.setdefault(label, Counter()).update(tokens(text))
        if len(self.class_counts) < 2:
            raise ValueError(
                f"need examples of at least two classes, got {dict(self.class_counts)}"
            )
        return self

    @property
    def vocabulary(self) -> set[str]:
        """Every word seen in training."""
        return set().union(*self.word_counts.values())

    def predict(self, text: str) -> str:
        """The most probable class of ``text``."""
        vocabulary_size = len(self.vocabulary)
        documents = sum(self.class_counts.values())
        words = tokens(text)

        def score(label: str) -> float:
            counts = self.word_counts[label]
            denominator = sum(counts.values()) + vocabulary_size
            prior = math.log(self.class_counts[label] / documents)
            return prior + sum(math.log((counts[word] + 1) / denominator) for word in words)

        return max(sorted(self.class_counts), key=score)

    def accuracy(self, examples: Sequence[Example]) -> float:
        """Share of ``examples`` whose label is predicted, in ``[0, 1]``."""
        if not examples:
            raise ValueError("accuracy of no examples is undefined")
        return sum(self.predict(text) == label for label, text in examples) / len(examples)

    def save(self, path: Path) -> None:
        """Write the model as JSON."""
        data = {
            "class_counts": dict(self.class_counts),
            "word_counts": {label: dict(counts) for label, counts in self.word_counts.items()},
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, sort_keys=True), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> NaiveBayes:
        """Read a model written by :meth:`save`."""
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return cls(
            class_counts=Counter(data["class_counts"]),
            word_counts={label: Counter(c) for label, c in data["word_counts"].items()},
        )


def split(
    examples: Sequence[Example], test_fraction: float, seed: int
) -> tuple[list[Example], list[Example]]:
    """Shuffle (reproducibly) and split into training and held-out examples, per class.

    Splitting each class separately keeps the classes' shares equal in both parts.

    Raises:
        ValueError: ``test_fraction`` outside ``(0, 1)``, or a class too small to split.
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be between 0 and 1, got {test_fraction!r}")
    rng = random.Random(seed)
    train: list[Example] = []
    test: list[Example] = []
    for label in sorted({label for label, _ in examples}):
        group = [example for example in examples if example[0] == label]
        rng.shuffle(group)
        held_out = round(len(group) * test_fraction)
        if not 0 < held_out < len(group):
            raise ValueError(f"class {label!r} has too few examples ({len(group)}) to split")
        test.extend(group[:held_out])
        train.extend(group[held_out:])
    rng.shuffle(train)
    return train, test


def folds(examples: Sequence[Example], count: int) -> list[tuple[list[Example], list[Example]]]:
    """``count`` (train, validation) pairs for cross-validation; each example validates once.

    Raises:
        ValueError: fewer than two folds, or more folds than examples.
    """
    if not 2 <= count <= len(examples):
        raise ValueError(f"folds must be in [2, {len(examples)}], got {count}")
    parts = [list(examples[index::count]) for index in range(count)]
    return [
        ([example for other, part in enumerate(parts) if other != index for example in part], held)
        for index, held in enumerate(parts)
    ]
