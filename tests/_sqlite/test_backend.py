"""The embedded result backend: JSON only, groups, expiry, dedup, and waiting on the waker."""

from __future__ import annotations

import json
import os
import pickle
import threading
import time
from pathlib import Path

import pytest
from celery import Celery, chord, group, states
from celery.contrib.testing.worker import start_worker
from celery.result import AsyncResult, GroupResult

from taskqueue_kit._exceptions import ResultDecodeError
from taskqueue_kit._sqlite.backend import SQLiteBackend

from .conftest import sql
from .workerapp import make_app


class RunsShell:
    """Unpickling this runs a shell command: the forged record an attacker would write."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, ...]:
        return (os.system, (f"touch {self.marker}",))


def backend_of(app: Celery) -> SQLiteBackend:
    backend = app.backend
    assert isinstance(backend, SQLiteBackend)
    return backend


def write_raw(home: Path, task_id: str, value: object) -> None:
    """Write a record straight into the results table, bypassing the backend."""
    sql(
        home / "results.sqlite3",
        "INSERT OR REPLACE INTO results (key, value, updated) VALUES (?, ?, ?)",
        f"celery-task-meta-{task_id}",
        value,
        time.time(),
    )


def test_round_trip_through_worker_with_extended_meta(app: Celery) -> None:
    """A task's result comes back through a real worker; meta holds name, queue, not the args."""
    with start_worker(app, perform_ping_check=False):
        result = app.tasks["tq.echo"].delay({"x": [1, 2]})
        assert result.get(timeout=10) == {"x": [1, 2]}
    meta = backend_of(app).read_meta(result.id)
    assert meta is not None
    assert meta["status"] == states.SUCCESS
    assert (meta["name"], meta["args"], meta["kwargs"]) == ("tq.echo", None, None)
    assert (meta["queue"], meta["retries"]) == ("celery", 0)
    assert meta["worker"]  # Celery stores the host name here


def test_chord_and_native_join_complete(app: Celery) -> None:
    """A chord finishes through the backend's atomic counter, and a group joins natively."""
    with start_worker(app, perform_ping_check=False):
        echo, total = app.tasks["tq.echo"], app.tasks["tq.total"]
        assert chord(echo.s(n) for n in range(4))(total.s()).get(timeout=10) == 6
        joined = group(echo.s(n) for n in range(3)).apply_async().join_native(timeout=10)
        assert joined == [0, 1, 2]


@pytest.mark.parametrize(
    "forged",
    [
        pytest.param("blob", id="pickle-blob"),
        pytest.param("text", id="pickle-protocol-0-text"),
        pytest.param("[1, 2]", id="json-not-an-object"),
        pytest.param('{"status": 3}', id="json-without-a-state"),
    ],
)
def test_forged_record_is_reported_never_decoded(
    app: Celery, home: Path, tmp_path: Path, forged: str
) -> None:
    """A non-JSON or non-object record raises ResultDecodeError naming the task; nothing runs."""
    marker = tmp_path / "pwned"
    payload: object = {
        "blob": pickle.dumps(RunsShell(marker)),
        "text": pickle.dumps(RunsShell(marker), protocol=0).decode("latin-1"),
    }.get(forged, forged)
    backend = backend_of(app)
    backend.add_meta_if_absent("creates-the-table", {"status": "SENT"})
    write_raw(home, "forged-id", payload)
    if forged != '{"status": 3}':  # read_meta is raw: a JSON object without a state is fine
        with pytest.raises(ResultDecodeError, match="forged-id"):
            backend.read_meta("forged-id")
    with pytest.raises(ResultDecodeError, match="forged-id"):
        _ = AsyncResult("forged-id", app=app).state
    assert not marker.exists()


def test_results_are_json_whatever_the_configured_serializer(home: Path) -> None:
    """Even with result_serializer='pickle', records are stored and read as JSON text."""
    app = make_app(home, result_serializer="pickle", result_accept_content=["pickle", "json"])
    backend = backend_of(app)
    assert backend.serializer == "json"
    backend.store_result("t1", {"n": 1}, states.SUCCESS)
    [(raw,)] = sql(home / "results.sqlite3", "SELECT value FROM results WHERE key LIKE '%-t1'")
    assert json.loads(raw)["result"] == {"n": 1}
    assert AsyncResult("t1", app=app).result == {"n": 1}


