"""The one exception tree of taskqueue-kit.

Every error the kit raises on purpose derives from :class:`TaskQueueKitError`, so one
``except TaskQueueKitError`` catches them all. Where the kit wraps an error from pydantic,
Celery or kombu it chains it (``raise ... from exc``) so the original stays visible::

    TaskQueueKitError
    ├── ConfigurationError      (also a ValueError)   bad settings; names the field
    ├── UnknownQueueError       (also a LookupError)  a task routed to an undeclared queue
    ├── InvalidTaskId           (also a ValueError)   empty, too long or odd characters
    ├── TaskNotFound            (also a LookupError)  an id that was never sent
    └── ResultDecodeError                              a stored record that is not the kit's JSON
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError

__all__ = [
    "ConfigurationError",
    "InvalidTaskId",
    "ResultDecodeError",
    "TaskNotFound",
    "TaskQueueKitError",
    "UnknownQueueError",
]


class TaskQueueKitError(Exception):
    """Root of every error taskqueue-kit raises on purpose."""


class ConfigurationError(TaskQueueKitError, ValueError):
    """Settings that cannot work; the message names the offending field.

    Attributes:
        field: Name of the setting at fault, or ``None`` when several are.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field

    @classmethod
    def from_validation_error(cls, exc: ValidationError) -> ConfigurationError:
        """Summarise pydantic's error, naming the first field at fault."""
        errors = exc.errors(include_url=False)
        fields = [".".join(str(part) for part in error["loc"]) for error in errors]
        pairs = zip(fields, errors, strict=True)
        lines = [f"{field or '(settings)'}: {error['msg']}" for field, error in pairs]
        first = fields[0] if fields and fields[0] else None
        return cls("invalid settings: " + "; ".join(lines), field=first)


class UnknownQueueError(TaskQueueKitError, LookupError):
    """A task would go to a queue that is not declared, where no worker would read it.

    Attributes:
        queue: The undeclared queue name.
        task_name: The task being sent.
    """

    def __init__(self, queue: str, task_name: str, declared: tuple[str, ...]) -> None:
        super().__init__(
            f"task {task_name!r} routes to queue {queue!r}, which is not declared "
            f"(declared: {', '.join(declared)}); add it to TaskQueueSettings.queues"
        )
        self.queue = queue
        self.task_name = task_name


class InvalidTaskId(TaskQueueKitError, ValueError):
    """A task id that is empty, too long or holds characters outside ``[A-Za-z0-9._:-]``."""


class TaskNotFound(TaskQueueKitError, LookupError):
    """An id the result backend has no record of: never sent, or expired."""


class ResultDecodeError(TaskQueueKitError):
    """A stored result that is not JSON the kit wrote; it is reported, never unpickled."""
