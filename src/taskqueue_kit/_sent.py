"""The ``SENT`` record: written when a task is published, so ``unknown`` and ``queued`` differ.

It hangs on Celery's documented ``before_task_publish`` signal, which fires after routing
(so the queue is known) and right before the message goes to the broker. The signal does
not say which app publishes; :class:`~taskqueue_kit._task.KitTask` says so for the length
of its ``apply_async`` (retries, groups and chords go through it too), and the app's
router (:class:`~taskqueue_kit._routing.AppRouter`) for ``app.send_task`` by name, each
in a context variable. A send through neither records nothing.

Celery logs and swallows exceptions raised in signal handlers; a record that cannot be
written is logged here and never stops the task from being sent.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from celery import Celery
from celery.signals import before_task_publish

from taskqueue_kit._results import add_if_absent, discard_if_sent, sent_meta

__all__ = ["TRACK_SENT_KEY", "note_routed", "sending"]

logger = logging.getLogger("taskqueue_kit")

TRACK_SENT_KEY = "taskqueue_track_sent"


@dataclass
class _Send:
    """One ``apply_async`` in progress: its app, and the ids whose record it wrote."""

    app: Celery
    recorded: list[str] = field(default_factory=list)


_current: ContextVar[_Send | None] = ContextVar("taskqueue_kit_send", default=None)
# The app whose router routed the task being published, for ``app.send_task`` by name:
# Celery routes and then publishes in the same call, on the same thread.
_routed: ContextVar[tuple[Celery, str] | None] = ContextVar("taskqueue_kit_routed", default=None)


def note_routed(app: Celery, name: str) -> None:
    """Say that ``app``'s router just routed task ``name`` (called by the app's router)."""
    _routed.set((app, name))


@contextlib.contextmanager
def sending(app: Celery) -> Iterator[None]:
    """Publishes in this block are ``app``'s; a failed publish takes its record back.

    Celery's own publish retries are over when an exception leaves the block: the task
    never reached the broker, so its ``SENT`` record is deleted again (only while it still
    says ``SENT``: a worker may have received the message after all).
    """
    if not app.conf.get(TRACK_SENT_KEY):
        yield
        return
    send = _Send(app)
    token = _current.set(send)
    try:
        yield
    except BaseException:
        for task_id in send.recorded:
            try:
                discard_if_sent(app, task_id)
            except Exception:
                logger.warning(
                    "taskqueue-kit: could not take back the sent record of task %s",
                    task_id,
                    exc_info=True,
                )
        raise
    finally:
        _current.reset(token)


def _queue_name(routing_key: str | None, declare: Any) -> str | None:
    for entity in declare or ():
        name = getattr(entity, "name", None)
        if isinstance(name, str) and getattr(entity, "routing_key", None) == routing_key:
            return name
    return routing_key


@before_task_publish.connect(weak=False)
def _record_sent(
    sender: str | None = None,
    headers: dict[str, Any] | None = None,
    routing_key: str | None = None,
    declare: Any = None,
    **_: Any,
) -> None:
    if not headers or "id" not in headers:
        return
    task_id = str(headers["id"])
    name = str(headers.get("task") or sender)
    send, routed = _current.get(), _routed.get()
    _routed.set(None)
    if send is None:
        if routed is None or routed[1] != name or not routed[0].conf.get(TRACK_SENT_KEY):
            return
        send = _Send(routed[0])  # a send by name: recorded, but not taken back on failure
    meta = sent_meta(task_id, name, _queue_name(routing_key, declare), headers.get("retries", 0))
    try:
        if add_if_absent(send.app, task_id, meta):
            send.recorded.append(task_id)
    except Exception:
        logger.warning(
            "taskqueue-kit: could not keep the sent record of task %s", task_id, exc_info=True
        )
