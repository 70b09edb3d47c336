"""The kit's Redis result backend: Celery's, with the round trips it does not need removed.

``create_celery`` uses it wherever Celery would use ``RedisBackend`` (``redis://``,
``rediss://``, ``sentinel://``); the stored records and channels are Celery's own, so
plain Celery clients and Flower read them as before. Three changes:

* **No subscription per send.** Celery subscribes the sender to every task's result
  channel in case it calls ``.get()``, and unsubscribes when the ``AsyncResult`` is
  garbage-collected: two commands per task that a web process never uses. Here the
  subscription is made by ``.get()`` (and ``then()``, ``join_native()``) itself, which
  Celery already does and follows with a read of the stored state, so nothing is missed.
* **One round trip per state written.** Celery reads the record before every write (to
  keep a stored ``SUCCESS``) and then writes it with ``PUBLISH`` in a second round trip; a
  task that reports ``STARTED`` pays four. A Lua script does the same check, write and
  publish atomically in one, which also closes the gap between Celery's read and write.
* **The sent record overlaps the publish.** ``SET NX`` goes out before the task is
  published and its reply is read after, so the sender waits for one network round trip
  instead of two, and ``apply_async`` still returns only once the record is stored.
* **A running state does not wait for its reply.** A backend sends its state writes on
  one connection, which Redis executes in order; ``STARTED``, ``PROGRESS`` and ``RETRY``
  go out without waiting (the task goes on at once), and a final state waits for its own
  reply and every earlier one. So a task's ``STARTED`` can never land after its result.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from celery import states
from celery.backends.redis import RedisBackend, SentinelBackend
from celery.exceptions import BackendStoreError
from kombu.utils.encoding import bytes_to_str
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError

from taskqueue_kit._results import encode_sent_meta

__all__ = ["KitRedisBackend", "KitSentinelBackend", "kit_backend_class"]

logger = logging.getLogger("taskqueue_kit")

# KEYS[1]: the task's key. ARGV: the encoded record, its time to live in seconds (0: none).
# A stored SUCCESS is kept, as Celery's key/value backends do (a redelivered duplicate must
# not undo it); anything that is not a JSON object with that status is overwritten. The
# plain substring test spares decoding the record (on Redis's one thread) in the usual
# case, a record that does not hold the word at all.
_STORE_SCRIPT = """
local current = redis.call('GET', KEYS[1])
if current and string.find(current, '"SUCCESS"', 1, true) then
  local ok, meta = pcall(cjson.decode, current)
  if ok and type(meta) == 'table' and meta['status'] == 'SUCCESS' then
    return 0
  end
end
local ttl = tonumber(ARGV[2])
if ttl > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ttl)
else
  redis.call('SET', KEYS[1], ARGV[1])
end
redis.call('PUBLISH', KEYS[1], ARGV[1])
return 1
"""
_STORE_SHA = hashlib.sha1(_STORE_SCRIPT.encode()).hexdigest()

# KEYS[1]: the task's key. Deleted only while it is still the record written before publishing.
_DISCARD_SENT_SCRIPT = """
local current = redis.call('GET', KEYS[1])
if current then
  local ok, meta = pcall(cjson.decode, current)
  if ok and type(meta) == 'table' and meta['status'] == 'SENT' then
    return redis.call('DEL', KEYS[1])
  end
end
return 0
"""


def _bytes(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else value


def _resp(parts: list[bytes]) -> bytes:
    """One Redis command in the wire protocol, packed without redis-py's generic encoder."""
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        out.append(b"$%d\r\n%s\r\n" % (len(part), part))
    return b"".join(out)


def _pooled(pool: Any, command: str) -> Any:
    """A connection from redis-py's pool, whatever its version."""
    try:
        return pool.get_connection()
    except TypeError:  # redis-py before 5.3 needs a command name
        return pool.get_connection(command)


