"""Raw access to result records: read without rebuilding exceptions, add without overwriting.

Celery's own ``AsyncResult`` rebuilds exception classes from whatever the backend holds;
the kit reads the stored JSON instead and treats every field as data. Two backend families
are supported natively: the kit's SQLite backend and Celery's key/value backends (Redis and
friends). Others fall back to Celery's reader with exception rebuilding switched off.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from celery import Celery
from celery.backends.base import BaseKeyValueStoreBackend, DisabledBackend
from kombu.exceptions import ContentDisallowed, DecodeError

from taskqueue_kit._exceptions import ConfigurationError, ResultDecodeError

__all__ = [
    "SENT",
    "WithoutArguments",
    "add_if_absent",
    "decode_record",
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
        return decode_record(backend, task_id, raw) if raw else None
    # Any other backend: Celery's public reader. Since Celery 5.2.2 it rebuilds a stored
    # exception only from classes already imported (never importing a module named in the
    # record); the kit turns whatever it rebuilt straight back into strings.
    try:
        meta = dict(backend.get_task_meta(task_id, cache=False))
    except (ContentDisallowed, DecodeError) as exc:
        raise ResultDecodeError(f"the stored record of task {task_id!r} is unreadable") from exc
    if meta.get("status") == "PENDING" and meta.get("result") is None:
        return None
    result = meta.get("result")
    if isinstance(result, BaseException):
        meta["result"] = {
            "exc_type": type(result).__name__,
            "exc_message": [str(arg) for arg in result.args],
        }
    return meta


def decode_record(backend: Any, task_id: str, raw: Any) -> dict[str, Any]:
    """A key/value backend's stored record of a task, as plain JSON data.

    Raises:
        ResultDecodeError: the record is not JSON (a forged pickle, say); nothing in it ran.
    """
    try:
        meta = backend.decode(raw)
    except (ContentDisallowed, DecodeError, ValueError, TypeError) as exc:
        raise ResultDecodeError(
            f"the stored record of task {task_id!r} is not JSON the kit can read: {exc}"
        ) from exc
    if not isinstance(meta, dict):
        raise ResultDecodeError(f"the stored record of task {task_id!r} is not a JSON object")
    return meta


class WithoutArguments:
    """A task request as a result record should see it: everything but the call's arguments.

    With ``result_extended`` Celery copies args and kwargs into every state record: a batch
    of 10,000 reviews would be rewritten with each progress step, and arguments may hold
    personal data. The kit's own backend stores records through it; name, queue, retries
    and worker are kept.
    """

    __slots__ = ("_request",)

    def __init__(self, request: Any) -> None:
        self._request = request

    def __getattr__(self, name: str) -> Any:
        if name in {"args", "kwargs"}:
            return None
        return getattr(self._request, name)


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
    backend = _backend(app)
    own_adder = getattr(backend, "add_meta_if_absent", None)
    if callable(own_adder):
        return bool(own_adder(task_id, meta))
    if isinstance(backend, BaseKeyValueStoreBackend):
        client = getattr(backend, "client", None)
        key = backend.get_key_for_task(task_id)
        value = encode_sent_meta(backend, meta)
        if client is not None and hasattr(client, "set"):  # Redis: atomic SET NX
            expires = getattr(backend, "expires", None)
            ttl = int(expires) if expires else None
            return bool(client.set(key, value, nx=True, ex=ttl))
        if backend.get(key):
            return False
        backend.set(key, value)
        return True
    logger.debug("taskqueue-kit: %s cannot record sent tasks", type(backend).__name__)
    return False


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


def discard_if_sent(app: Celery, task_id: str) -> bool:
    """Delete the task's ``SENT`` record after its publish failed for good; True if deleted.

    Otherwise an id that never reached the broker would read ``queued`` forever. It is
    deleted atomically, and only while it still says ``SENT`` (a worker may have received
    the message after all): by the kit's own backend, or on Redis by a script that checks
    the record's JSON. With any other backend the record stays.
    """
    backend = _backend(app)
    discard = getattr(backend, "discard_meta_if_sent", None)
    if callable(discard):
        return bool(discard(task_id))
    client = getattr(backend, "client", None)
    plain_json = backend.serializer == "json" and not getattr(backend, "compression", None)
    if isinstance(backend, BaseKeyValueStoreBackend) and plain_json and hasattr(client, "eval"):
        key = backend.get_key_for_task(task_id)
        return bool(client.eval(_DISCARD_SENT_SCRIPT, 1, key))  # type: ignore[union-attr]
    return False
