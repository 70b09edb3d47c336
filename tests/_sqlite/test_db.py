"""Connection helpers: who owns a claim, and whether that owner is still alive."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

from taskqueue_kit._sqlite._db import Database, current_owner, first_row, is_alive


def test_this_process_is_alive() -> None:
    """The current process counts as alive under its own identity."""
    _host, pid, start = current_owner()
    assert pid == os.getpid()
    assert is_alive(pid, start)


def test_exited_but_unreaped_process_is_dead() -> None:
    """A zombie (exited, not yet waited for) is dead: its claims must be released."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 30
        while is_alive(proc.pid, 0):
            assert time.monotonic() < deadline, "child never exited"
            time.sleep(0.01)
    finally:
        proc.wait()


def test_reused_pid_is_not_the_original_owner() -> None:
    """A live pid whose start time differs from the recorded one is another process."""
    _host, pid, start = current_owner()
    if start:  # start times come from /proc; elsewhere a live pid is trusted
        assert not is_alive(pid, start + 1)


def test_connection_is_reopened_after_fork(tmp_path: Path) -> None:
    """A forked child never uses its parent's SQLite connection; it opens its own."""
    db = Database(tmp_path / "x.sqlite3", ("CREATE TABLE t (x)",), version=1, busy_timeout=5)
    with db.connect() as conn:
        parent_conn = conn
    read, write = os.pipe()
    with warnings.catch_warnings():  # 3.12+ warns about fork() with threads; this child is short
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        with db.connect() as conn:
            os.write(write, b"1" if conn is not parent_conn else b"0")
            conn.execute("INSERT INTO t VALUES (1)")
        os._exit(0)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    assert os.read(read, 1) == b"1"
    os.close(read)
    assert os.waitstatus_to_exitcode(status) == 0
    with db.connect() as conn:
        assert first_row(conn.execute("SELECT COUNT(*) FROM t")) == (1,)
    db.close()


def test_connection_is_shared_safely_between_threads(tmp_path: Path) -> None:
    """Threads (a consumer and an acking pool thread) can write through one Database."""
    db = Database(tmp_path / "x.sqlite3", ("CREATE TABLE t (x)",), version=1, busy_timeout=5)

    def insert(n: int) -> None:
        for i in range(100):
            with db.transaction() as conn:
                conn.execute("INSERT INTO t VALUES (?)", (n * 1000 + i,))

    threads = [threading.Thread(target=insert, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with db.connect() as conn:
        assert first_row(conn.execute("SELECT COUNT(DISTINCT x) FROM t")) == (400,)
    db.close()
