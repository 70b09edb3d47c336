"""Counting the redeliveries of a task in the result backend (see tests/ops for the worker)."""

from __future__ import annotations

import uuid

import pytest
from celery import Celery
from celery.utils.objects import Bunch

from taskqueue_kit import TaskQueueSettings, celery_config
from taskqueue_kit._deliveries import MAX_DELIVERIES_KEY, count_redelivery, forget, redelivered

pytestmark = pytest.mark.compat


def test_only_a_delivery_the_broker_marked_is_a_redelivery() -> None:
    """The broker's redelivered flag decides; a request without delivery info is a first one."""
    assert redelivered(Bunch(delivery_info={"redelivered": True})) is True
    assert redelivered(Bunch(delivery_info={"redelivered": False})) is False
    assert redelivered(Bunch(delivery_info=None)) is False
    assert redelivered(Bunch()) is False


def test_counts_grow_per_task_and_forget_starts_again(taskqueue_app: Celery) -> None:
    """Each redelivery adds one (the first delivery is not counted), per task id."""
    first, other = str(uuid.uuid4()), str(uuid.uuid4())
    assert count_redelivery(taskqueue_app, first) == 2
    assert count_redelivery(taskqueue_app, first) == 3
    assert count_redelivery(taskqueue_app, other) == 2
    forget(taskqueue_app, first)
    assert count_redelivery(taskqueue_app, first) == 2


def test_a_backend_that_is_not_a_key_value_store_keeps_no_count() -> None:
    """No count, no bound: the task runs as in plain Celery."""
    app = Celery("nobackend", set_as_current=False)
    assert count_redelivery(app, str(uuid.uuid4())) is None
    forget(app, "anything")  # nothing to clear, and no error


def test_the_bound_comes_from_the_settings() -> None:
    """max_deliveries reaches the app's configuration; None switches the bound off."""
    assert celery_config(TaskQueueSettings())[MAX_DELIVERIES_KEY] == 5
    assert celery_config(TaskQueueSettings(max_deliveries=None))[MAX_DELIVERIES_KEY] is None
    with pytest.raises(ValueError, match="max_deliveries"):
        TaskQueueSettings(max_deliveries=0)
