"""Task ids in every log line: while a task runs, log records carry its id and name.

Celery's worker formatter adds the task to the records of ``celery.utils.log``'s task
loggers only. With ``log_task_context`` on, :func:`install` makes *every* stdlib log record
created while a task runs (the service's own loggers, its libraries') carry ``task_id``
and ``task_name`` attributes, ``None`` outside a task: use ``%(task_id)s`` in a format, or
read them in a JSON formatter. :func:`add_task_context` is the same as a structlog
processor. The ids live in a :mod:`contextvars` variable set by Celery's ``task_prerun`` and
reset by ``task_postrun`` signals, in the thread that runs the task, so the thread pool's
concurrent tasks and eager calls nested in a task each see their own.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import MutableMapping
from contextvars import ContextVar, Token
from typing import Any

from celery.signals import task_postrun, task_prerun

__all__ = ["add_task_context", "current_task", "install"]

_current: ContextVar[tuple[str, str] | None] = ContextVar("taskqueue_kit_task", default=None)
_tokens = threading.local()
_lock = threading.Lock()
_installed = False


def current_task() -> tuple[str | None, str | None]:
    """The id and name of the task running in this context, or ``(None, None)``."""
    found = _current.get()
    return (None, None) if found is None else found


def add_task_context(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """A structlog processor adding ``task_id`` and ``task_name`` while a task runs."""
    task_id, task_name = current_task()
    if task_id is not None:
        event_dict.setdefault("task_id", task_id)
        event_dict.setdefault("task_name", task_name)
    return event_dict


def _stack() -> list[Token[tuple[str, str] | None]]:
    stack: list[Token[tuple[str, str] | None]] | None = getattr(_tokens, "stack", None)
    if stack is None:
        stack = _tokens.stack = []
    return stack


def _enter(sender: Any = None, task_id: str | None = None, **_: Any) -> None:
    _stack().append(_current.set((str(task_id), str(getattr(sender, "name", "")))))


def _leave(**_: Any) -> None:
    stack = _stack()
    if stack:
        _current.reset(stack.pop())


def install() -> None:
    """Tag every log record with the running task from now on, in this process (idempotent)."""
    global _installed
    with _lock:
        if _installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            record.task_id, record.task_name = current_task()
            return record

        logging.setLogRecordFactory(factory)
        task_prerun.connect(_enter, weak=False, dispatch_uid=f"{__name__}.enter")
        task_postrun.connect(_leave, weak=False, dispatch_uid=f"{__name__}.leave")
        _installed = True
