"""The embedded broker: a kombu virtual transport on one SQLite file.

Why not kombu's SQLAlchemy transport: it polls once a second and hands every transport
option to ``create_engine``. This one wakes on an inotify event (see :mod:`._waker`), and in
a worker it delivers from Celery's event loop (kombu's hub) on that event's descriptor.

Delivery is at-least-once, as with Redis. A message is *claimed* when delivered (the claim
records when, and which process on which host), deleted on ack, and unclaimed on
``reject(requeue=True)``, on channel close, after ``visibility_timeout`` seconds, or at once
when the claiming process on this host has died (so a SIGKILLed worker's task comes back in
about a second, not an hour).

Exchanges and direct/topic bindings live in the database, because a publisher in one process
must route by bindings that a worker declared in another. Fanout (Celery's remote control)
is a broadcast log instead: each consuming channel keeps a cursor into it, so a broadcast
reaches the consumers that exist when it is sent, like Redis pub/sub, and nothing piles up
for consumers that are gone.

Messages are taken by priority (``priority`` 0 to 255, higher first, as on RabbitMQ), then
in the order they were published; one past its ``expiration`` (milliseconds, as in AMQP) is
never delivered and is deleted by the housekeeping.

A message no consumer can read (not JSON, not shaped as a kombu message, or of a content
type the channel does not accept) is *set aside*: moved to the ``dead_letters`` table and
logged, and the consumer goes on with the next one. A broadcast of that kind is skipped.

Transport options: ``polling_interval`` (longest wait between checks, default 1 s),
``visibility_timeout`` (default 3600 s), ``busy_timeout`` (default 10 s), ``broadcast_ttl``
(default 3600 s), ``use_inotify`` (default ``True``) and ``accept_content`` (serializer
names whose messages are delivered; ``init_celery`` sets it to the app's
``accept_content``; unset, every content type is delivered and the consumer's own
``accept`` decides, as on kombu's other transports).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections import OrderedDict
from queue import Empty
from typing import TYPE_CHECKING, Any, cast

from kombu.serialization import prepare_accept_content
from kombu.transport import virtual
from kombu.utils.json import dumps, loads
from kombu.utils.scheduling import FairCycle

from taskqueue_kit._sqlite._broker import CLAIM, PUT, READY, TAKE, UNCLAIM, housekeeping
from taskqueue_kit._sqlite._db import current_owner, first_row, path_from_location
from taskqueue_kit._sqlite._declare import DeclaringChannel
from taskqueue_kit._sqlite._waker import MIN_DELAY, Waker

__all__ = ["Channel", "QoS", "Transport"]

logger = logging.getLogger(__name__)


class _Unreadable(Exception):
    """A stored message no consumer can read; the text says why."""


def _decode(payload: str, accepted: frozenset[str] | None) -> dict[str, Any]:
    """The kombu message stored as ``payload``; ``accepted``: content types, or ``None``: all.

    Raises:
        _Unreadable: not JSON, not a kombu message, or of a content type not accepted.
    """
    try:
        message = loads(payload)
    except ValueError as exc:
        raise _Unreadable(f"not JSON ({exc})") from None
    if (
        not isinstance(message, dict)
        or not isinstance(message.get("properties"), dict)
        or "body" not in message
    ):
        raise _Unreadable("not a kombu message (no body or properties)")
    content_type = message.get("content-type")
    if accepted is not None and content_type not in accepted:
        raise _Unreadable(f"content type {content_type!r} is not accepted")
    return message


def _priority(properties: dict[str, Any]) -> int:
    """The message's priority, 0 to 255 as in AMQP (higher first); 0 when unset or odd."""
    try:
        return min(max(int(properties.get("priority") or 0), 0), 255)
    except (TypeError, ValueError):
        return 0


def _expires_at(properties: dict[str, Any]) -> float | None:
    """When the message expires (AMQP's ``expiration``, milliseconds as text), or never."""
    expiration = properties.get("expiration")
    if expiration is None:
        return None
    try:
        return time.time() + max(float(expiration), 0.0) / 1000.0
    except (TypeError, ValueError):
        return None