def _ensure_fresh(connection: Any) -> None:
    """Reconnect a kept connection that the server closed (or left data on) meanwhile.

    As redis-py's pool does for connections it hands out. ``connect()`` is called
    explicitly, not left to the send: a Sentinel-managed connection asks Sentinel for the
    current master there, which matters after a failover.
    """
    if connection.is_connected:
        try:
            stale = connection.can_read()
        except (RedisConnectionError, OSError):
            stale = True
        if not stale:
            return
        connection.disconnect()
    connection.connect()


_STORE_SHA_BYTES = _STORE_SHA.encode()
#: Replies a writer leaves unread at most; past that, a write waits for all of them.
_MAX_UNREAD = 256


class _StateWriter:
    """One connection for a backend's state writes, in order; only final states wait.

    Redis runs the commands of one connection in the order they arrive, so a write that
    does not wait for its reply is still applied before any later write of this backend.
    Replies left unread are read (and a failure among them logged) by the next write
    that waits. The store script is loaded whenever the connection (re)connects, so a
    write that does not wait never meets ``NOSCRIPT``.
    """

    def __init__(self, pool: Any) -> None:
        self._pool = pool
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._connection: Any = None
        self._unread = 0

    def write(self, command: bytes, *, wait: bool) -> None:
        """Send one packed command; with ``wait``, raise what its reply raises."""
        if self._pid != os.getpid():  # forked: the parent's socket is not ours to use
            self._pid, self._lock = os.getpid(), threading.Lock()
            self._connection, self._unread = None, 0
        with self._lock:
            connection = self._connection
            try:
                connection = self._connected()
                self._send(connection, command)
                if wait or self._unread >= _MAX_UNREAD:
                    try:
                        self._read_replies(connection, raise_last=wait)
                    except NoScriptError:  # SCRIPT FLUSH since the script was loaded
                        self._on_connect(connection)
                        self._send(connection, command)
                        self._read_replies(connection, raise_last=True)
            except BaseException:
                if connection is not None:
                    connection.disconnect()  # its unread replies are lost with it
                self._unread = 0
                raise

    def _send(self, connection: Any, command: bytes) -> None:
        # No health check: its PING would read a reply left unread.
        connection.send_packed_command([command], check_health=False)
        self._unread += 1

    def _connected(self) -> Any:
        if self._connection is None:
            connection = _pooled(self._pool, "EVALSHA")
            connection.register_connect_callback(self._on_connect)
            self._connection = connection
            if connection.is_connected:  # handed over connected: load the script now
                self._on_connect(connection)
        connection = self._connection
        if not self._unread:  # with replies owed, readable data is just those replies
            _ensure_fresh(connection)  # runs _on_connect when it connects
        return connection

    def _on_connect(self, connection: Any) -> None:
        self._unread = 0
        connection.send_command("SCRIPT", "LOAD", _STORE_SCRIPT, check_health=False)
        connection.read_response()

    def _read_replies(self, connection: Any, *, raise_last: bool) -> None:
        reload = False
        while self._unread:
            self._unread -= 1
            try:
                connection.read_response()
            except ResponseError as exc:
                if raise_last and not self._unread:
                    raise
                # A state that did not wait was refused (an ACL, a flushed script); the
                # task's next state supersedes it. The connection's stream is intact.
                logger.warning("taskqueue-kit: a task state write was refused: %s", exc)
                reload = reload or isinstance(exc, NoScriptError)
        if reload:
            self._on_connect(connection)


