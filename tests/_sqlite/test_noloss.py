"""End to end with worker processes: nothing lost, nothing doubled, SIGKILL recovered."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from .conftest import run_helper, sql

pytestmark = pytest.mark.slow

SENDERS = 4
PER_SENDER = 500


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def done_tokens(home: Path) -> list[str]:
    path = home / "done.log"
    return path.read_text().splitlines() if path.exists() else []


def broker_rows(home: Path) -> int:
    return int(sql(home / "broker.sqlite3", "SELECT COUNT(*) FROM messages")[0][0])


def wait_for_workers(app: Celery, names: set[str]) -> None:
    """Wait until every named worker answers a remote-control ping over the broker."""

    def all_answer() -> bool:
        replies = app.control.ping(timeout=0.5)
        return {name for reply in replies for name in reply} >= names

    wait_until(all_answer, 30, f"pings from {sorted(names)}")


def test_no_loss_no_duplicates_with_concurrent_senders_and_workers(
    app: Celery, home: Path, start_worker_process: Callable[..., object]
) -> None:
    """4 sender processes x 500 tasks, 2 worker processes: every task runs exactly once."""
    host = os.uname().nodename
    start_worker_process("solo", pool="solo")
    start_worker_process("prefork", pool="prefork")  # acks from the pool's result thread
    wait_for_workers(app, {f"solo@{host}", f"prefork@{host}"})
    senders = [run_helper("send", str(home), f"s{n}", str(PER_SENDER)) for n in range(SENDERS)]
    assert [p.wait(timeout=60) for p in senders] == [0] * SENDERS
    total = SENDERS * PER_SENDER
    wait_until(lambda: len(done_tokens(home)) >= total, 60, f"{total} tasks to run")
    wait_until(lambda: broker_rows(home) == 0, 30, "every message to be acked")
    tokens = done_tokens(home)
    assert len(tokens) == total
    assert set(tokens) == {f"s{s}-{n}" for s in range(SENDERS) for n in range(PER_SENDER)}
    stored = sql(home / "results.sqlite3", "SELECT COUNT(*) FROM results WHERE status = 'SUCCESS'")
    assert stored == [(total,)]


def test_task_of_sigkilled_worker_runs_on_another(
    app: Celery, home: Path, start_worker_process: Callable[..., object]
) -> None:
    """With acks_late, a task whose worker is SIGKILLed mid-run is redelivered and completes."""
    doomed = start_worker_process("doomed")
    result = app.tasks["tq.block_once"].delay("victim")
    started = home / "victim.started"
    wait_until(started.exists, 30, "the task to start")
    os.kill(doomed.pid, signal.SIGKILL)  # type: ignore[attr-defined]
    doomed.wait()  # type: ignore[attr-defined]
    start_worker_process("rescuer")
    assert result.get(timeout=30) != int(started.read_text())  # ran again, in another process
    assert done_tokens(home) == ["victim"]


ROUNDS = 20


def test_default_profile_loses_nothing_when_workers_are_sigkilled_mid_task(
    home: Path, start_worker_process: Callable[..., Any]
) -> None:
    """The kit's default settings, 20 rounds of SIGKILL mid-task: every task completes and
    none reads ``started`` at the end (the embedded broker acks late by default)."""
    from taskqueue_kit import TaskState, get_task_info

    from .workerapp import make_kit_app

    sender = make_kit_app(home)
    results = [sender.tasks["tq.block_once"].delay(f"t{n}") for n in range(ROUNDS)]
    for n in range(ROUNDS):
        worker = start_worker_process(f"w{n}", pool="solo", module="_sqlite.workerapp:kit_app")
        started = home / f"t{n}.started"
        wait_until(started.exists, 30, f"task t{n} to start")
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
    start_worker_process("last", pool="solo", module="_sqlite.workerapp:kit_app")
    values = [result.get(timeout=60) for result in results]
    assert len(values) == ROUNDS
    assert sorted(done_tokens(home)) == sorted(f"t{n}" for n in range(ROUNDS))
    states = {get_task_info(r.id, app=sender).state for r in results}
    assert states == {TaskState.SUCCEEDED}
    sender.close()


@pytest.mark.parametrize("acks", ["early", "late"])
@pytest.mark.parametrize("pool", ["prefork", "threads"])
def test_revokes_and_pings_reach_a_worker_whose_pool_is_busy(
    app: Celery, home: Path, start_worker_process: Callable[..., Any], pool: str, acks: str
) -> None:
    """One pool slot busy with a long task, four short ones queued and revoked: the worker
    answers pings meanwhile, and none of the four ever runs (the transport delivers from the
    worker's event loop, so control messages are read while the pool is busy)."""
    host = os.uname().nodename
    start_worker_process("busy", pool=pool, TQ_ACKS_EARLY="1" if acks == "early" else "")
    wait_for_workers(app, {f"busy@{host}"})
    long = app.tasks["tq.sleep"].delay("long", 3)
    wait_until((home / "long.started").exists, 30, "the long task to start")
    shorts = [app.tasks["tq.record"].delay(f"short-{n}") for n in range(4)]
    for result in shorts:
        result.revoke()
    replies = app.control.ping(timeout=2)
    assert f"busy@{host}" in {name for reply in replies for name in reply}
    assert long.get(timeout=30) == "long"
    wait_until(lambda: broker_rows(home) == 0, 30, "the revoked messages to be consumed")
    assert done_tokens(home) == ["long"]
    assert [result.state for result in shorts] == ["REVOKED"] * 4
