"""Prompt acks: a thread-pool worker takes its next message as soon as a slot frees up.

Before Celery 5.7 a pool thread's ack waited for the worker loop's next turn (up to 2 s on
the embedded broker, about 1 s on Redis and RabbitMQ), so with one prefetch slot per thread
a worker started after its queue filled up ran one task per turn: 40 tasks took a minute or
more. With the kit's bootstep, and the embedded transport's early return, they take well
under a second; the bound of 30 s below only separates the two.
"""

from __future__ import annotations

import pytest
from celery import Celery

from taskqueue_kit._prompt_acks import PromptAcks, needed
from taskqueue_kit.testing import run_worker

pytestmark = pytest.mark.compat


def test_needed_before_celery_5_7_only() -> None:
    """The workaround is for the Celery minors that defer acks; 5.7 and later have the fix."""
    assert needed("5.5.3")
    assert needed("5.6.3")
    assert not needed("5.7.0")
    assert not needed("5.7.0rc1")
    assert not needed("6.0.0")


def test_every_kit_app_has_the_step(taskqueue_app: Celery) -> None:
    """init_celery adds the bootstep to the app's worker consumer, through app.steps."""
    assert PromptAcks in taskqueue_app.steps["consumer"]


@pytest.mark.parametrize("acks_late", [False, True], ids=["acks-early", "acks-late"])
def test_a_full_queue_drains_one_slot_at_a_time_without_stalls(
    taskqueue_app: Celery, acks_late: bool
) -> None:
    """40 tasks queued before the worker starts all run, in either ack mode."""
    taskqueue_app.conf.task_acks_late = acks_late

    @taskqueue_app.task(name="prompt.double", shared=False)
    def double(x: int) -> int:
        return 2 * x

    results = [double.delay(i) for i in range(40)]
    with run_worker(taskqueue_app, concurrency=2) as worker:
        values = [result.get(timeout=30) for result in results]
        steps = [s for s in worker.consumer.steps if isinstance(s, PromptAcks)]
        active = [s._entry is not None for s in steps]
        has_loop = worker.consumer.hub is not None
    assert values == [2 * i for i in range(40)]
    # Active only where it is needed: Celery before 5.7, on a broker with an event loop.
    assert active == [needed() and has_loop]
