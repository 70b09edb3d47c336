"""Task status as plain, JSON-ready data: what a status endpoint returns.

Celery answers ``PENDING`` for any id it has no record of, whether the task is waiting in a
queue or was never sent. With ``track_sent`` the kit records every task as ``SENT`` before
publishing it, so here a missing record means ``unknown`` and ``SENT`` means ``queued``.

Nothing read from the backend is trusted as code: exception details are kept as strings,
and no exception class is rebuilt or imported.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from enum import StrEnum
from typing import Any

from celery import Celery, current_app
from pydantic import BaseModel, ConfigDict, JsonValue, TypeAdapter, ValidationError

from taskqueue_kit._exceptions import InvalidTaskId, ResultDecodeError
from taskqueue_kit._initialised import ensure_initialised
from taskqueue_kit._progress import PROGRESS, Progress
from taskqueue_kit._results import SENT, read_meta

__all__ = ["TaskError", "TaskInfo", "TaskState", "get_task_info", "validate_task_id"]

_TASK_ID = re.compile(r"[A-Za-z0-9._:\-]{1,255}")
_JSON = TypeAdapter(JsonValue)


class TaskState(StrEnum):
    """Where a task is in its life, in words a client can act on."""

    UNKNOWN = "unknown"
    QUEUED = "queued"
    STARTED = "started"
    PROGRESS = "progress"
    RETRYING = "retrying"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REVOKED = "revoked"

    @property
    def ready(self) -> bool:
        """True for the final states: succeeded, failed, revoked."""
        return self in _FINAL


_FINAL = frozenset({TaskState.SUCCEEDED, TaskState.FAILED, TaskState.REVOKED})

_FROM_CELERY = {
    SENT: TaskState.QUEUED,
    "RECEIVED": TaskState.QUEUED,
    "STARTED": TaskState.STARTED,
    PROGRESS: TaskState.PROGRESS,
    "RETRY": TaskState.RETRYING,
    "SUCCESS": TaskState.SUCCEEDED,
    "FAILURE": TaskState.FAILED,
    "REJECTED": TaskState.FAILED,
    "REVOKED": TaskState.REVOKED,
    "IGNORED": TaskState.SUCCEEDED,
}


class TaskError(BaseModel):
    """Why a task failed (or is retrying), as strings only.

    Attributes:
        type: The exception's class name, qualified by its module unless it is a builtin.
        message: The exception's message.
    """

    model_config = ConfigDict(frozen=True)

    type: str
    message: str


class TaskInfo(BaseModel):
    """Everything a client needs to know about one task; always JSON-serialisable.

    Attributes:
        task_id: The id ``delay()`` returned.
        state: Where the task is, as a :class:`TaskState`.
        celery_state: Celery's raw state (``SENT``, ``STARTED``, ``PROGRESS``, ...).
        name: The task name, when the backend record holds it.
        queue: The queue the task was sent to.
        progress: The last progress the task reported, while in ``progress``.
        result: The return value, when ``succeeded`` (any JSON value).
        error: Exception type and message as strings, when ``failed``, ``retrying`` or
            ``revoked``.
        retries: Retries so far.
        date_done: When the task reached a final state.
        ready: True in a final state: ``succeeded``, ``failed`` or ``revoked``.
    """

    model_config = ConfigDict(frozen=True)

    task_id: str
    state: TaskState
    celery_state: str
    name: str | None = None
    queue: str | None = None
    progress: Progress | None = None
    result: JsonValue = None
    error: TaskError | None = None
    retries: int = 0
    date_done: datetime | None = None
    ready: bool = False


def validate_task_id(task_id: Any) -> str:
    """Return ``task_id`` if it is a well-formed id.

    Raises:
        InvalidTaskId: empty, over 255 characters, or outside ``[A-Za-z0-9._:-]``.
    """
    if not isinstance(task_id, str) or not _TASK_ID.fullmatch(task_id):
        shown = task_id if isinstance(task_id, str) and len(task_id) <= 80 else "<id>"
        raise InvalidTaskId(
            f"invalid task id {shown!r}: expected 1-255 characters from [A-Za-z0-9._:-]"
        )
    return task_id


def _as_text(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(_as_text(item) for item in value)
    return value if isinstance(value, str) else json.dumps(value, default=repr)


def _error_from(result: Any) -> TaskError:
    if isinstance(result, dict) and "exc_type" in result:
        module = result.get("exc_module")
        name = _as_text(result.get("exc_type"))
        qualified = name if module in (None, "builtins") else f"{_as_text(module)}.{name}"
        return TaskError(type=qualified, message=_as_text(result.get("exc_message", "")))
    return TaskError(type="Error", message=_as_text(result))


def _json_value(value: Any) -> JsonValue:
    try:
        return _JSON.validate_python(value)
    except ValidationError:
        return repr(value)


def _date(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def info_from_meta(task_id: str, meta: dict[str, Any] | None) -> TaskInfo:
    """Translate a raw backend record into a :class:`TaskInfo`."""
    if meta is None:
        return TaskInfo(task_id=task_id, state=TaskState.UNKNOWN, celery_state="PENDING")
    celery_state = str(meta.get("status") or "PENDING")
    state = _FROM_CELERY.get(celery_state)
    if state is None:
        state = TaskState.UNKNOWN if celery_state == "PENDING" else TaskState.STARTED
    raw = meta.get("result")
    progress = None
    if state is TaskState.PROGRESS and isinstance(raw, dict):
        try:
            progress = Progress.model_validate(raw)
        except ValidationError:
            progress = None
    error = (
        _error_from(raw)
        if state in {TaskState.FAILED, TaskState.RETRYING, TaskState.REVOKED}
        else None
    )
    retries = meta.get("retries")
    name, queue = meta.get("name"), meta.get("queue")
    return TaskInfo(
        task_id=task_id,
        state=state,
        celery_state=celery_state,
        name=name if isinstance(name, str) else None,
        queue=queue if isinstance(queue, str) else None,
        progress=progress,
        result=_json_value(raw) if state is TaskState.SUCCEEDED else None,
        error=error,
        retries=retries if isinstance(retries, int) and retries >= 0 else 0,
        date_done=_date(meta.get("date_done")),
        ready=state.ready,
    )


def get_task_info(task_id: str, app: Celery | None = None) -> TaskInfo:
    """Read a task's state, progress, result or error from the result backend.

    Works from any process that shares the backend, not only the sender.

    Args:
        task_id: The id ``delay()`` returned.
        app: The Celery app; the current app when omitted.

    Returns:
        The task's status. A record that is not valid JSON (forged or corrupt) reads as
        ``failed`` with ``error.type == "ResultDecodeError"``: it is reported, never run.

    Raises:
        InvalidTaskId: the id is malformed.
        ConfigurationError: the kit was never applied to the app (``init_celery``).
    """
    validate_task_id(task_id)
    app = ensure_initialised(current_app if app is None else app)
    try:
        meta = read_meta(app, task_id)
    except ResultDecodeError as exc:
        return decode_error_info(task_id, exc)
    return info_from_meta(task_id, meta)


def decode_error_info(task_id: str, error: ResultDecodeError) -> TaskInfo:
    """The status of a task whose record is not JSON the kit can read: failed, reported."""
    return TaskInfo(
        task_id=task_id,
        state=TaskState.FAILED,
        celery_state="FAILURE",
        error=TaskError(type="ResultDecodeError", message=str(error)),
        ready=True,
    )
