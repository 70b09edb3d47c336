"""What the FastAPI and Flask adapters share, free of either framework.

The adapters only translate HTTP to these functions and back: sending one task or a
batch, the status of a task or a batch, revoking, health, and turning successive status
reads into server-sent events. Every function here blocks on the broker or the result
backend; the FastAPI adapter calls them through worker threads so its event loop never
waits. Refusals are raised as :class:`HTTPProblem`, which each adapter renders its own way.

This module is the adapters' one entry point: it also re-exports the argument models
(:mod:`._arguments`), the response bodies (:mod:`._models`) and the health check
(:mod:`._health`).
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar, cast

from celery import Celery, group
from celery.backends.base import BaseKeyValueStoreBackend
from celery.result import GroupResult
from kombu.exceptions import ContentDisallowed, DecodeError, OperationalError
from pydantic import BaseModel

from taskqueue_kit._exceptions import InvalidTaskId, ResultDecodeError, UnknownQueueError
from taskqueue_kit._masking import mask
from taskqueue_kit._progress import Progress
from taskqueue_kit._task import revoke_task
from taskqueue_kit._taskinfo import TaskInfo, TaskState, get_task_info, validate_task_id
from taskqueue_kit.web._arguments import (
    ExposedTask,
    decode_json,
    expose,
    is_json_content_type,
    lookup,
    require_json,
    validate_arguments,
    validate_batch,
)
from taskqueue_kit.web._health import check_health, health_status
from taskqueue_kit.web._models import (
    BatchAccepted,
    Check,
    GroupInfo,
    Health,
    HTTPProblem,
    TaskAccepted,
    WebOptions,
)

__all__ = [
    "BatchAccepted",
    "Check",
    "Event",
    "EventTracker",
    "ExposedTask",
    "GroupInfo",
    "HTTPProblem",
    "Health",
    "TaskAccepted",
    "WebOptions",
    "aggregate",
    "batch_links",
    "check_health",
    "decode_json",
    "encode_sse",
    "expose",
    "group_info",
    "health_status",
    "is_json_content_type",
    "links",
    "lookup",
    "read_task",
    "require_json",
    "revoke",
    "send",
    "send_batch",
    "task_info",
    "validate_arguments",
    "validate_batch",
]

_FINAL_ORDER = (TaskState.FAILED, TaskState.REVOKED, TaskState.SUCCEEDED)

T = TypeVar("T")


# -- sending --------------------------------------------------------------------------


def _sending(action: Callable[[], T]) -> T:
    """Run a send, turning a broker outage into 503 and a routing mistake into 500.

    The broker's error is shown masked: a client's message may repeat the broker URL.
    """
    try:
        return action()
    except OperationalError as exc:
        raise HTTPProblem(503, mask(f"the broker is unavailable: {exc}")) from exc
    except UnknownQueueError as exc:
        raise HTTPProblem(500, str(exc)) from exc


def _forget_subscriptions(app: Celery, task_ids: Iterable[str]) -> None:
    """Drop the result subscriptions Celery's Redis backend opens for every task sent.

    That backend subscribes the sender to each task's result channel in case it calls
    ``.get()``; a web process never does. Left alone, the subscription is cancelled only
    when the ``AsyncResult`` is garbage-collected, which may be in another thread after
    this one's connection is gone, opening a new connection there that nothing closes.
    ``ResultConsumer.cancel_for`` is the backend's own way to drop one.
    """
    consumer = getattr(app.backend, "result_consumer", None)
    cancel = getattr(consumer, "cancel_for", None)
    if callable(cancel):
        for task_id in task_ids:
            cancel(task_id)


def send(exposed: ExposedTask, body: BaseModel) -> str:
    """Send one task; returns its id once the message is with the broker."""
    args, kwargs = exposed.call(body)
    task_id = str(_sending(lambda: exposed.task.apply_async(args=args, kwargs=kwargs)).id)
    _forget_subscriptions(exposed.task.app, [task_id])
    return task_id


def send_batch(
    app: Celery, exposed: ExposedTask, bodies: Sequence[BaseModel]
) -> tuple[str, list[str]]:
    """Send every item as one task of a group and save the group, without waiting on any.

    The group is saved in the result backend, so its status can be read from any process.

    Returns:
        The group id and the task ids, in the order of ``bodies``.
    """
    signatures = [exposed.task.signature(*exposed.call(body)) for body in bodies]

    def publish() -> tuple[str, list[str]]:
        result = cast(GroupResult, group(signatures, app=app).apply_async())
        result.save(backend=app.backend)
        return str(result.id), [str(child.id) for child in result.results or ()]

    group_id, task_ids = _sending(publish)
    _forget_subscriptions(app, task_ids)
    return group_id, task_ids


def links(base: str, task_id: str) -> TaskAccepted:
    """Status and event URLs of a task, as paths under ``base`` (the router's prefix).

    Paths rather than absolute URLs: they stay right behind a proxy that rewrites hosts.
    """
    return TaskAccepted(
        task_id=task_id, status_url=f"{base}/{task_id}", events_url=f"{base}/{task_id}/events"
    )


def batch_links(base: str, group_id: str, task_ids: list[str]) -> BatchAccepted:
    """Status URL and task ids of a batch just sent."""
    return BatchAccepted(
        group_id=group_id, status_url=f"{base}/groups/{group_id}", task_ids=task_ids
    )


# -- status ---------------------------------------------------------------------------


def _checked(task_id: str, what: str = "task") -> str:
    try:
        return validate_task_id(task_id)
    except InvalidTaskId as exc:
        loc = ["path", f"{what}_id"]
        raise HTTPProblem(
            422, [{"type": "invalid_id", "loc": loc, "msg": str(exc), "input": task_id}]
        ) from exc


def read_task(app: Celery, task_id: str) -> TaskInfo:
    """One status read of an id already checked, as an event stream polls it."""
    return get_task_info(task_id, app=app)


def task_info(app: Celery, task_id: str) -> TaskInfo:
    """Status of a task, for ``GET /tasks/{task_id}``.

    Raises:
        HTTPProblem: 422 for a malformed id, 404 for one the backend has no record of.
    """
    info = read_task(app, _checked(task_id))
    if info.state is TaskState.UNKNOWN:
        raise HTTPProblem(404, f"no task with id {task_id!r}: never sent, or its record expired")
    return info


def revoke(app: Celery, task_id: str) -> TaskInfo:
    """Ask every worker to drop the task and record it as revoked at once.

    A queued task never runs, on the workers that are up or on one started later; a
    running one goes on and its state stays ``started`` (then its outcome).

    Raises:
        HTTPProblem: 422 malformed id, 404 unknown id, 503 broker unavailable.
    """
    task_info(app, task_id)  # 422 and 404 before anything is sent
    _sending(lambda: _revoke(app, task_id))
    return task_info(app, task_id)


def _revoke(app: Celery, task_id: str) -> None:
    """Revoke, taking an unreadable record (forged, or corrupt) as :func:`task_info` does.

    ``revoke_task`` notes the revoke and broadcasts it before it reads the record, so the
    task is revoked all the same; the record, which is never decoded, still reads
    ``failed`` with ``ResultDecodeError``, as a status read reports it.
    """
    with contextlib.suppress(ResultDecodeError):
        revoke_task(app, task_id)


def aggregate(group_id: str, infos: Sequence[TaskInfo]) -> GroupInfo:
    """Fold the status of a batch's tasks into one."""
    counts = Counter(info.state for info in infos)
    total = len(infos)
    completed = sum(1 for info in infos if info.ready)
    if total and completed == total:
        state = next((s for s in _FINAL_ORDER if counts[s]), TaskState.SUCCEEDED)
    elif all(info.state in (TaskState.QUEUED, TaskState.UNKNOWN) for info in infos):
        state = TaskState.QUEUED
    else:
        state = TaskState.PROGRESS
    done = sum(
        1.0 if info.ready else (info.progress.percent / 100.0 if info.progress else 0.0)
        for info in infos
    )
    return GroupInfo(
        group_id=group_id,
        state=state,
        ready=state.ready,
        total=total,
        completed=completed,
        counts=dict(counts),
        progress=Progress.of(min(done, total), total) if total else None,
        tasks=list(infos),
    )


def _group_task_ids(app: Celery, group_id: str) -> list[str] | None:
    """Ids of a saved group's tasks, in order, or ``None`` when the group was never saved.

    Celery's ``GroupResult.restore`` builds a result object per task, and on Redis each
    one subscribes to its task's result channel: two round trips per task on every read
    of a 1,000-task batch. The stored record is read as data instead (JSON only, as the
    backend's accepted content says), and only where it is not a key/value record is
    Celery's reader used.
    """
    backend = app.backend
    if not isinstance(backend, BaseKeyValueStoreBackend):
        saved = GroupResult.restore(group_id, app=app)
        return None if saved is None else [str(child.id) for child in saved.results or ()]
    raw = backend.get(backend.get_key_for_group(group_id))
    if not raw:
        return None
    try:
        # As GroupResult.as_tuple() stores it:
        # [[group_id, parent], [[[task_id, parent], None], ...]]
        _, children = backend.decode(raw)["result"]
        return [str(child[0][0]) for child in children]
    except (ContentDisallowed, DecodeError, LookupError, TypeError, ValueError) as exc:
        raise HTTPProblem(500, f"the stored record of batch {group_id!r} is unreadable") from exc


def group_info(app: Celery, group_id: str) -> GroupInfo:
    """Aggregate status of a saved batch, for ``GET /tasks/groups/{group_id}``.

    Raises:
        HTTPProblem: 422 for a malformed id, 404 for a group that was never saved.
    """
    task_ids = _group_task_ids(app, _checked(group_id, "group"))
    if task_ids is None:
        raise HTTPProblem(404, f"no batch with id {group_id!r}: never sent, or its record expired")
    return aggregate(group_id, [read_task(app, task_id) for task_id in task_ids])


# -- events ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """One server-sent event: the task's status after a change.

    Attributes:
        id: Position in the stream, from 1.
        name: The task's state (``queued``, ``started``, ``progress``, ...).
        data: The :class:`TaskInfo` as JSON, on one line.
    """

    id: int
    name: str
    data: str


class EventTracker:
    """Turns successive status reads into events: one per change, then the end.

    The stream is over after a final state, or when the record is gone (``unknown``).
    """

    def __init__(self) -> None:
        self._last: TaskInfo | None = None
        self._sent = 0
        self.done = False

    def observe(self, info: TaskInfo) -> Event | None:
        """The event for ``info``, or ``None`` when nothing changed since the last one."""
        if self.done or info == self._last:
            return None
        self._last = info
        self._sent += 1
        self.done = info.ready or info.state is TaskState.UNKNOWN
        return Event(id=self._sent, name=info.state.value, data=info.model_dump_json())


def encode_sse(event: Event) -> str:
    """The event in the ``text/event-stream`` wire format (its data holds no newline)."""
    return f"id: {event.id}\nevent: {event.name}\ndata: {event.data}\n\n"