def _claim_tag(delivery_tag: object) -> tuple[int, int] | None:
    """Parse a claim's delivery tag, ``c:<message id>:<claim token>``."""
    parts = str(delivery_tag).split(":")
    if len(parts) != 3 or parts[0] != "c":
        return None
    try:
        return int(parts[1]), int(parts[2])
    except ValueError:
        return None


class QoS(virtual.QoS):
    """Acks delete the claimed row; rejects and restores unclaim it."""

    if TYPE_CHECKING:  # attributes the kombu stubs leave out or type loosely
        channel: Channel
        _delivered: OrderedDict[str, Any]

        def _flush(self) -> None: ...

    def __init__(self, channel: Channel, prefetch_count: int = 0) -> None:
        super().__init__(channel, prefetch_count)
        self._pid = os.getpid()

    def ack(self, delivery_tag: str) -> None:
        self.channel._delete_claimed(delivery_tag)
        super().ack(delivery_tag)

    def reject(self, delivery_tag: str, requeue: bool = False) -> None:
        if requeue:
            self.channel._unclaim(delivery_tag)
        else:
            self.channel._delete_claimed(delivery_tag)
        super().ack(delivery_tag)  # forget it locally; the base would re-publish a copy

    def restore_unacked(  # type: ignore[override]  # kombu returns the errors; stubs say None
        self,
    ) -> list[tuple[BaseException, Any]]:
        """Unclaim every delivered message not yet acked (on close and at exit)."""
        self._flush()
        delivered = self._delivered
        errors: list[tuple[BaseException, Any]] = []
        if os.getpid() != self._pid:  # a forked child must not release its parent's claims
            delivered.clear()
            return errors
        while delivered:
            try:
                tag, message = delivered.popitem()
            except KeyError:  # pragma: no cover - emptied by another thread
                break
            try:
                self.channel._unclaim(tag)
            except Exception as exc:
                errors.append((exc, message))
        return errors

    def restore_visible(self, *args: Any, **kwargs: Any) -> None:
        self.channel._maintain()