class KitRedisBackend(RedisBackend):
    """Celery's ``RedisBackend`` without per-send subscriptions, one round trip a state."""

    # Set by Celery's backends at run time; celery-types does not declare them.
    expires: int | None
    failure_expires: int | None
    serializer: str
    _get_result_meta: Callable[..., dict[str, Any]]

    @property
    def _script_reads_records(self) -> bool:
        """Whether stored records are plain JSON, which the Lua scripts decode."""
        return self.serializer == "json" and not getattr(self, "compression", None)

    def on_task_call(self, producer: Any, task_id: str) -> None:
        """Subscribe to nothing at send time; ``.get()`` subscribes when it is called."""

    def begin_add_meta_if_absent(self, task_id: str, meta: dict[str, Any]) -> Callable[[], bool]:
        """Send ``SET key meta NX`` now; the returned function reads the reply.

        Call the function exactly once, whatever happens in between: it hands the
        connection back. One connection is kept aside for these writes, so the pool's
        bookkeeping is paid once rather than per task.

        Returns:
            A function returning whether the record was stored (False: one existed).
        """
        value = encode_sent_meta(self, meta)
        parts = [b"SET", _bytes(self.get_key_for_task(task_id)), _bytes(value), b"NX"]
        if self.expires:
            parts += [b"EX", b"%d" % int(self.expires)]
        connection = self._take_connection()
        try:
            connection.send_packed_command([_resp(parts)])
        except BaseException:
            connection.disconnect()
            self._give_back(connection)
            raise

        def finish() -> bool:
            try:
                return connection.read_response() is not None
            except BaseException:
                connection.disconnect()
                raise
            finally:
                self._give_back(connection)

        return finish

    def _take_connection(self) -> Any:
        spare = self.__dict__.pop("_kit_spare_connection", None)  # atomic: one taker wins
        if spare is None or spare[0] != os.getpid():
            # None, or inherited across a fork: its socket is the parent's; leave it alone.
            return _pooled(self.client.connection_pool, "SET")
        connection = spare[1]
        try:
            _ensure_fresh(connection)
        except BaseException:
            self.client.connection_pool.release(connection)
            raise
        return connection

    def _give_back(self, connection: Any) -> None:
        kept = self.__dict__.setdefault("_kit_spare_connection", (os.getpid(), connection))
        if kept[1] is not connection:  # another thread's is kept already
            self.client.connection_pool.release(connection)

    def discard_meta_if_sent(self, task_id: str) -> bool:
        """Delete the task's record if it still says ``SENT`` (its publish failed).

        Returns:
            Whether a record was deleted.
        """
        if not self._script_reads_records:
            return False
        key = self.get_key_for_task(task_id)
        return bool(self.client.eval(_DISCARD_SENT_SCRIPT, 1, key))

    def _store_result(
        self,
        task_id: str,
        result: Any,
        state: str,
        traceback: str | None = None,
        request: Any = None,
        **kwargs: Any,
    ) -> Any:
        if not self._script_reads_records:
            return super()._store_result(  # type: ignore[misc]  # not in celery-types
                task_id, result, state, traceback, request=request, **kwargs
            )
        meta = self._get_result_meta(
            result=result, state=state, traceback=traceback, request=request
        )
        meta["task_id"] = bytes_to_str(task_id)
        value = self.encode(meta)
        if isinstance(value, str) and len(value) > self._MAX_STR_VALUE_SIZE:
            raise BackendStoreError(
                "value too large for Redis backend", state=state, task_id=task_id
            )
        expires = self.failure_expires if state == states.FAILURE else self.expires
        key = self.get_key_for_task(task_id)
        wait = state in states.READY_STATES  # a running state lets the task go on at once
        self.ensure(self._store_atomically, (key, value, int(expires or 0), wait))
        return result

    def _store_atomically(self, key: Any, value: Any, expires: int, wait: bool) -> None:
        command = _resp(
            [b"EVALSHA", _STORE_SHA_BYTES, b"1", _bytes(key), _bytes(value), b"%d" % expires]
        )
        self._state_writer().write(command, wait=wait)

    def _state_writer(self) -> _StateWriter:
        writer: _StateWriter | None = self.__dict__.get("_kit_state_writer")
        if writer is None:
            writer = self.__dict__.setdefault(
                "_kit_state_writer", _StateWriter(self.client.connection_pool)
            )
        return writer


class KitSentinelBackend(KitRedisBackend, SentinelBackend):
    """Celery's ``SentinelBackend`` with the same changes as :class:`KitRedisBackend`."""


_REPLACEMENTS: dict[type[Any], type[Any]] = {
    RedisBackend: KitRedisBackend,
    SentinelBackend: KitSentinelBackend,
}


def kit_backend_class(backend_cls: type[Any]) -> type[Any]:
    """The kit's class for a Celery backend class; any other class is returned unchanged."""
    return _REPLACEMENTS.get(backend_cls, backend_cls)
