"""Flower on the kit's settings: a finished task read back from Flower's HTTP API."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from _opsapp import make_app
from _opstools import HERE, child_env, free_port, wait_until

from taskqueue_kit.testing import run_worker, unique_name


def _get(client: httpx.Client, path: str, **params: str) -> httpx.Response | None:
    try:
        return client.get(path, params=params)
    except httpx.TransportError:  # Flower still starting
        return None


@pytest.mark.slow
def test_flower_reports_a_task_from_events_the_settings_turned_on(tmp_path: Path) -> None:
    """With ``send_events=True`` and Flower's own switch off, Flower's API shows the task done."""
    queue = unique_name("ops")
    home = tmp_path / "tq"
    app = make_app(queue, home=home, send_events=True)
    port = free_port()
    log = tmp_path / "flower.log"
    env = child_env(TASKQUEUE_HOME=str(home), TASKQUEUE_SEND_EVENTS="true", OPS_QUEUE=queue)
    command = [
        sys.executable, "-m", "celery", "-A", "_opsapp", "flower",
        f"--port={port}", "--address=127.0.0.1", "--basic-auth=ops:secret",
        # Flower would otherwise turn task events on remotely; this test is about the setting.
        "--enable-events=False",
    ]  # fmt: skip
    with log.open("wb") as sink:
        flower = subprocess.Popen(command, cwd=HERE, env=env, stdout=sink, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        with run_worker(app), httpx.Client(base_url=base, auth=("ops", "secret")) as client:
            # Flower learns of workers from their heartbeat events: once it lists ours as
            # alive, its event consumer is in place and will see the task's events.
            alive = wait_until(
                lambda: (
                    (r := _get(client, "/api/workers", status="true")) is not None
                    and r.status_code == 200
                    and [name for name, up in r.json().items() if up]
                ),
                timeout=30,
                what=f"Flower to see the worker alive\n{log.read_text(errors='replace')[-2000:]}",
            )
            result = app.tasks[f"{queue}:add"].delay(2, 3)
            assert result.get(timeout=20) == 5
            task = wait_until(
                lambda: (
                    (r := _get(client, f"/api/task/info/{result.id}")) is not None
                    and r.status_code == 200
                    and r.json().get("state") == "SUCCESS"
                    and r.json()
                ),
                timeout=20,
                what="Flower to report the task succeeded",
            )
            anonymous = httpx.get(f"{base}/api/task/info/{result.id}")
    finally:
        flower.terminate()
        flower.wait(timeout=15)

    assert task["uuid"] == result.id
    assert task["name"] == f"{queue}:add"
    assert task["result"] == "5"
    assert task["worker"] == alive[0]
    assert task["sent"] is not None  # task_send_sent_event: the sender's event, too
    assert anonymous.status_code == 401
