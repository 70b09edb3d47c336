"""SQLite plumbing shared by the embedded broker and result backend.

Several processes (a web process, workers, a CLI) open the same files, so every connection
uses WAL (readers never block the writer) with ``synchronous=NORMAL`` (no fsync per commit;
a power cut may lose the last commits, never corrupt the file) and a busy timeout.
A connection is never shared across ``fork``: :class:`Database` reopens it in the child.
"""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from kombu.utils.url import parse_url

from taskqueue_kit._exceptions import ConfigurationError

__all__ = [
    "SCHEME",
    "Database",
    "Owner",
    "current_owner",
    "first_row",
    "is_alive",
    "path_from_location",
    "path_from_url",
    "prepare_directory",
    "url_for",
]

SCHEME = "tqsqlite"

logger = logging.getLogger(__name__)

#: (hostname, pid, process start time) of whoever holds a claim or owns a queue.
Owner = tuple[str, int, int]


def first_row(cursor: sqlite3.Cursor) -> Any:
    """First row of a query, or ``None``, with the statement run to completion.

    A half-read ``SELECT`` keeps its read snapshot open: the connection would go on seeing the
    database as it was, and the WAL could not be checkpointed past it.
    """
    rows = cursor.fetchall()
    return rows[0] if rows else None


def url_for(path: str | os.PathLike[str]) -> str:
    """Build the URL of a database file, made absolute so every process finds the same file.

    kombu's ``parse_url`` strips one leading slash from the path, hence four slashes:
    ``tqsqlite:////abs/path/broker.sqlite3``.
    """
    absolute = os.path.abspath(os.fspath(path))
    return f"{SCHEME}:///" + quote(Path(absolute).as_posix(), safe="/")


def path_from_location(location: str | None) -> Path:
    """Turn the path part of a parsed URL (kombu's ``virtual_host``) into a file path."""
    if not location or location == "/":
        raise ValueError(
            f"a {SCHEME} URL needs a database file path, e.g. {SCHEME}:////abs/path/broker.sqlite3"
        )
    return Path(location).absolute()


def path_from_url(url: str) -> Path:
    """Inverse of :func:`url_for`."""
    return path_from_location(parse_url(url)["virtual_host"])


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """State letter and start time (clock ticks since boot) of a process, from ``/proc``."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: fields start after the last ')'.
    fields = raw[raw.rfind(b")") + 2 :].split()
    try:
        return fields[0].decode("ascii", "replace"), int(fields[19])
    except (IndexError, ValueError):
        return None


_HAS_PROC = os.path.exists("/proc/self/stat")
_owner_cache: dict[int, Owner] = {}


def _host_identity() -> str:
    """Host name plus pid namespace: pids are only comparable within one namespace.

    Containers sharing the host's name (``network_mode: host``) but not its pids then count
    as other hosts, whose claims only the visibility timeout releases.
    """
    try:
        return f"{socket.gethostname()}|{os.readlink('/proc/self/ns/pid')}"
    except OSError:
        return socket.gethostname()


def current_owner() -> Owner:
    """Identify this process; the start time tells a reused pid from the original one."""
    pid = os.getpid()
    owner = _owner_cache.get(pid)
    if owner is None:
        stat = _proc_stat(pid)
        owner = (_host_identity(), pid, stat[1] if stat else 0)
        _owner_cache.clear()
        _owner_cache[pid] = owner
    return owner


def is_alive(pid: int, start: int) -> bool:
    """Tell whether a process on this host still exists (a zombie counts as dead)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by another user
    if not _HAS_PROC:
        return True
    stat = _proc_stat(pid)
    if stat is None:
        return False
    state, started = stat
    if state in ("Z", "X"):
        return False
    return not start or started == start


def prepare_directory(directory: Path) -> None:
    """Create the data directory if needed and prove it writable, with a real write.

    SQLite's own error ("unable to open database file") names neither the directory nor
    the cause, and the transport counts it as a connection error that a worker retries for
    ever. A write probe, because ``os.access`` says yes to root on a read-only mount.

    Raises:
        ConfigurationError: the directory is a file, cannot be created, or is read-only.
    """
    fix = "point TASKQUEUE_HOME at a writable directory"
    if directory.exists() and not directory.is_dir():
        raise ConfigurationError(
            f"the data directory {directory} is a file: move it away or {fix}", field="home"
        )
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(
            f"the data directory {directory} does not exist and cannot be created: "
            f"create it or {fix}",
            field="home",
        ) from exc
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-probe-", dir=directory)
    except OSError as exc:
        raise ConfigurationError(
            f"the data directory {directory} is read-only: make it writable or {fix}",
            field="home",
        ) from exc
    os.close(fd)
    os.unlink(probe)


def _open(
    path: Path, schema: Sequence[str], version: int, busy_timeout: float
) -> sqlite3.Connection:
    prepare_directory(path.parent)
    conn = sqlite3.connect(
        path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
    )
    try:
        deadline = time.monotonic() + busy_timeout
        while True:
            # Switching a fresh file to WAL needs a lock the busy handler does not always wait for.
            try:
                mode = first_row(conn.execute("PRAGMA journal_mode=WAL"))[0]
                break
            except sqlite3.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        if str(mode).lower() != "wal":
            logger.warning(
                "%s: WAL unavailable (journal_mode=%s); expect lock contention", path, mode
            )
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA journal_size_limit=67108864")
        if first_row(conn.execute("PRAGMA user_version"))[0] < version:
            conn.execute("BEGIN IMMEDIATE")
            try:
                # Under the write lock, look again: another process may have just done it
                # (the schema's ALTER TABLE statements must run once).
                if first_row(conn.execute("PRAGMA user_version"))[0] < version:
                    for statement in schema:
                        conn.execute(statement)
                    conn.execute(f"PRAGMA user_version={int(version)}")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
    except BaseException:
        conn.close()
        raise
    return conn


class Database:
    """One lazily opened connection to a database file, per process, used under a lock.

    The lock lets a consumer thread and an acking thread share the connection; after a fork
    the child drops the parent's connection (without closing it) and opens its own.
    """

    def __init__(
        self, path: Path, schema: Sequence[str], *, version: int, busy_timeout: float
    ) -> None:
        self.path = path
        self._schema = tuple(schema)
        self._version = version
        self._busy_timeout = busy_timeout
        self._conn: sqlite3.Connection | None = None
        self._pid = os.getpid()
        self._lock = threading.RLock()

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """Yield the connection (autocommit mode: one statement, one transaction)."""
        if self._pid != os.getpid():
            self._conn = None
            self._lock = threading.RLock()
            self._pid = os.getpid()
        with self._lock:
            if self._conn is None:
                self._conn = _open(self.path, self._schema, self._version, self._busy_timeout)
            yield self._conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Yield the connection inside ``BEGIN IMMEDIATE`` (the write lock is taken up front)."""
        with self.connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def close(self) -> None:
        """Close the connection if this process opened it."""
        if self._pid == os.getpid() and self._conn is not None:
            with self._lock:
                conn, self._conn = self._conn, None
                if conn is not None:
                    conn.close()
