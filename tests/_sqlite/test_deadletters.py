"""Unreadable messages on the embedded broker: logged, set aside, and the worker goes on."""

from __future__ import annotations

import base64
import json
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from kombu import Connection

from .conftest import sql
from .test_noloss import done_tokens, wait_until


def _broker(home: Path, statement: str, *params: object) -> list[tuple[Any, ...]]:
    return sql(home / "broker.sqlite3", statement, *params)


def _forged_pickle(template: str) -> str:
    """A well-formed kombu message whose body is pickle: what an attacker with write access
    to the broker file would plant (this one unpickles to a harmless dict)."""
    message = json.loads(template)
    message["content-type"] = "application/x-python-serialize"
    message["content-encoding"] = "binary"
    message["body"] = base64.b64encode(pickle.dumps({"harmless": True})).decode()
    return json.dumps(message)


UNREADABLE = {
    "not JSON": lambda _template: "{this is not json",
    "not a kombu message": lambda _template: json.dumps(["a", "list"]),
    "content type": _forged_pickle,
}


def test_unreadable_rows_are_set_aside_and_the_tasks_behind_them_run(
    app: Celery, home: Path, start_worker_process: Callable[..., Any]
) -> None:
    """A non-JSON row, a JSON non-message and a forged pickle message sit between real
    tasks; a worker process logs and sets each aside, stays up, and runs every task."""
    app.send_task("tq.record", ("before",))
    (template,) = _broker(home, "SELECT payload FROM messages")[0]
    for make in UNREADABLE.values():
        _broker(home, "INSERT INTO messages (queue, payload) VALUES ('celery', ?)", make(template))
    behind = [f"behind-{n}" for n in range(5)]
    for token in behind:
        app.send_task("tq.record", (token,))

    worker = start_worker_process("reader", pool="prefork")
    wait_until(lambda: len(done_tokens(home)) >= 6, 60, "the six real tasks")

    assert sorted(done_tokens(home)) == sorted(["before", *behind])
    assert worker.poll() is None, "the worker stopped"
    assert _broker(home, "SELECT COUNT(*) FROM messages") == [(0,)]
    reasons = [r for (r,) in _broker(home, "SELECT reason FROM dead_letters ORDER BY id")]
    assert len(reasons) == len(UNREADABLE)
    for expected, reason in zip(UNREADABLE, reasons, strict=True):
        assert expected in reason
    log = (home / "reader.log").read_text()
    assert log.count("set aside in the dead_letters table") == len(UNREADABLE)


def test_a_consumer_reading_directly_skips_to_the_next_readable_message(broker: str) -> None:
    """kombu's own SimpleQueue gets the readable message after an unreadable one."""
    with Connection(broker) as conn:
        queue = conn.SimpleQueue("plain")
        queue.put({"n": 1})
        queue.put({"n": 2})
        path = Path(conn.transport.db_path)
        first = "(SELECT MIN(id) FROM messages)"
        sql(path, f"UPDATE messages SET payload = 'garbage' WHERE id = {first}")
        message = queue.get(timeout=5)
        assert message.payload == {"n": 2}
        message.ack()
        assert sql(path, "SELECT queue, payload FROM dead_letters") == [("plain", "garbage")]
        queue.close()


@pytest.mark.parametrize("allow_pickle", [False, True])
def test_the_accepted_content_follows_the_apps(tmp_path: Path, allow_pickle: bool) -> None:
    """init_celery hands the app's accept_content to the embedded transport."""
    from taskqueue_kit import TaskQueueSettings, create_celery

    app = create_celery(TaskQueueSettings(home=tmp_path, allow_pickle=allow_pickle))
    options = app.conf.broker_transport_options
    assert options["accept_content"] == (["json", "pickle"] if allow_pickle else ["json"])
    app.close()
