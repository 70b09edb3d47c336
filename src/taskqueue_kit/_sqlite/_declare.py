"""Exchanges, queues and bindings kept in the broker database, shared by every process.

kombu's virtual transports keep declarations in memory, per process; here a publisher in one
process must route by the bindings a worker declared in another, so direct and topic
bindings are rows. Fanout bindings stay local: broadcasts go to a log that each consuming
channel reads with its own cursor (see the transport).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, cast

from kombu.transport import virtual

from taskqueue_kit._sqlite._broker import SCHEMA, SCHEMA_VERSION
from taskqueue_kit._sqlite._db import Database, current_owner, first_row

if TYPE_CHECKING:
    from taskqueue_kit._sqlite.transport import Transport

__all__ = ["DeclaringChannel"]


class DeclaringChannel(virtual.Channel):
    """A kombu channel with its own SQLite connection and declarations stored in it."""

    if TYPE_CHECKING:
        connection: Transport

    busy_timeout: float = 10.0
    from_transport_options = (*virtual.Channel.from_transport_options, "busy_timeout")

    def __init__(self, connection: Transport, **kwargs: Any) -> None:
        super().__init__(connection, **kwargs)
        self._pid = os.getpid()
        self._db = Database(
            connection.db_path,
            SCHEMA,
            version=SCHEMA_VERSION,
            busy_timeout=float(self.busy_timeout),
        )
        self._fanout_queues: dict[str, str] = {}  # queue -> fanout exchange it is bound to
        self._cursors: dict[str, int] = {}  # consumed fanout queue -> last broadcast seen
        self._auto_delete: set[str] = set()

    def _new_queue(self, queue: str, auto_delete: bool = False, **kwargs: Any) -> None:
        host, pid, start = current_owner() if auto_delete else (None, None, None)
        if auto_delete:
            self._auto_delete.add(queue)
        with self._db.connect() as conn:
            conn.execute(
                """INSERT INTO queues (name, auto_delete, owner_host, owner_pid, owner_start)
                VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET
                auto_delete = excluded.auto_delete, owner_host = excluded.owner_host,
                owner_pid = excluded.owner_pid, owner_start = excluded.owner_start""",
                (queue, int(auto_delete), host, pid, start),
            )

    def _has_queue(self, queue: str, **kwargs: Any) -> bool:
        with self._db.connect() as conn:
            row = first_row(
                conn.execute(
                    "SELECT 1 FROM queues WHERE name = ? UNION ALL "
                    "SELECT 1 FROM bindings WHERE queue = ? LIMIT 1",
                    (queue, queue),
                )
            )
        return row is not None

    def _size(self, queue: str) -> int:
        with self._db.connect() as conn:
            row = first_row(
                conn.execute(
                    "SELECT COUNT(*) FROM messages WHERE queue = ? AND claimed_at IS NULL", (queue,)
                )
            )
        return int(row[0])

    def _purge(self, queue: str) -> int:
        with self._db.connect() as conn:
            cursor = conn.execute(
                "DELETE FROM messages WHERE queue = ? AND claimed_at IS NULL", (queue,)
            )
        return cursor.rowcount

    def _delete(self, queue: str, *args: Any, **kwargs: Any) -> None:
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM messages WHERE queue = ?", (queue,))
            conn.execute("DELETE FROM bindings WHERE queue = ?", (queue,))
            conn.execute("DELETE FROM queues WHERE name = ?", (queue,))

    def queue_delete(
        self, queue: str, if_unused: bool = False, if_empty: bool = False, **kwargs: Any
    ) -> None:
        if if_empty and self._size(queue):
            return
        self._delete(queue)
        self.state.queue_bindings_delete(queue)
        self._fanout_queues.pop(queue, None)
        self._cursors.pop(queue, None)
        self._auto_delete.discard(queue)

    def exchange_declare(
        self,
        exchange: str | None = None,
        type: str = "direct",
        durable: bool = False,
        auto_delete: bool = False,
        arguments: dict[str, Any] | None = None,
        nowait: bool = False,
        passive: bool = False,
    ) -> None:
        type = type or "direct"
        exchange = exchange or f"amq.{type}"
        if passive and exchange not in self._exchanges() and self._stored_type(exchange):
            return
        super().exchange_declare(
            exchange, type, durable, auto_delete, arguments, nowait=nowait, passive=passive
        )
        if not passive:
            with self._db.connect() as conn:
                conn.execute(
                    "INSERT OR IGNORE INTO exchanges (name, type) VALUES (?, ?)", (exchange, type)
                )

    def exchange_delete(self, exchange: str, if_unused: bool = False, nowait: bool = False) -> None:
        super().exchange_delete(exchange, if_unused=if_unused, nowait=nowait)
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM bindings WHERE exchange = ?", (exchange,))
            conn.execute("DELETE FROM exchanges WHERE name = ?", (exchange,))

    def _exchanges(self) -> dict[str, dict[str, Any]]:
        return cast("dict[str, dict[str, Any]]", self.state.exchanges)

    def _stored_type(self, exchange: str) -> str | None:
        with self._db.connect() as conn:
            row = first_row(conn.execute("SELECT type FROM exchanges WHERE name = ?", (exchange,)))
        return None if row is None else str(row[0])

    def typeof(self, exchange: str, default: str = "direct") -> Any:
        """Exchange type from this process's declarations, else from the database."""
        declared = self._exchanges().get(exchange)
        kind = declared["type"] if declared else self._stored_type(exchange) or default
        return self.exchange_types[kind]

    def get_table(self, exchange: str) -> list[tuple[str, str, str]]:
        with self._db.connect() as conn:
            rows = conn.execute(
                "SELECT routing_key, pattern, queue FROM bindings WHERE exchange = ?", (exchange,)
            ).fetchall()
        return [(str(r[0]), str(r[1] or ""), str(r[2])) for r in rows]

    def queue_bind(
        self,
        queue: str,
        exchange: str | None = None,
        routing_key: str = "",
        arguments: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        exchange = exchange or "amq.direct"
        kind = self.typeof(exchange)
        if kind.type == "fanout":
            self._fanout_queues[queue] = exchange
        else:
            key, pattern, _ = kind.prepare_bind(queue, exchange, routing_key, arguments)
            with self._db.connect() as conn:
                conn.execute(
                    "INSERT OR IGNORE INTO bindings (exchange, routing_key, pattern, queue) "
                    "VALUES (?, ?, ?, ?)",
                    (exchange, key or "", pattern, queue),
                )
        self.state.binding_declare(queue, exchange, routing_key, arguments)

    def queue_unbind(
        self,
        queue: str,
        exchange: str | None = None,
        routing_key: str = "",
        arguments: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        exchange = exchange or "amq.direct"
        self.state.binding_delete(queue, exchange, routing_key)
        if self._fanout_queues.get(queue) == exchange:
            self._fanout_queues.pop(queue)
            self._cursors.pop(queue, None)
        with self._db.connect() as conn:
            conn.execute(
                "DELETE FROM bindings WHERE exchange = ? AND routing_key = ? AND queue = ?",
                (exchange, routing_key or "", queue),
            )
