"""Reading and awaiting task status from asyncio code without blocking the event loop.

``AsyncResult.get()`` inside ``async def`` stops every other request of the server until
the task ends (Celery issues #3884, #6552, #6603). :func:`aget_task_info` reads a status
and :func:`wait_for_task` waits for a final one, and neither holds a thread while waiting:

* on a Redis result backend, redis-py's asyncio client reads the record, and a pub/sub
  subscription to the task's key (on which Celery's Redis backend publishes every state it
  stores) wakes the waiter;
* on the embedded backend, the loop watches the results file's inotify descriptor, the
  change notification its workers use (a short backoff poll where inotify is missing); the
  reads themselves, a few microseconds of SQLite, run in the default executor so a locked
  file never stalls the loop;
* on any other backend, reads run in the default executor, between backoff sleeps.

Cancelling the awaiting coroutine releases its subscription or watch.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from collections.abc import AsyncIterator
from typing import Any

from celery import Celery, current_app

from taskqueue_kit._exceptions import ResultDecodeError, TaskNotFound
from taskqueue_kit._initialised import ensure_initialised
from taskqueue_kit._results import decode_record
from taskqueue_kit._sqlite._waker import Waker
from taskqueue_kit._sqlite.backend import SQLiteBackend
from taskqueue_kit._taskinfo import (
    TaskInfo,
    decode_error_info,
    get_task_info,
    info_from_meta,
    validate_task_id,
)

__all__ = ["aget_task_info", "wait_for_task"]

#: Longest sleep between two reads where nothing announces a change, in seconds.
MAX_POLL = 0.5
_FIRST_POLL = 0.005

# One asyncio Redis client per event loop and backend URL (a client is bound to its loop).
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Any]] = (
    weakref.WeakKeyDictionary()
)


def _redis_url(backend: Any) -> str | None:
    """The URL of a Redis result backend, or ``None`` for any other backend."""
    url = getattr(backend, "url", None)
    if not url or not hasattr(getattr(backend, "client", None), "pubsub"):
        return None
    return str(url) if str(url).split(":", 1)[0] in {"redis", "rediss"} else None


def _async_redis(url: str) -> Any:
    import redis.asyncio

    loop = asyncio.get_running_loop()
    clients = _clients.setdefault(loop, {})
    client = clients.get(url)
    if client is None:
        client = clients[url] = redis.asyncio.Redis.from_url(url)
    return client


def _info_from_raw(app: Celery, task_id: str, raw: Any) -> TaskInfo:
    try:
        meta = None if raw is None else decode_record(app.backend, task_id, raw)
    except ResultDecodeError as exc:
        return decode_error_info(task_id, exc)
    return info_from_meta(task_id, meta)


async def aget_task_info(task_id: str, app: Celery | None = None) -> TaskInfo:
    """:func:`~taskqueue_kit.get_task_info` for ``async def`` code: never blocks the loop.

    Raises:
        InvalidTaskId: the id is malformed.
        ConfigurationError: the kit was never applied to the app (``init_celery``).
    """
    validate_task_id(task_id)
    app = ensure_initialised(current_app if app is None else app)
    backend: Any = app.backend
    url = _redis_url(backend)
    if url is not None:
        raw = await _async_redis(url).get(backend.get_key_for_task(task_id))
        return _info_from_raw(app, task_id, raw)
    return await asyncio.to_thread(get_task_info, task_id, app)


async def wait_for_task(
    task_id: str, app: Celery | None = None, *, timeout: float | None = None
) -> TaskInfo:
    """Wait until the task is in a final state (succeeded, failed, revoked) and return it.

    Args:
        task_id: The id ``delay()`` returned.
        app: The Celery app; the current app when omitted.
        timeout: Seconds to wait at most; ``None`` waits as long as it takes.

    Raises:
        TimeoutError: the task was not finished when ``timeout`` passed.
        TaskNotFound: the result backend has no record of the id (never sent, or expired).
        InvalidTaskId: the id is malformed.
        ConfigurationError: the kit was never applied to the app (``init_celery``).
    """
    validate_task_id(task_id)
    app = ensure_initialised(current_app if app is None else app)
    deadline = None if timeout is None else time.monotonic() + timeout
    async with _changes(app, task_id) as changed:
        info = await aget_task_info(task_id, app)
        if info.state == "unknown":
            raise TaskNotFound(f"no record of task {task_id!r}: never sent, or expired")
        delay = _FIRST_POLL
        while not info.ready:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise TimeoutError(f"task {task_id!r} was still {info.state} after {timeout} s")
            step = delay if remaining is None else min(delay, remaining)
            # After a change look now, and again soon (a commit shows a moment after its
            # event, see the waker); otherwise back off.
            delay = _FIRST_POLL if await changed(step) else min(delay * 2, MAX_POLL)
            info = await aget_task_info(task_id, app)
    return info


@contextlib.asynccontextmanager
async def _changes(app: Celery, task_id: str) -> AsyncIterator[Any]:
    """Yield ``changed(timeout) -> bool``: wait at most ``timeout`` for a sign of change."""
    backend: Any = app.backend
    url = _redis_url(backend)
    if url is not None:
        pubsub = _async_redis(url).pubsub()
        await pubsub.subscribe(backend.get_key_for_task(task_id))
        try:

            async def on_message(timeout: float) -> bool:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=timeout)
                return message is not None

            yield on_message
        finally:
            with contextlib.suppress(Exception):  # a closed connection releases it too
                await pubsub.unsubscribe()
            # redis-py 5.0.1 renamed reset() to aclose() (5.0.0, the floor, has only reset).
            await (getattr(pubsub, "aclose", None) or pubsub.reset)()
        return
    fd = None
    waker = None
    event = asyncio.Event()
    loop = asyncio.get_running_loop()
    if isinstance(backend, SQLiteBackend):
        waker = Waker(backend.path.parent, [backend.path.name], max_delay=MAX_POLL)
        fd = waker.fileno()
        if fd is not None:
            watch = waker

            def on_readable() -> None:
                if watch.consume():
                    event.set()

            loop.add_reader(fd, on_readable)
    try:

        async def on_change(timeout: float) -> bool:
            if fd is None:
                await asyncio.sleep(timeout)
                return False
            try:
                await asyncio.wait_for(event.wait(), timeout)
            except TimeoutError:
                return False
            event.clear()
            return True

        yield on_change
    finally:
        if fd is not None:
            loop.remove_reader(fd)
        if waker is not None:
            waker.close()
