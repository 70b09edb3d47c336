"""Raw access to result records: read without rebuilding exceptions, add without overwriting.

Celery's own ``AsyncResult`` rebuilds exception classes from whatever the backend holds;
the kit reads the stored JSON instead and treats every field as data. Two backend families
are supported natively: the kit's SQLite backend and Celery's key/value backends (Redis and
friends). Others fall back to Celery's reader with exception rebuilding switched off.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from celery import Celery
from celery.backends.base import BaseKeyValueStoreBackend, DisabledBackend
from kombu.exceptions import ContentDisallowed, DecodeError

from taskqueue_kit._exceptions import ConfigurationError, ResultDecodeError

__all__ = [
    "SENT",
    "add_if_absent",
    "begin_add_if_absent",
    "discard_if_sent",
    "encode_sent_meta",
    "read_meta",
    "sent_meta",
]

logger = logging.getLogger("taskqueue_kit")

SENT = "SENT"
"""The state the kit records for a task that was sent and not yet picked up."""


def _backend(app: Celery) -> Any:
    backend: Any = app.backend
    if isinstance(backend, DisabledBackend):
        raise ConfigurationError(
            "this app has no result backend: set TaskQueueSettings.result_backend",
            field="result_backend",
        )
    return backend


def read_meta(app: Celery, task_id: str) -> dict[str, Any] | None:
    """The stored record of a task as plain JSON data, or ``None`` when there is none.

    Raises:
        ResultDecodeError: the record is not JSON (a forged pickle, say); nothing in it ran.
    """
    backend = _backend(app)
    own_reader = getattr(backend, "read_meta", None)
    if callable(own_reader):
        meta = own_reader(task_id)
        return meta if isinstance(meta, dict) else None
    if isinstance(backend, BaseKeyValueStoreBackend):
        raw = backend.get(backend.get_key_for_task(task_id))
        if not raw:
            return None
        try:
            meta = backend.decode(raw)
        except (ContentDisallowed, DecodeError, ValueError, TypeError) as exc:
            raise ResultDecodeError(
                f"the stored record of task {task_id!r} is not JSON the kit can read: {exc}"
            ) from exc
        if not isinstance(meta, dict):
            raise ResultDecodeError(f"the stored record of task {task_id!r} is not a JSON object")
        return meta
    # Any other backend: Celery's reader, with exception rebuilding turned into a no-op.
    original = backend.meta_from_decoded
    try:
        backend.meta_from_decoded = _unchanged
        meta = backend.get_task_meta(task_id, cache=False)
    except (ContentDisallowed, DecodeError) as exc:
        raise ResultDecodeError(f"the stored record of task {task_id!r} is unreadable") from exc
    finally:
        backend.meta_from_decoded = original
    if meta.get("status") == "PENDING" and meta.get("result") is None:
        return None
    return dict(meta)


def _unchanged(meta: dict[str, Any]) -> dict[str, Any]:
    return meta


def sent_meta(task_id: str, name: str, queue: str | None, retries: int) -> dict[str, Any]:
    """The record written for a task just before it is published."""
    return {
        "status": SENT,
        "result": None,
        "traceback": None,
        "children": [],
        "date_done": None,
        "task_id": task_id,
        "name": name,
        "queue": queue,
        "retries": retries,
        "date_sent": datetime.now(UTC).isoformat(),
    }


def encode_sent_meta(backend: Any, meta: dict[str, Any]) -> str | bytes:
    """The sent record as the backend stores it, with the standard library's JSON if it can.

    The record holds only strings, numbers and None, so kombu's JSON encoder (which also
    tags dates and bytes) would write the same text, more slowly.
    """
    if getattr(backend, "serializer", None) == "json" and not getattr(backend, "compression", None):
        return json.dumps(meta)
    encoded: str | bytes = backend.encode(meta)
    return encoded


def add_if_absent(app: Celery, task_id: str, meta: dict[str, Any]) -> bool:
    """Store ``meta`` unless the task already has a record; True when it was stored.

    A fast worker may already have written STARTED, and a retry republishes the same id:
    neither may be overwritten by the ``SENT`` record.
    """
    return begin_add_if_absent(app, task_id, meta)()


def begin_add_if_absent(app: Celery, task_id: str, meta: dict[str, Any]) -> Callable[[], bool]:
    """Start :func:`add_if_absent`; the returned function finishes it and says if it stored.

    A backend that can send the write now and read its reply later (the kit's Redis
    backend) lets the caller publish in between, overlapping two round trips; every other
    backend writes before this returns. Call the returned function exactly once.
    """
    backend = _backend(app)
    own_begin = getattr(backend, "begin_add_meta_if_absent", None)
    if callable(own_begin):
        finish: Callable[[], bool] = own_begin(task_id, meta)
        return finish
    stored = _add_now(backend, task_id, meta)
    return lambda: stored


def discard_if_sent(app: Celery, task_id: str) -> bool:
    """Delete the task's ``SENT`` record after its publish failed for good; True if deleted.

    Otherwise an id that never reached the broker would read ``queued`` forever. Only the
    kit's backends can delete it atomically, and only while it still says ``SENT`` (a worker
    may have received the message after all); with any other backend the record stays.
    """
    discard = getattr(_backend(app), "discard_meta_if_sent", None)
    return bool(discard(task_id)) if callable(discard) else False


def _add_now(backend: Any, task_id: str, meta: dict[str, Any]) -> bool:
    own_adder = getattr(backend, "add_meta_if_absent", None)
    if callable(own_adder):
        return bool(own_adder(task_id, meta))
    if isinstance(backend, BaseKeyValueStoreBackend):
        client = getattr(backend, "client", None)
        key = backend.get_key_for_task(task_id)
        value = backend.encode(meta)
        if client is not None and hasattr(client, "set"):
            expires = getattr(backend, "expires", None)
            ttl = int(expires) if expires else None
            return bool(client.set(key, value, nx=True, ex=ttl))
        if backend.get(key):
            return False
        backend.set(key, value)
        return True
    logger.debug("taskqueue-kit: %s cannot record sent tasks", type(backend).__name__)
    return False
