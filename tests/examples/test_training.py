"""The training example: accuracy reported truthfully, progress per fold, a JSON model file."""

from __future__ import annotations

import json

import pytest
from _exampletools import record_states, wait_until

from taskqueue_kit import TaskState, get_task_info
from taskqueue_kit.testing import run_worker


def _final(app, task_id):
    return wait_until(
        lambda: (info := get_task_info(task_id, app=app)).ready and info,
        timeout=30,
        what=f"task {task_id} to finish",
    )


def test_shipped_reviews_train_with_progress_per_fold(load_example, monkeypatch) -> None:
    """On the shipped reviews: 5 folds then the final model; the accuracy is the saved model's."""
    tasks = load_example("examples.training.tasks")
    from examples.training.model import NaiveBayes, split

    writes = record_states(monkeypatch, tasks.train)
    with run_worker(tasks.app):
        info = _final(tasks.app, tasks.train.delay(seed=3).id)

    assert info.state is TaskState.SUCCEEDED, info.error
    report = info.result
    examples = tasks.shipped_reviews()
    _, held_out = split(examples, 0.25, 3)
    saved = NaiveBayes.load(tasks.MODELS / "reviews.json")
    assert report["accuracy"] == saved.accuracy(held_out)
    assert report["train_size"] + report["test_size"] == len(examples) == 60
    assert report["classes"] == ["negative", "positive"]
    assert len(report["cross_validation"]) == 5
    assert all(0 <= score <= 1 for score in report["cross_validation"])
    assert report["vocabulary_size"] == len(saved.vocabulary) > 100
    assert json.loads((tasks.MODELS / "reviews.json").read_text())["class_counts"] == {
        "negative": report["train_size"] // 2,
        "positive": report["train_size"] // 2,
    }
    messages = [meta["message"] for state, meta in writes if state == "PROGRESS"]
    assert messages == [*(f"fold {n}/5" for n in range(1, 6)), "final model", "done"]
    assert [meta["current"] for _, meta in writes] == [0, 1, 2, 3, 4, 5, 6]


def test_a_separable_dataset_is_learnt_exactly(load_example) -> None:
    """A user's CSV with clearly separated classes: held-out accuracy 1.0 and sane predictions."""
    tasks = load_example("examples.training.tasks")
    from examples.training.model import NaiveBayes

    tasks.DATASETS.mkdir(parents=True)
    rows = ["label,text"]
    for n in range(12):
        rows.append(f'sport,"the team won the match {n} with a late goal"')
        rows.append(f'cooking,"simmer the sauce {n} and add garlic to the pan"')
    (tasks.DATASETS / "topics.csv").write_text("\n".join(rows) + "\n")
    with run_worker(tasks.app):
        info = _final(
            tasks.app, tasks.train.delay("topics.csv", "topics", folds_count=3, seed=1).id
        )

    assert info.state is TaskState.SUCCEEDED, info.error
    assert info.result["accuracy"] == 1.0
    assert info.result["cross_validation"] == [1.0, 1.0, 1.0]
    assert info.result["test_size"] == 6
    model = NaiveBayes.load(tasks.MODELS / "topics.json")
    assert model.predict("a goal in the last minute of the match") == "sport"
    assert model.predict("fry garlic in a pan") == "cooking"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dataset": "../results.sqlite3"}, "plain file names"),
        ({"model": "../../evil"}, "model names"),
        ({"folds_count": 1}, "folds must be"),
        ({"test_fraction": 1.5}, "test_fraction"),
    ],
)
def test_bad_arguments_fail_with_a_clear_error(load_example, kwargs, message) -> None:
    """Paths outside the data directory and impossible splits fail with a ValueError saying why."""
    tasks = load_example("examples.training.tasks")
    with pytest.raises(ValueError, match=message):
        tasks.train.run(**kwargs)


def test_sender_program_reports_accuracy_and_uses_the_model(load_example, capsys) -> None:
    """``python -m examples.training.send`` prints the accuracy and classifies with the model."""
    tasks = load_example("examples.training.tasks")
    from examples.training import send

    with run_worker(tasks.app):
        status = send.main(["--try", "great", "--timeout", "30"])

    out = capsys.readouterr().out
    assert status == 0, out
    assert "held-out accuracy" in out
    from examples.training.model import NaiveBayes

    expected = NaiveBayes.load(tasks.MODELS / "reviews.json").predict("great")
    assert out.splitlines()[-1].split() == [expected, "great"]
