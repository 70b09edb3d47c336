"""The waker: idle consumers sleep until another process writes, with a backoff fallback."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from kombu import Connection, Queue

from taskqueue_kit._sqlite._waker import Waker, inotify_available

from .conftest import run_helper

needs_inotify = pytest.mark.skipif(not inotify_available(), reason="inotify is Linux-only")


def age(waker: Waker) -> None:
    """Grow the backoff to its cap without sleeping, as a long idle period would."""
    for _ in range(40):
        waker.wait(0)


@needs_inotify
def test_wait_ends_on_a_write_by_another_process(tmp_path: Path) -> None:
    """A long wait returns True as soon as another process appends to a watched file."""
    waker = Waker(tmp_path, ["broker.sqlite3"], max_delay=60)
    age(waker)
    writer = run_helper("touch", str(tmp_path / "broker.sqlite3-wal"))
    try:
        assert waker.wait(timeout=30) is True
    finally:
        writer.wait()
        waker.close()


@needs_inotify
def test_writes_to_other_files_do_not_wake(tmp_path: Path) -> None:
    """Changes to files outside the watched names (e.g. the results db) are ignored."""
    waker = Waker(tmp_path, ["broker.sqlite3"], max_delay=60)
    (tmp_path / "results.sqlite3-wal").write_bytes(b"x")
    assert waker.wait(timeout=0.2) is False
    (tmp_path / "broker.sqlite3-wal").write_bytes(b"x")
    assert waker.wait(timeout=5) is True
    waker.close()


def test_fallback_backs_off_without_inotify(tmp_path: Path) -> None:
    """Without inotify, wait() just sleeps its backoff step and reports no event."""
    waker = Waker(tmp_path, ["broker.sqlite3"], max_delay=0.05, use_inotify=False)
    assert waker.uses_inotify is False
    (tmp_path / "broker.sqlite3-wal").write_bytes(b"x")
    assert [waker.wait() for _ in range(8)] == [False] * 8


@needs_inotify
def test_idle_drain_wakes_on_publish_from_another_process(broker: str) -> None:
    """A consumer idle in a 30 s wait receives a message published elsewhere well before that."""
    polling_interval = 30.0
    with Connection(broker, transport_options={"polling_interval": polling_interval}) as conn:
        got: list[object] = []
        with conn.Consumer(Queue("wake"), callbacks=[lambda body, m: got.append(body)]):
            age(conn.transport._get_waker())  # the next wait would last the whole interval
            publisher = run_helper("publish", broker, "wake", json.dumps("ping"))
            started = time.monotonic()
            try:
                conn.drain_events(timeout=polling_interval)
            finally:
                publisher.wait()
            assert got == ["ping"]
            assert time.monotonic() - started < polling_interval / 2


def test_drain_works_by_backoff_without_inotify(broker: str) -> None:
    """With use_inotify=False a consumer still receives a message from another process."""
    options = {"use_inotify": False, "polling_interval": 0.05}
    with Connection(broker, transport_options=options) as conn:
        got: list[object] = []
        with conn.Consumer(Queue("slow"), callbacks=[lambda body, m: got.append(body)]):
            assert conn.transport._get_waker().uses_inotify is False
            publisher = run_helper("publish", broker, "slow", json.dumps("ping"))
            try:
                conn.drain_events(timeout=30)
            finally:
                publisher.wait()
        assert got == ["ping"]
