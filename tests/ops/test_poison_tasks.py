"""A task that kills its worker process is failed after ``max_deliveries``, on every broker."""

from __future__ import annotations

from pathlib import Path

import pytest
from _opsapp import make_app
from _opstools import HERE, child_env, wait_until

from taskqueue_kit import TaskQueueSettings, TaskState, get_task_info
from taskqueue_kit.testing import subprocess_worker, unique_name


@pytest.mark.slow
def test_a_task_killing_its_pool_process_fails_after_max_deliveries(
    taskqueue_settings: TaskQueueSettings, tmp_path: Path
) -> None:
    """Late acks and re-delivery on worker loss (the production pair), max_deliveries=3:
    the poison task runs three times, then reads failed with DeliveryLimitExceeded, and the
    worker serves the tasks queued behind it meanwhile."""
    queue = unique_name("poison")
    runs = tmp_path / "runs.log"
    urls = {
        key: value
        for key, value in (
            ("broker_url", taskqueue_settings.broker_url),
            ("result_backend", taskqueue_settings.result_backend),
        )
        if value
    }
    home = taskqueue_settings.home
    app = make_app(queue, home=home, acks_late=True, max_deliveries=3, **urls)
    env = child_env(
        TASKQUEUE_HOME=str(home),
        TASKQUEUE_ACKS_LATE="true",
        TASKQUEUE_MAX_DELIVERIES="3",
        OPS_QUEUE=queue,
        OPS_RUNS_FILE=str(runs),
        **{f"TASKQUEUE_{key.upper()}": str(value) for key, value in urls.items()},
    )
    try:
        with subprocess_worker("_opsapp", queues=[queue], env=env, cwd=HERE):
            poison = app.tasks[f"{queue}:die"].delay()
            behind = [app.tasks[f"{queue}:add"].delay(n, n) for n in range(3)]
            assert [result.get(timeout=60) for result in behind] == [0, 2, 4]
            info = wait_until(
                lambda: (i := get_task_info(poison.id, app=app)).ready and i,
                timeout=60,
                what="the poison task to be failed",
            )
    finally:
        app.close()
    assert info.state is TaskState.FAILED
    assert info.error is not None
    assert info.error.type.endswith("DeliveryLimitExceeded")
    assert "max_deliveries=3" in info.error.message
    assert len(runs.read_text().splitlines()) == 3
