"""The sentiment model and tasks, through a real worker: signs, accuracy, chunks, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import pytest
from celery import Celery, group

from taskqueue_kit import TaskState, get_task_info
from taskqueue_kit.demo import model
from taskqueue_kit.demo.reviews import labelled_reviews, sample_reviews
from taskqueue_kit.demo.tasks import ANALYZE, BATCH, MAX_CHUNK_SIZE, progress_message

CLEARLY_NEGATIVE = [
    "This is the worst phone I have ever owned. Terrible battery and awful support.",
    "The food was cold, the waiter was rude and the bill was outrageous.",
    "Boring, badly written and far too long. I regret buying it.",
    "Cheap plastic junk that broke on the first day. Horrible.",
]
CLEARLY_POSITIVE = [
    "Absolutely wonderful hotel, friendly staff and a beautiful view.",
    "The best headphones I have bought: excellent sound and very comfortable.",
    "A delightful, funny film. We loved every minute.",
    "Great value, works perfectly and arrived quickly. Highly recommended!",
]


def _score(app: Celery, review: str) -> float:
    return float(app.tasks[ANALYZE].delay(review).get(timeout=30))


@pytest.mark.parametrize("review", CLEARLY_NEGATIVE)
def test_clearly_negative_reviews_score_below_zero(demo_app: Celery, review: str) -> None:
    """A clearly negative review comes back from polarity:analyze below 0."""
    assert _score(demo_app, review) < 0


@pytest.mark.parametrize("review", CLEARLY_POSITIVE)
def test_clearly_positive_reviews_score_above_zero(demo_app: Celery, review: str) -> None:
    """A clearly positive review comes back from polarity:analyze above 0."""
    assert _score(demo_app, review) > 0


def test_labelled_reviews_reach_85_percent_sign_accuracy(demo_app: Celery) -> None:
    """polarity:batch gets the sign of the 60 labelled reviews right at least 85% of the time."""
    labelled = labelled_reviews()
    scores = demo_app.tasks[BATCH].delay([item.text for item in labelled], 7).get(timeout=60)
    assert len(scores) == len(labelled)
    right = sum(
        model.sign(score) == item.expected for item, score in zip(labelled, scores, strict=True)
    )
    assert right / len(labelled) >= 0.85, f"{right} of {len(labelled)} signs right"


def test_batch_scores_equal_one_task_per_review(demo_app: Celery) -> None:
    """polarity:batch, in chunks, returns exactly what polarity:analyze gives review by review."""
    texts = [review.text for review in sample_reviews()[:40]]
    task = demo_app.tasks[ANALYZE]
    singles = group(task.s(text) for text in texts).apply_async().get(timeout=60)
    batched = demo_app.tasks[BATCH].delay(texts, 6).get(timeout=60)
    assert batched == singles
    assert all(isinstance(score, float) and -1.0 <= score <= 1.0 for score in batched)


def test_batch_reports_progress_after_chunks(demo_app: Celery) -> None:
    """A long batch shows PROGRESS at chunk boundaries before it succeeds with every score."""
    texts = [review.text for review in sample_reviews()] * 20  # 4,800 reviews
    result = demo_app.tasks[BATCH].delay(texts, 200)
    seen: set[float] = set()
    deadline = time.monotonic() + 120
    info = get_task_info(result.id, app=demo_app)
    while not info.ready:
        assert time.monotonic() < deadline, "the batch did not finish"
        if info.progress is not None:
            seen.add(info.progress.current)
        time.sleep(0.005)
        info = get_task_info(result.id, app=demo_app)
    assert info.state is TaskState.SUCCEEDED
    assert isinstance(info.result, list)
    assert len(info.result) == len(texts)
    middle = {current for current in seen if 0 < current < len(texts)}
    assert middle, f"no progress seen between start and end: {sorted(seen)}"
    assert all(current % 200 == 0 for current in middle), sorted(middle)


def test_progress_messages_carry_the_new_scores(demo_app: Celery) -> None:
    """A paced batch's progress messages hold its scores as they come, each at its index."""
    texts = [review.text for review in sample_reviews()[:30]]
    result = demo_app.tasks[BATCH].delay(texts, 1, 0.02)  # 0.6 s in all
    messages: list[dict[str, Any]] = []
    deadline = time.monotonic() + 60
    info = get_task_info(result.id, app=demo_app)
    while not info.ready:
        assert time.monotonic() < deadline, "the batch did not finish"
        if info.progress is not None and info.progress.message is not None:
            message = json.loads(info.progress.message)
            if not messages or message != messages[-1]:
                messages.append(message)
        time.sleep(0.005)
        info = get_task_info(result.id, app=demo_app)
    assert info.state is TaskState.SUCCEEDED
    scores = info.result
    assert isinstance(scores, list)
    carried = [m for m in messages if m["scores"]]
    assert len(carried) >= 3, messages  # the scores arrive in steps, not all at the end
    firsts = [m["first"] for m in carried]
    assert firsts == sorted(firsts)
    for message in carried:
        first = message["first"]
        assert isinstance(first, int)
        assert message["scores"] == [
            round(s, 4) for s in scores[first : first + len(message["scores"])]
        ]
        assert message["text"] == f"scored {first + len(message['scores'])} of 30 reviews"