class Channel(DeclaringChannel):
    """Publishes, claims and acks messages; reads broadcasts with a cursor."""

    QoS = QoS
    supports_fanout = True
    visibility_timeout: float = 3600.0
    broadcast_ttl: float = 3600.0
    accept_content: list[str] | None = None
    from_transport_options = (
        *DeclaringChannel.from_transport_options,
        "visibility_timeout",
        "broadcast_ttl",
        "accept_content",
    )

    def __init__(self, connection: Transport, **kwargs: Any) -> None:
        super().__init__(connection, **kwargs)
        self._noack_queues: set[str] = set()
        self._consumed: set[str] = set()
        accept = self.accept_content
        self._accepted = None if accept is None else frozenset(prepare_accept_content(accept) or ())

    # -- messages ------------------------------------------------------------------------

    def _put(self, queue: str, message: dict[str, Any], **kwargs: Any) -> None:
        properties = message.get("properties") or {}
        with self._db.connect() as conn:
            conn.execute(
                PUT, (queue, dumps(message), _priority(properties), _expires_at(properties))
            )

    def _put_fanout(
        self, exchange: str, message: dict[str, Any], routing_key: str, **kwargs: Any
    ) -> None:
        with self._db.connect() as conn:
            conn.execute(
                "INSERT INTO broadcasts (exchange, payload, created) VALUES (?, ?, ?)",
                (exchange, dumps(message), time.time()),
            )

    def _get(self, queue: str, timeout: float | None = None) -> dict[str, Any]:
        return self._receive(queue, no_ack=queue in self._noack_queues)

    def _receive(self, queue: str, *, no_ack: bool) -> dict[str, Any]:
        if queue in self._cursors:
            return self._next_broadcast(queue)
        while True:
            with self._db.connect() as conn:
                # A read first: an empty queue costs no write lock.
                if first_row(conn.execute(READY, (queue,))) is None:
                    raise Empty()
                now = time.time()
                if no_ack:
                    rows = conn.execute(TAKE, (queue, now)).fetchall()
                else:
                    host, pid, start = current_owner()
                    rows = conn.execute(CLAIM, (now, host, pid, start, queue, now)).fetchall()
            if not rows:
                raise Empty()
            message_id, payload, deliveries, token = rows[0]
            try:
                message = _decode(payload, self._accepted)
            except _Unreadable as exc:
                self._set_aside(queue, message_id, token, payload, str(exc), taken=no_ack)
                continue
            properties = message["properties"]
            properties["delivery_tag"] = f"c:{message_id}:{token}"
            properties.setdefault("delivery_info", {})["redelivered"] = deliveries > 1
            return message

    def _set_aside(
        self, queue: str, message_id: int, token: int, payload: str, reason: str, *, taken: bool
    ) -> None:
        """Move an unreadable message to ``dead_letters`` (``taken``: already deleted)."""
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT INTO dead_letters (queue, payload, reason, created) VALUES (?, ?, ?, ?)",
                (queue, payload, reason, time.time()),
            )
            if not taken:
                conn.execute(
                    "DELETE FROM messages WHERE id = ? AND claim_token = ?", (message_id, token)
                )
        logger.error(
            "embedded broker: message %d in queue %r set aside in the dead_letters table of %s: %s",
            message_id,
            queue,
            self.connection.db_path,
            reason,
        )

    def _next_broadcast(self, queue: str) -> dict[str, Any]:
        while True:
            with self._db.connect() as conn:
                row = first_row(
                    conn.execute(
                        "SELECT id, payload FROM broadcasts WHERE exchange = ? AND id > ? "
                        "ORDER BY id LIMIT 1",
                        (self._fanout_queues[queue], self._cursors[queue]),
                    )
                )
            if row is None:
                raise Empty()
            self._cursors[queue] = row[0]
            try:
                message = _decode(row[1], self._accepted)
            except _Unreadable as exc:
                logger.error("embedded broker: broadcast %d skipped: %s", row[0], exc)
                continue
            message["properties"]["delivery_tag"] = f"b:{row[0]}:{queue}"
            return message

    def basic_get(self, queue: str, no_ack: bool = False, **kwargs: Any) -> Any:
        try:
            message = self.Message(self._receive(queue, no_ack=no_ack), channel=self)
        except Empty:
            return None
        if not no_ack:
            self.qos.append(message, str(message.delivery_tag))
        return message

    def basic_consume(self, queue: str, no_ack: bool, *args: Any, **kwargs: Any) -> Any:
        if no_ack:
            self._noack_queues.add(queue)
        exchange = self._fanout_queues.get(queue)
        if exchange is not None and queue not in self._cursors:
            with self._db.connect() as conn:
                self._cursors[queue] = first_row(
                    conn.execute("SELECT COALESCE(MAX(id), 0) FROM broadcasts")
                )[0]
        self._consumed.add(queue)
        return super().basic_consume(queue, no_ack, *args, **kwargs)

    def basic_cancel(self, consumer_tag: str) -> Any:
        queue = self._tag_to_queue.get(consumer_tag)
        result = super().basic_cancel(consumer_tag)
        if queue is not None and queue not in self._active_queues:
            self._noack_queues.discard(queue)
            self._cursors.pop(queue, None)
        return result

    def _delete_claimed(self, delivery_tag: str) -> None:
        claim = _claim_tag(delivery_tag)
        if claim is not None:
            # Deletes a restored message not yet re-claimed too: the work is done. One that
            # another consumer claimed since has a new token; that consumer will ack it.
            with self._db.connect() as conn:
                conn.execute("DELETE FROM messages WHERE id = ? AND claim_token = ?", claim)

    def _unclaim(self, delivery_tag: str) -> None:
        claim = _claim_tag(delivery_tag)
        if claim is not None:
            with self._db.connect() as conn:
                conn.execute(f"{UNCLAIM} AND id = ? AND claim_token = ?", claim)

    # -- housekeeping ---------------------------------------------------------------------

    def _maintain(self) -> None:
        housekeeping(
            self._db,
            visibility_timeout=float(self.visibility_timeout),
            broadcast_ttl=float(self.broadcast_ttl),
        )

    def close(self) -> None:
        if self.closed:
            return
        if self._pid != os.getpid():  # inherited across fork: the parent owns the state
            self.closed = True
            return
        consumed_auto_delete = self._consumed & self._auto_delete
        super().close()
        try:
            for queue in consumed_auto_delete:
                self._delete(queue)
        except sqlite3.Error:
            logger.warning("could not delete auto-delete queues on close", exc_info=True)
        finally:
            self._db.close()


