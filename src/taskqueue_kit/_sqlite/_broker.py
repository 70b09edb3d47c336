"""The broker database: its schema, the claim statements, and the housekeeping.

Messages are claimed rather than removed when delivered; a claim records when, and which
process (host identity, pid, start time) holds it. Housekeeping, run by every consuming
process about once a second, gives back claims past the visibility timeout and claims of
processes on this host that died, drops auto-delete queues whose declaring process died,
and forgets old broadcasts.
"""

from __future__ import annotations

import logging
import time

from taskqueue_kit._sqlite._db import Database, current_owner, is_alive

__all__ = [
    "CLAIM",
    "PUT",
    "READY",
    "SCHEMA",
    "SCHEMA_VERSION",
    "TAKE",
    "UNCLAIM",
    "housekeeping",
]

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 3
SCHEMA = (
    # Row ids may be reused once the newest row is deleted (no AUTOINCREMENT: it costs a page
    # write per publish), so a delivery tag carries a random per-claim token as well.
    """CREATE TABLE IF NOT EXISTS messages (
        id INTEGER PRIMARY KEY,
        queue TEXT NOT NULL,
        payload TEXT NOT NULL,
        deliveries INTEGER NOT NULL DEFAULT 0,
        claim_token INTEGER,
        claimed_at REAL,
        owner_host TEXT,
        owner_pid INTEGER,
        owner_start INTEGER)""",
    """CREATE INDEX IF NOT EXISTS messages_claimed ON messages (claimed_at)
        WHERE claimed_at IS NOT NULL""",
    """CREATE TABLE IF NOT EXISTS queues (
        name TEXT PRIMARY KEY,
        auto_delete INTEGER NOT NULL,
        owner_host TEXT,
        owner_pid INTEGER,
        owner_start INTEGER)""",
    "CREATE TABLE IF NOT EXISTS exchanges (name TEXT PRIMARY KEY, type TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS bindings (
        exchange TEXT NOT NULL,
        routing_key TEXT NOT NULL,
        pattern TEXT,
        queue TEXT NOT NULL,
        PRIMARY KEY (exchange, routing_key, queue))""",
    "CREATE INDEX IF NOT EXISTS bindings_queue ON bindings (queue)",
    # Messages no consumer can read (not JSON, not a kombu message, a content type not
    # accepted), moved aside by the consumer that found them; nothing reads them back.
    """CREATE TABLE IF NOT EXISTS dead_letters (
        id INTEGER PRIMARY KEY,
        queue TEXT NOT NULL,
        payload TEXT NOT NULL,
        reason TEXT NOT NULL,
        created REAL NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS broadcasts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        exchange TEXT NOT NULL,
        payload TEXT NOT NULL,
        created REAL NOT NULL)""",
    # Version 3: priorities (AMQP's order: higher first) and per-message expiry (AMQP's
    # ``expiration``); run once, on a new file or on one of an earlier version.
    "ALTER TABLE messages ADD COLUMN priority INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE messages ADD COLUMN expires_at REAL",
    "DROP INDEX IF EXISTS messages_ready",
    """CREATE INDEX IF NOT EXISTS messages_next ON messages (queue, priority DESC, id)
        WHERE claimed_at IS NULL""",
)

READY = "SELECT 1 FROM messages WHERE queue = ? AND claimed_at IS NULL LIMIT 1"
# Parameters: the queue, then the current time (a message past its expiry is never taken).
_NEXT = """(SELECT id FROM messages WHERE queue = ? AND claimed_at IS NULL
    AND (expires_at IS NULL OR expires_at > ?) ORDER BY priority DESC, id LIMIT 1)"""
CLAIM = f"""UPDATE messages SET claimed_at = ?, owner_host = ?, owner_pid = ?, owner_start = ?,
    deliveries = deliveries + 1, claim_token = random() WHERE id = {_NEXT}
    RETURNING id, payload, deliveries, claim_token"""
TAKE = f"DELETE FROM messages WHERE id = {_NEXT} RETURNING id, payload, deliveries + 1, 0"
PUT = "INSERT INTO messages (queue, payload, priority, expires_at) VALUES (?, ?, ?, ?)"
UNCLAIM = """UPDATE messages SET claimed_at = NULL, owner_host = NULL, owner_pid = NULL,
    owner_start = NULL WHERE claimed_at IS NOT NULL"""


def housekeeping(db: Database, *, visibility_timeout: float, broadcast_ttl: float) -> None:
    """Give back claims that expired or whose owner died; drop dead owners' queues and
    messages past their expiry."""
    now = time.time()
    host = current_owner()[0]
    with db.connect() as conn:
        expired = conn.execute(
            f"{UNCLAIM} AND claimed_at < ?", (now - visibility_timeout,)
        ).rowcount
        if expired:
            logger.warning("restored %d message(s) past the visibility timeout", expired)
        owners = conn.execute(
            "SELECT DISTINCT owner_pid, owner_start FROM messages "
            "WHERE claimed_at IS NOT NULL AND owner_host = ?",
            (host,),
        ).fetchall()
        for pid, start in owners:
            if not is_alive(pid, start):
                restored = conn.execute(
                    f"{UNCLAIM} AND owner_host = ? AND owner_pid = ? AND owner_start = ?",
                    (host, pid, start),
                ).rowcount
                logger.warning("restored %d message(s) of dead process %d", restored, pid)
        queues = conn.execute(
            "SELECT name, owner_pid, owner_start FROM queues WHERE auto_delete AND owner_host = ?",
            (host,),
        ).fetchall()
        conn.execute("DELETE FROM broadcasts WHERE created < ?", (now - broadcast_ttl,))
        conn.execute("DELETE FROM messages WHERE expires_at <= ? AND claimed_at IS NULL", (now,))
    for name, pid, start in queues:
        if not is_alive(pid, start):
            with db.transaction() as conn:
                owned = conn.execute(
                    "DELETE FROM queues WHERE name = ? AND owner_host = ? AND owner_pid = ? "
                    "AND owner_start = ?",
                    (name, host, pid, start),
                ).rowcount
                if owned:
                    conn.execute("DELETE FROM messages WHERE queue = ?", (name,))
                    conn.execute("DELETE FROM bindings WHERE queue = ?", (name,))
