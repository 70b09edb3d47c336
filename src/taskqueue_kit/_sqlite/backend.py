"""The embedded result backend: JSON text in one SQLite file, never pickle.

Why not Celery's database backend: it keeps results in a pickle column, so whoever can write
a row runs code in whoever reads its state. Here every record is JSON text, written with the
``json`` serializer whatever ``result_serializer`` says, and read back only as JSON: a row that
is not a JSON object raises :class:`~taskqueue_kit._exceptions.ResultDecodeError` naming the
task, and is never evaluated.

Waiting for a result (``AsyncResult.get``, ``GroupResult.join_native``) wakes on the same
inotify waker as the broker instead of sleeping half a second between polls.

Options (``result_backend_transport_options``): ``busy_timeout`` (default 10 s) and
``use_inotify`` (default ``True``).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from typing import TYPE_CHECKING, Any

from celery import Celery, states
from celery.backends.base import KeyValueStoreBackend
from celery.exceptions import TimeoutError as CeleryTimeoutError
from celery.result import result_from_tuple
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import loads

from taskqueue_kit._exceptions import ResultDecodeError
from taskqueue_kit._results import SENT as _SENT
from taskqueue_kit._results import WithoutArguments, encode_sent_meta
from taskqueue_kit._sqlite._db import Database, first_row, path_from_url
from taskqueue_kit._sqlite._waker import Waker

__all__ = ["SQLiteBackend"]

SCHEMA_VERSION = 2
SCHEMA = (
    """CREATE TABLE IF NOT EXISTS results (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        status TEXT,
        updated REAL NOT NULL,
        expires_at REAL)""",
    "CREATE INDEX IF NOT EXISTS results_updated ON results (updated)",
    # Revokes for workers started later (taskqueue_kit._revokes); ``until``: expiry time.
    "CREATE TABLE IF NOT EXISTS revoked (task_id TEXT PRIMARY KEY, until REAL NOT NULL)",
)

_UPSERT = """INSERT INTO results (key, value, status, updated, expires_at)
    VALUES (?, ?, ?, ?, NULL) ON CONFLICT (key) DO UPDATE SET value = excluded.value,
    status = excluded.status, updated = excluded.updated, expires_at = NULL"""
_CHUNK = 500  # keys per IN (...) query, well under SQLite's variable limit


def _key(key: str | bytes) -> str:
    return bytes_to_str(key)


def _decode_object(raw: object, what: str, parse: Callable[[str], Any]) -> dict[str, Any]:
    """Parse one stored record, refusing anything but a JSON object held as text."""
    if not isinstance(raw, str):
        raise ResultDecodeError(f"stored record for {what} is not text; refusing to decode it")
    try:
        value = parse(raw)
    except Exception as exc:  # the JSON decoder's errors, and kombu's unknown-type markers
        raise ResultDecodeError(
            f"stored record for {what} is not valid JSON; refusing to decode it"
        ) from exc
    if not isinstance(value, dict):
        raise ResultDecodeError(f"stored record for {what} is not a JSON object")
    return value


class SQLiteBackend(KeyValueStoreBackend):
    """Celery result backend for ``tqsqlite:////abs/path/results.sqlite3`` URLs."""

    if TYPE_CHECKING:  # attributes of Celery's Backend that celery-types leaves out
        app: Celery
        url: str | None
        expires: float | None
        _cache: MutableMapping[str, Any]

        def _get_result_meta(
            self, result: Any, state: str, traceback: str | None, request: Any
        ) -> dict[str, Any]: ...

        def _ensure_not_eager(self) -> None: ...

    supports_native_join = True
    implements_incr = True

    def __init__(self, app: Any, url: str | None = None, **kwargs: Any) -> None:
        kwargs["serializer"] = "json"
        kwargs["accept"] = ["json"]
        super().__init__(app, url=url, **kwargs)
        options = app.conf.get("result_backend_transport_options") or {}
        self.path = path_from_url(url or str(app.conf.result_backend))
        self._db = Database(
            self.path,
            SCHEMA,
            version=SCHEMA_VERSION,
            busy_timeout=float(options.get("busy_timeout", 10.0)),
        )
        self._use_inotify = bool(options.get("use_inotify", True))
        self._local = threading.local()

    def __reduce__(self, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None) -> Any:
        # Celery's Backend.__reduce__ takes these arguments; celery-types omits it.
        return super().__reduce__(args, dict(kwargs or {}, url=self.url))  # type: ignore[call-arg]

    # -- the key/value store -------------------------------------------------------------

    def get(self, key: str | bytes) -> object:
        """The stored value as SQLite returns it: text normally, bytes for a forged BLOB."""
        with self._db.connect() as conn:
            row = first_row(conn.execute("SELECT value FROM results WHERE key = ?", (_key(key),)))
        return None if row is None else row[0]

    def mget(self, keys: Iterable[str | bytes]) -> list[Any]:
        wanted = [_key(k) for k in keys]
        found: dict[str, Any] = {}
        with self._db.connect() as conn:
            for i in range(0, len(wanted), _CHUNK):
                chunk = wanted[i : i + _CHUNK]
                marks = ",".join("?" * len(chunk))
                found.update(
                    conn.execute(
                        f"SELECT key, value FROM results WHERE key IN ({marks})", chunk
                    ).fetchall()
                )
        return [found.get(k) for k in wanted]

    def set(self, key: str | bytes, value: Any) -> None:
        self._write(key, value, None)

    def _set_with_state(self, key: str | bytes, value: Any, state: str | None) -> None:
        self._write(key, value, state)

    def _write(
        self, key: str | bytes, value: Any, state: str | None, *, keep_success: bool = False
    ) -> None:
        sql = _UPSERT + (" WHERE results.status IS NOT 'SUCCESS'" if keep_success else "")
        with self._db.connect() as conn:
            conn.execute(sql, (_key(key), bytes_to_str(value), state, time.time()))

    def delete(self, key: str | bytes) -> None:
        with self._db.connect() as conn:
            conn.execute("DELETE FROM results WHERE key = ?", (_key(key),))

    def incr(self, key: str | bytes) -> int:
        with self._db.connect() as conn:
            row = conn.execute(
                """INSERT INTO results (key, value, updated) VALUES (?, '1', ?)
                ON CONFLICT (key) DO UPDATE SET
                value = CAST(CAST(value AS INTEGER) + 1 AS TEXT), updated = excluded.updated
                RETURNING value""",
                (_key(key), time.time()),
            ).fetchall()[0]
        return int(row[0])

    def expire(self, key: str | bytes, value: float | None) -> None:
        expires_at = time.time() + value if value else None
        with self._db.connect() as conn:
            conn.execute("UPDATE results SET expires_at = ? WHERE key = ?", (expires_at, _key(key)))

    def exception_safe_to_retry(self, exc: Exception) -> bool:
        return isinstance(exc, sqlite3.OperationalError)  # "database is locked"

    # -- decoding: JSON objects only ------------------------------------------------------

    def decode(self, payload: Any) -> Any:
        return _decode_object(payload, "a result", loads)

    def _decode_task(self, task_id: str, raw: object) -> dict[str, Any]:
        meta = _decode_object(raw, f"task {task_id!r}", loads)
        if not isinstance(meta.get("status"), str):
            raise ResultDecodeError(f"stored record for task {task_id!r} has no state")
        return meta

    def _get_task_meta_for(self, task_id: str) -> dict[str, Any]:
        raw = self.get(self.get_key_for_task(task_id))
        if raw is None:
            return {"status": states.PENDING, "result": None}
        return self.meta_from_decoded(self._decode_task(task_id, raw))

    def _restore_group(self, group_id: str) -> dict[str, Any] | None:
        raw = self.get(self.get_key_for_group(group_id))
        if raw is None:
            return None
        meta = _decode_object(raw, f"group {group_id!r}", loads)
        if "result" not in meta:
            raise ResultDecodeError(f"stored record for group {group_id!r} has no result")
        meta["result"] = result_from_tuple(meta["result"], self.app)
        return meta

    def read_meta(self, task_id: str) -> dict[str, Any] | None:
        """The stored meta of a task as plain JSON values, or ``None`` if there is none.

        Unlike Celery's own reads, nothing is rebuilt from the record: no exception class is
        looked up and kombu's typed values (dates, bytes) stay in their JSON form.

        Raises:
            ResultDecodeError: The record is not a JSON object.
        """
        raw = self.get(self.get_key_for_task(task_id))
        if raw is None:
            return None
        return _decode_object(raw, f"task {task_id!r}", json.loads)

    # -- writing ----------------------------------------------------------------------------

    def add_meta_if_absent(self, task_id: str, meta: dict[str, Any]) -> bool:
        """Store ``meta`` for a task unless it already has a record.

        Used to note "sent" before publishing: a worker that already wrote a state wins.

        Returns:
            Whether the record was inserted.
        """
        with self._db.connect() as conn:
            cursor = conn.execute(
                "INSERT OR IGNORE INTO results (key, value, status, updated) VALUES (?, ?, ?, ?)",
                (
                    _key(self.get_key_for_task(task_id)),
                    bytes_to_str(encode_sent_meta(self, meta)),
                    meta.get("status"),
                    time.time(),
                ),
            )
        return cursor.rowcount == 1

    def discard_meta_if_sent(self, task_id: str) -> bool:
        """Delete the task's record if it still says ``SENT`` (its publish failed).

        A record a worker has moved on (a message that reached the broker after all) stays.

        Returns:
            Whether a record was deleted.
        """
        with self._db.connect() as conn:
            cursor = conn.execute(
                "DELETE FROM results WHERE key = ? AND status = ?",
                (_key(self.get_key_for_task(task_id)), _SENT),
            )
        return cursor.rowcount == 1

    def record_revoke(self, task_id: str, until: float) -> None:
        """Note a revoke for workers started later, kept until ``until`` (a Unix time)."""
        with self._db.connect() as conn:
            conn.execute(
                "INSERT INTO revoked (task_id, until) VALUES (?, ?) "
                "ON CONFLICT (task_id) DO UPDATE SET until = excluded.until",
                (task_id, until),
            )

    def recorded_revokes(self, now: float) -> list[str]:
        """The revoked ids noted by :meth:`record_revoke` that have not expired by ``now``."""
        with self._db.connect() as conn:
            conn.execute("DELETE FROM revoked WHERE until <= ?", (now,))
            return [row[0] for row in conn.execute("SELECT task_id FROM revoked")]

    def _store_result(
        self,
        task_id: str,
        result: Any,
        state: str,
        traceback: str | None = None,
        request: Any = None,
        **kwargs: Any,
    ) -> Any:
        # The call's arguments stay out of every record (see WithoutArguments).
        hidden = None if request is None else WithoutArguments(request)
        meta = self._get_result_meta(
            result=result, state=state, traceback=traceback, request=hidden
        )
        meta["task_id"] = bytes_to_str(task_id)
        # Like Celery's key/value backends, a SUCCESS is never overwritten (a redelivered
        # duplicate must not undo it), but atomically and without decoding the old record.
        self._write(self.get_key_for_task(task_id), self.encode(meta), state, keep_success=True)
        return result

    def cleanup(self) -> None:
        """Delete records past their expiry (``result_expires``, or a chord's own)."""
        now = time.time()
        with self._db.connect() as conn:
            conn.execute(
                "DELETE FROM results WHERE expires_at IS NOT NULL AND expires_at < ?", (now,)
            )
            if self.expires:
                conn.execute(
                    "DELETE FROM results WHERE expires_at IS NULL AND updated < ?",
                    (now - float(self.expires),),
                )

    # -- waiting ----------------------------------------------------------------------------

    def _waker(self, max_delay: float) -> Waker:
        waker: Waker | None = getattr(self._local, "waker", None)
        if waker is None:
            waker = Waker(
                self.path.parent,
                [self.path.name],
                max_delay=max_delay,
                use_inotify=self._use_inotify,
            )
            self._local.waker = waker
        waker.max_delay = max_delay
        waker.reset()
        return waker

    def wait_for(
        self,
        task_id: str,
        timeout: float | None = None,
        interval: float = 0.5,
        no_ack: bool = True,
        on_interval: Callable[[], None] | None = None,
    ) -> Any:
        """Return the meta once the task is ready; ``interval`` caps each wait."""
        self._ensure_not_eager()
        deadline = None if timeout is None else time.monotonic() + timeout
        waker = self._waker(interval)
        while True:
            meta = self.get_task_meta(task_id)
            if meta["status"] in states.READY_STATES:
                return meta
            if on_interval:
                on_interval()
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise CeleryTimeoutError("The operation timed out.")
            waker.wait(remaining)

    def get_many(
        self,
        task_ids: Iterable[str],
        timeout: float | None = None,
        interval: float = 0.5,
        no_ack: bool = True,
        on_message: Callable[[Any], None] | None = None,
        on_interval: Callable[[], None] | None = None,
        max_iterations: int | None = None,
        READY_STATES: frozenset[str] = states.READY_STATES,
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """Yield ``(task_id, meta)`` as each task becomes ready, waking on writes."""
        ids = {bytes_to_str(t) for t in task_ids}
        for task_id in list(ids):
            cached = self._cache.get(task_id)
            if cached is not None and cached["status"] in READY_STATES:
                ids.discard(task_id)
                yield task_id, cached
        deadline = None if timeout is None else time.monotonic() + timeout
        waker = self._waker(0.5 if interval is None else interval)
        iterations = 0
        while ids:
            keys = sorted(ids)
            ready: dict[str, dict[str, Any]] = {}
            for task_id, raw in zip(
                keys, self.mget(self.get_key_for_task(k) for k in keys), strict=True
            ):
                if raw is not None:
                    meta = self.meta_from_decoded(self._decode_task(task_id, raw))
                    if meta["status"] in READY_STATES:
                        ready[task_id] = meta
            self._cache.update(ready)
            ids.difference_update(ready)
            for task_id, meta in ready.items():
                if on_message is not None:
                    on_message(meta)
                yield task_id, meta
            if not ids:
                break
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise CeleryTimeoutError(f"Operation timed out ({timeout})")
            if on_interval:
                on_interval()
            if ready:
                waker.reset()
            waker.wait(remaining)
            iterations += 1
            if max_iterations and iterations >= max_iterations:
                break