_stopping = threading.Event()

#: Longest wait, in seconds, of a drain while every prefetch slot is taken.
SATURATED_MAX_WAIT = 0.05
#: Longest delay, in seconds, of the event loop's re-checks after a change.
RECHECK_MAX = 0.064


def stop_waiting(stopping: bool = True) -> None:
    """Make idle drains in this process return at once (or, with ``False``, wait again).

    Celery's blocking loop (``synloop``, used for transports without async I/O) calls
    ``drain_events(timeout=2.0)`` and checks for a shutdown only between calls; ending idle
    drains early makes a warm shutdown take at most one waker step, not 2-4 s. Set by
    Celery's documented ``worker_shutting_down`` signal, and by the kit's in-thread test
    worker when it stops. An early return is harmless: the loop just drains again.
    """
    if stopping:
        _stopping.set()
    else:
        _stopping.clear()


class Transport(virtual.Transport):
    """kombu transport for ``tqsqlite:////abs/path/broker.sqlite3`` URLs."""

    if TYPE_CHECKING:
        cycle: FairCycle
        _avail_channels: list[Channel]

    Channel = Channel

    driver_type = "sqlite"
    driver_name = "sqlite3"
    polling_interval = 1.0
    #: Seconds between checks for expired claims and dead owners.
    maintenance_interval = 1.0

    implements = virtual.Transport.implements.extend(
        asynchronous=True,
        exchange_type=frozenset(["direct", "topic", "fanout"]),
        heartbeats=False,
    )
    connection_errors = (*virtual.Transport.connection_errors, sqlite3.OperationalError)

    def __init__(self, client: Any, **kwargs: Any) -> None:
        self.db_path = path_from_location(client.virtual_host)
        super().__init__(client, **kwargs)
        self.use_inotify = bool(client.transport_options.get("use_inotify", True))
        self._waker: Waker | None = None
        self._next_maintenance = 0.0
        self._saturated_step = MIN_DELAY
        self._hub: Any = None
        self._hub_fd: int | None = None
        self._recheck: float | None = None  # the next re-check's delay, while one is due

    @property
    def default_connection_params(self) -> dict[str, Any]:
        # No host to default to: kombu would log "No hostname was supplied" otherwise.
        return {"hostname": None, "port": None}

    def driver_version(self) -> str:
        return sqlite3.sqlite_version

    def establish_connection(self) -> Any:
        transport = super().establish_connection()
        channel = self._avail_channels[-1]
        try:
            with channel._db.connect():
                pass  # fail here, as a connection error, if the file cannot be opened
        except BaseException:
            # Do not leave the channel for the next connection to pick up: kombu's
            # failover would hand it out, bound to the file that could not be opened.
            self._avail_channels.remove(channel)
            channel._db.close()
            raise
        return transport

    def _get_waker(self) -> Waker:
        if self._waker is None:
            self._waker = Waker(
                self.db_path.parent,
                [self.db_path.name],
                max_delay=self.polling_interval or 1.0,
                use_inotify=self.use_inotify,
            )
        return self._waker

    def drain_events(  # type: ignore[override]  # kombu's own signature, as in its stubs
        self, connection: Any, timeout: float | None = None
    ) -> None:
        """Deliver one message; between empty checks wait on the waker, not a fixed sleep.

        While every prefetch slot of a channel is taken, the call ends with the timeout
        error within 1-50 ms rather than at ``timeout``: nothing can be delivered until an
        ack, and the caller may be what runs that ack (see below).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        waker = self._get_waker()
        while True:
            self._maybe_maintain()
            try:
                self.cycle.get(self._deliver, timeout=timeout)
            except Empty:
                pass
            else:
                waker.reset()
                self._saturated_step = MIN_DELAY
                return
            remaining = None
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError()  # socket.timeout, which kombu expects
            if _stopping.is_set():
                raise TimeoutError()
            if self._saturated():
                # Every prefetch slot is taken. Celery before 5.7 runs the acks of tasks the
                # pool accepted only when this call returns (``Consumer.call_soon`` without
                # an event loop), so waiting the loop's full 2 s here would idle the pool.
                # Return soon instead (1 ms, 2 ms, ... up to SATURATED_MAX_WAIT).
                step = self._saturated_step
                self._saturated_step = min(step * 2, SATURATED_MAX_WAIT)
                waker.wait(step if remaining is None else min(step, remaining))
                raise TimeoutError()
            waker.wait(remaining)

    # -- the worker's event loop -------------------------------------------------------

    def register_with_event_loop(self, connection: Any, loop: Any) -> None:
        """Deliver from the worker's event loop (kombu's hub), as kombu's Redis transport does.

        The loop watches the waker's inotify descriptor, so a publish, an ack or a
        broadcast from any process wakes it at once, and control commands, heartbeats and
        events are handled while the pool is busy. A timer checks every
        ``polling_interval`` too, for a missed event or a platform without inotify, and
        runs the housekeeping.
        """
        waker = self._get_waker()
        self._hub = loop
        fd = waker.fileno()
        if fd is not None:
            self._hub_fd = fd
            loop.add_reader(fd, self._on_waker_event)
        loop.call_repeatedly(self.polling_interval or 1.0, self._on_hub_timer)
        loop.call_soon(self._hub_check, MIN_DELAY)

    def _on_waker_event(self) -> None:
        waker = self._waker
        if waker is not None and waker.consume():
            self._schedule_recheck(MIN_DELAY, now=True)

    def _on_hub_timer(self) -> None:
        self._maybe_maintain()
        self._deliver_ready()

    def _schedule_recheck(self, delay: float, *, now: bool = False) -> None:
        pending = self._recheck is not None
        self._recheck = delay
        if pending:
            return  # the chain already running picks the shorter delay up
        if now:
            self._hub.call_soon(self._hub_check, delay)
        else:
            self._hub.call_later(delay, self._hub_check, delay)

    def _hub_check(self, delay: float) -> None:
        """Deliver what is ready; after a change, look again 1, 2, 4, ... 64 ms later.

        inotify fires at the writer's ``write(2)``, a moment before its commit is visible,
        so a check that found nothing right after an event is repeated a little later.
        """
        self._recheck = None
        if self._hub is None:
            return
        if self._deliver_ready():
            self._schedule_recheck(MIN_DELAY, now=True)
        elif delay < RECHECK_MAX:
            self._schedule_recheck(delay * 2)

    def _deliver_ready(self, limit: int = 100) -> bool:
        """Deliver up to ``limit`` ready messages; whether any was delivered."""
        delivered = 0
        while delivered < limit:
            try:
                self.cycle.get(self._deliver, timeout=0)
            except Empty:
                break
            delivered += 1
        return delivered > 0

    def _saturated(self) -> bool:
        """Whether a channel has as many unacked messages as its prefetch count allows."""
        channels = cast("list[Channel]", self.channels)
        return any(not channel.qos.can_consume() for channel in channels)

    def _maybe_maintain(self) -> None:
        now = time.monotonic()
        channels = cast("list[Channel]", self.channels)
        if now < self._next_maintenance or not channels:
            return
        self._next_maintenance = now + self.maintenance_interval
        try:
            channels[0]._maintain()
        except sqlite3.Error:
            logger.warning("broker housekeeping failed; will retry", exc_info=True)

    def close_connection(self, connection: Any) -> None:
        if self._hub is not None and self._hub_fd is not None:
            self._hub.remove(self._hub_fd)
        self._hub = self._hub_fd = None
        super().close_connection(connection)
        if self._waker is not None:
            self._waker.close()
            self._waker = None
