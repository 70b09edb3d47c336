"""Autoscaling from the settings: a worker's pool grows under a burst and shrinks after it."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from _opsapp import make_app
from _opstools import HERE, child_env, wait_until

from taskqueue_kit.testing import resolve_broker, subprocess_worker, unique_name


def _pool_size(app: Any, worker: str) -> int | None:
    stats = app.control.inspect(timeout=2, destination=[worker], limit=1).stats() or {}
    processes = stats.get(worker, {}).get("pool", {}).get("processes")
    return None if processes is None else len(processes)


@pytest.mark.slow
@pytest.mark.parametrize("broker", ["sqlite", "redis"])
def test_pool_grows_under_a_burst_and_shrinks_after(
    tmp_path: Path, pytestconfig: pytest.Config, broker: str
) -> None:
    """``autoscale=(4, 1)``: one process idle, four under eight two-second tasks, one again
    after, and every task of the burst answered (the embedded broker drives the worker's
    event loop as Redis does, which Celery's autoscaler needs)."""
    queue = unique_name("ops")
    home = tmp_path / "tq"
    urls: dict[str, str] = {}
    if broker == "redis":
        urls["broker_url"] = str(resolve_broker(pytestconfig, "redis").broker_url)
    app = make_app(queue, home=home, autoscale=(4, 1), **urls)
    name = unique_name("autoscale")
    worker = f"{name}@{socket.gethostname()}"
    env = child_env(
        TASKQUEUE_HOME=str(home),
        TASKQUEUE_AUTOSCALE="[4, 1]",
        AUTOSCALE_KEEPALIVE="1",  # seconds idle before shrinking; Celery reads it at import
        OPS_QUEUE=queue,
        **({"TASKQUEUE_BROKER_URL": urls["broker_url"]} if urls else {}),
    )
    try:
        with subprocess_worker(
            "_opsapp", queues=[queue], env=env, cwd=HERE, extra_args=[f"--hostname={name}@%h"]
        ):
            idle = wait_until(
                lambda: _pool_size(app, worker), timeout=20, what="the worker's stats"
            )
            hold = app.tasks[f"{queue}:hold"]
            burst = [hold.delay(2.0) for _ in range(8)]
            wait_until(
                lambda: _pool_size(app, worker) == 4, timeout=30, what="the pool to grow to 4"
            )
            pids = {result.get(timeout=60) for result in burst}
            wait_until(
                lambda: _pool_size(app, worker) == 1, timeout=30, what="the pool to shrink to 1"
            )
    finally:
        app.close()

    assert idle == 1
    assert len(pids) > 1  # the burst ran in several processes at once
