"""Progress reporting from inside a task: the data behind a client's progress bar.

A task in a tight loop may call :func:`report_progress` on every item; writes to the result
backend are throttled to one per ``progress_interval`` seconds per task, and the final
``current == total`` always goes through so a client never sees a bar stuck at 99%.
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["PROGRESS", "Progress", "report_progress"]

PROGRESS = "PROGRESS"
"""The Celery state a task is in while it reports progress."""

_LAST_WRITE = "_taskqueue_kit_progress_at"
_DEFAULT_INTERVAL = 0.5


class Progress(BaseModel):
    """How far a task has come.

    Attributes:
        current: Units done, ``0 <= current <= total``.
        total: Units in all, above zero.
        percent: ``100 * current / total``, rounded to one decimal.
        message: What the task is doing now, for people.
    """

    model_config = ConfigDict(frozen=True)

    current: float = Field(ge=0)
    total: float = Field(gt=0)
    percent: float = Field(ge=0, le=100)
    message: str | None = None

    @classmethod
    def of(cls, current: float, total: float, message: str | None = None) -> Progress:
        """Build a progress value, checking its bounds.

        Raises:
            ValueError: ``total <= 0``, or ``current`` outside ``[0, total]``, or a
                non-number.
        """
        for label, value in (("current", current), ("total", total)):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{label} must be a number, got {value!r}")
        if not total > 0:
            raise ValueError(f"total must be above 0, got {total!r}")
        if not 0 <= current <= total:
            raise ValueError(f"current must be within [0, total={total!r}], got {current!r}")
        if message is not None and not isinstance(message, str):
            raise ValueError(f"message must be a string, got {message!r}")
        return cls(
            current=current,
            total=total,
            percent=round(100.0 * current / total, 1),
            message=message,
        )


def report_progress(
    task: Any,
    current: float,
    total: float,
    message: str | None = None,
    *,
    force: bool = False,
) -> bool:
    """Record progress of the running task as state ``PROGRESS``.

    Args:
        task: The bound task (``self`` in a task declared with ``bind=True``).
        current: Units done.
        total: Units in all.
        message: What the task is doing, shown to people.
        force: Write even if the last write was within the throttle interval.

    Returns:
        True when the backend was written, False when throttled or not inside a worker.

    Raises:
        ValueError: bounds violated (see :meth:`Progress.of`).
    """
    progress = Progress.of(current, total, message)
    request = task.request
    if request.id is None or request.called_directly:
        return False
    interval = task.app.conf.get("taskqueue_progress_interval", _DEFAULT_INTERVAL)
    now = time.monotonic()
    last = getattr(request, _LAST_WRITE, None)
    final = current == total
    if not (force or final or last is None or now - last >= interval):
        return False
    task.update_state(state=PROGRESS, meta=progress.model_dump(mode="json"))
    setattr(request, _LAST_WRITE, now)
    return True
