"""Offline model training: a review classifier trained in a task, with progress per fold.

Worker: ``celery -A examples.training.tasks worker -Q training --loglevel=INFO``.
Sender: ``python -m examples.training.send``.

The task trains a naive Bayes classifier (:mod:`examples.training.model`) on the labelled
reviews shipped with the kit (``taskqueue_kit.demo.reviews``) or on a CSV in
``$TASKQUEUE_HOME/datasets``, cross-validates it on the training part, measures it on a
held-out part, saves it as JSON in ``$TASKQUEUE_HOME/models`` and returns the accuracy.
The web process loads the saved model to classify; it never trains.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

from examples.training.model import Example, NaiveBayes, folds, split
from taskqueue_kit import TaskQueueSettings, create_celery, report_progress

QUEUE = "training"

settings = TaskQueueSettings(queues=(QUEUE,))
app = create_celery(settings, main="examples.training")

DATASETS = settings.home.resolve() / "datasets"
MODELS = settings.home.resolve() / "models"

_MODEL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def shipped_reviews() -> list[Example]:
    """The 60 labelled reviews (30 positive, 30 negative) that ship with the kit."""
    from taskqueue_kit.demo.reviews import labelled_reviews

    return [(review.expected, review.text) for review in labelled_reviews()]


def read_dataset(name: str) -> list[Example]:
    """A CSV with columns ``label`` and ``text`` from the datasets directory.

    Raises:
        ValueError: not a plain file name, wrong columns, or an empty label or text.
    """
    path = DATASETS / name
    if not name or Path(name).name != name or path.resolve().parent != DATASETS:
        raise ValueError(f"dataset names are plain file names, got {name!r}")
    with path.open(newline="", encoding="utf-8") as file:
        reader = csv.DictReader(file)
        if reader.fieldnames != ["label", "text"]:
            raise ValueError(f"{name}: expected columns label,text; found {reader.fieldnames}")
        rows = [(row["label"].strip(), row["text"]) for row in reader]
    for line, (label, text) in enumerate(rows, start=2):
        if not label or not text.strip():
            raise ValueError(f"{name}, line {line}: empty label or text")
    return rows


def model_path(name: str) -> Path:
    """Where the model called ``name`` is saved.

    Raises:
        ValueError: a name other than letters, digits, ``-`` and ``_``.
    """
    if not _MODEL_NAME.match(name):
        raise ValueError(f"model names are 1-64 letters, digits, '-' or '_', got {name!r}")
    return MODELS / f"{name}.json"


@app.task(bind=True, name="training:fit", shared=False)
def train(
    self: Any,
    dataset: str | None = None,
    model: str = "reviews",
    folds_count: int = 5,
    test_fraction: float = 0.25,
    seed: int = 0,
) -> dict[str, Any]:
    """Cross-validate, fit on the training part, measure on the held-out part, save.

    Args:
        self: The task.
        dataset: A CSV in the datasets directory; the shipped reviews when omitted.
        model: Name of the saved model.
        folds_count: Cross-validation folds over the training part.
        test_fraction: Share of each class held out for the final accuracy.
        seed: Seed of the shuffle, so a run can be repeated exactly.

    Returns:
        ``accuracy`` on the held-out part, ``cross_validation`` (one accuracy per fold),
        sizes, the vocabulary size and the saved model's file name.
    """
    target = model_path(model)
    examples = shipped_reviews() if dataset is None else read_dataset(dataset)
    training, held_out = split(examples, test_fraction, seed)
    pairs = folds(training, folds_count)
    steps = len(pairs) + 1  # the folds, then the final model
    scores = []
    for index, (fold_train, fold_check) in enumerate(pairs):
        report_progress(self, index, steps, f"fold {index + 1}/{len(pairs)}")
        scores.append(NaiveBayes().fit(fold_train).accuracy(fold_check))
    report_progress(self, len(pairs), steps, "final model")
    classifier = NaiveBayes().fit(training)
    accuracy = classifier.accuracy(held_out)
    classifier.save(target)
    report_progress(self, steps, steps, "done")
    return {
        "accuracy": accuracy,
        "cross_validation": scores,
        "train_size": len(training),
        "test_size": len(held_out),
        "classes": sorted(classifier.class_counts),
        "vocabulary_size": len(classifier.vocabulary),
        "model": target.name,
    }