def test_progress_message_is_json_with_words_first() -> None:
    """progress_message: the words, the index of the first new score, scores to four places."""
    message = progress_message("scored 2 of 9 reviews", 7, [0.123456, -1.0])
    assert message == '{"text": "scored 2 of 9 reviews", "first": 7, "scores": [0.1235, -1.0]}'


@pytest.mark.parametrize(
    ("name", "args", "error"),
    [
        (ANALYZE, ("   ",), "ValueError"),
        (ANALYZE, ("x" * (model.MAX_REVIEW_CHARS + 1),), "ValueError"),
        (BATCH, (["fine", 42],), "TypeError"),
        (BATCH, ([],), "ValueError"),
        (BATCH, (["fine"], MAX_CHUNK_SIZE + 1), "ValueError"),
        (BATCH, (["fine"], 1, 1.5), "ValueError"),
        (BATCH, (["fine"] * 200, 1, 0.5), "ValueError"),  # 100 s of pacing; the limit is 60
        (BATCH, (["fine"], 1, "slow"), "TypeError"),
    ],
)
def test_bad_input_fails_at_once_without_retries(
    demo_app: Celery, name: str, args: tuple[object, ...], error: str
) -> None:
    """Blank, oversized or non-string reviews, bad chunk sizes or paces fail at the first try."""
    result = demo_app.tasks[name].apply_async(args=args)
    deadline = time.monotonic() + 30
    info = get_task_info(result.id, app=demo_app)
    while not info.ready:
        assert info.state is not TaskState.RETRYING, "a bad review must not be retried"
        assert time.monotonic() < deadline, f"stayed {info.state}"
        time.sleep(0.02)
        info = get_task_info(result.id, app=demo_app)
    assert info.state is TaskState.FAILED
    assert info.error is not None
    assert info.error.type == error
    assert info.retries == 0


def test_an_os_error_is_retried_with_backoff(
    demo_app: Celery, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An OSError while scoring (the lexicon read) is retried, and the retry succeeds."""
    real = model.load()
    calls: list[str] = []

    def flaky(text: str) -> float:
        calls.append(text)
        if len(calls) == 1:
            raise OSError("lexicon file busy")
        return real(text)

    monkeypatch.setattr(model, "_scorer", flaky)
    result = demo_app.tasks[ANALYZE].delay("A lovely, quiet hotel.")
    assert result.get(timeout=30) > 0
    assert len(calls) == 2
    assert get_task_info(result.id, app=demo_app).retries == 1


def test_polarity_is_textblobs_polarity() -> None:
    """model.polarity is exactly TextBlob(text).sentiment.polarity, the original service's model."""
    from textblob import TextBlob

    for item in labelled_reviews():
        assert model.polarity(item.text) == TextBlob(item.text).sentiment.polarity


def test_missing_textblob_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without TextBlob, scoring raises ImportError naming taskqueue-kit[examples]."""
    monkeypatch.setattr(model, "_scorer", None)
    monkeypatch.setitem(sys.modules, "textblob", None)
    monkeypatch.setitem(sys.modules, "textblob.en", None)
    with pytest.raises(ImportError, match=r"taskqueue-kit\[examples\]"):
        model.polarity("fine")


def test_textblob_is_lazy_and_fetches_nothing() -> None:
    """Importing the tasks loads no TextBlob; scoring then needs no download and no network."""
    code = """
import socket, sys
import taskqueue_kit.demo.tasks, taskqueue_kit.demo.celery_app, taskqueue_kit.demo.reviews
assert "textblob" not in sys.modules, "textblob imported eagerly"
assert "fastapi" not in sys.modules and "flask" not in sys.modules
def refuse(*args, **kwargs):
    raise AssertionError("network used")
socket.socket.connect = refuse
socket.create_connection = refuse
import nltk
nltk.download = refuse
from taskqueue_kit.demo import model
assert model.polarity("What a great, lovely day") > 0
print("ok")
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_shipped_review_sets() -> None:
    """At least 200 distinct sample reviews and 50 labelled ones of both signs, no overlap."""
    samples = [review.text for review in sample_reviews()]
    labelled = labelled_reviews()
    assert len(samples) >= 200
    assert len(set(samples)) == len(samples)
    assert len(labelled) >= 50
    assert {item.expected for item in labelled} == {"positive", "negative"}
    assert not set(samples) & {item.text for item in labelled}
    assert all(0 < len(text) <= model.MAX_REVIEW_CHARS for text in samples)