def test_read_meta_keeps_json_values_raw(app: Celery) -> None:
    """read_meta returns plain JSON: a failure stays a dict, not a rebuilt exception."""
    backend = backend_of(app)
    assert backend.read_meta("never-sent") is None
    backend.mark_as_failure("failed", ValueError("bad input"))
    meta = backend.read_meta("failed")
    assert meta is not None
    assert meta["status"] == states.FAILURE
    assert meta["result"]["exc_type"] == "ValueError"


def test_add_meta_if_absent_never_overwrites(app: Celery) -> None:
    """The "sent" record is written once and never replaces a state a worker already stored."""
    backend = backend_of(app)
    assert backend.add_meta_if_absent("t1", {"status": "SENT", "result": None}) is True
    assert backend.add_meta_if_absent("t1", {"status": "SENT", "result": "again"}) is False
    backend.store_result("t2", None, states.STARTED)
    assert backend.add_meta_if_absent("t2", {"status": "SENT", "result": None}) is False
    assert backend.get_state("t1") == "SENT"
    assert backend.get_state("t2") == states.STARTED


def test_success_is_never_overwritten(app: Celery) -> None:
    """A later state (a redelivered duplicate starting again) does not replace SUCCESS."""
    backend = backend_of(app)
    backend.store_result("t1", 42, states.SUCCESS)
    backend.store_result("t1", None, states.STARTED)
    assert backend.get_task_meta("t1", cache=False)["status"] == states.SUCCESS
    assert backend.get_task_meta("t1", cache=False)["result"] == 42


def test_group_save_restore_delete(app: Celery) -> None:
    """GroupResult.save/restore round-trip through the backend, and delete removes it."""
    saved = GroupResult("g1", [AsyncResult("a", app=app), AsyncResult("b", app=app)], app=app)
    saved.save()
    restored = GroupResult.restore("g1", app=app)
    assert restored is not None
    assert [r.id for r in restored.results] == ["a", "b"]
    restored.delete()
    assert GroupResult.restore("g1", app=app) is None


def test_forget_removes_the_record(app: Celery) -> None:
    """forget() deletes a task's record, so its state reads as PENDING again."""
    backend = backend_of(app)
    backend.store_result("t1", 1, states.SUCCESS)
    AsyncResult("t1", app=app).forget()
    assert backend.read_meta("t1") is None


def test_cleanup_removes_expired_records(home: Path) -> None:
    """cleanup() deletes records older than result_expires and those past an explicit expiry."""
    app = make_app(home, result_expires=60)
    backend = backend_of(app)
    for task_id in ("old", "fresh", "short-lived"):
        backend.store_result(task_id, None, states.SUCCESS)
    sql(
        home / "results.sqlite3", "UPDATE results SET updated = updated - 120 WHERE key LIKE '%old'"
    )
    backend.expire(backend.get_key_for_task("short-lived"), -1)
    backend.cleanup()
    assert [backend.read_meta(t) is None for t in ("old", "fresh", "short-lived")] == [
        True,
        False,
        True,
    ]


def test_get_wakes_on_write_instead_of_sleeping_an_interval(app: Celery) -> None:
    """AsyncResult.get(interval=30) returns soon after another thread stores the result."""
    writer = make_app(Path(backend_of(app).path).parent)

    def store_later() -> None:
        time.sleep(0.3)
        writer.backend.store_result("late", "done", states.SUCCESS)

    thread = threading.Thread(target=store_later)
    started = time.monotonic()
    thread.start()
    try:
        assert AsyncResult("late", app=app).get(interval=30, timeout=20) == "done"
    finally:
        thread.join()
    assert time.monotonic() - started < 15  # returned on the write, not after an interval


def test_backend_pickles_with_its_url(app: Celery) -> None:
    """A pickled backend (as Celery does for some pools) reopens the same file."""
    backend = backend_of(app)
    clone = pickle.loads(pickle.dumps(backend))
    assert isinstance(clone, SQLiteBackend)
    assert clone.path == backend.path
