"""The values the web adapters share: options, refusals and response bodies.

Every body an adapter answers with is a pydantic model, so FastAPI can describe it in
OpenAPI and Flask can send the same JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from taskqueue_kit._progress import Progress
from taskqueue_kit._taskinfo import TaskInfo, TaskState

__all__ = [
    "BatchAccepted",
    "Check",
    "GroupInfo",
    "HTTPProblem",
    "Health",
    "TaskAccepted",
    "WebOptions",
]


@dataclass(frozen=True)
class WebOptions:
    """Limits and intervals both adapters take, checked once.

    Attributes:
        max_body_size: Largest request body in bytes (413 above it); 1 MiB by default.
        max_batch_items: Most items one batch request may fan out to.
        poll_interval: Seconds between two status reads of an open event stream.
        heartbeat: Seconds of silence after which an event stream sends a comment, so
            proxies keep it open and a vanished client is noticed.
        ping_timeout: Seconds the health check waits for workers to answer a ping.
        connect_timeout: Seconds the health check waits for the broker and the backend.
    """

    max_body_size: int = 1 << 20
    max_batch_items: int = 10_000
    poll_interval: float = 0.5
    heartbeat: float = 15.0
    ping_timeout: float = 1.0
    connect_timeout: float = 1.0

    def __post_init__(self) -> None:
        for name in ("max_body_size", "max_batch_items"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)!r}")
        for name in ("poll_interval", "heartbeat", "ping_timeout", "connect_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be above 0 seconds, got {getattr(self, name)!r}")


class HTTPProblem(Exception):
    """A refusal both adapters render as ``{"detail": detail}`` with ``status``.

    Attributes:
        status: The HTTP status code.
        detail: A message, or a list of field errors shaped like FastAPI's.
    """

    def __init__(self, status: int, detail: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class TaskAccepted(BaseModel):
    """Where to follow a task that was sent (or revoked)."""

    task_id: str
    status_url: str
    events_url: str


class BatchAccepted(BaseModel):
    """Where to follow a batch: one group, its tasks in the order of the items."""

    group_id: str
    status_url: str
    task_ids: list[str]


class GroupInfo(BaseModel):
    """Aggregate status of a batch, for one progress bar over all of it.

    Attributes:
        state: ``queued`` until a task starts, ``progress`` while some run or are done,
            then ``failed`` if any failed, else ``revoked`` if any was, else ``succeeded``.
        completed: Tasks in a final state.
        counts: Tasks per state (states with none are left out).
        progress: ``current`` counts finished tasks as 1 and running ones by their own
            progress, out of ``total`` tasks.
        tasks: Each task's status, in the order of the batch's items.
    """

    group_id: str
    state: TaskState
    ready: bool
    total: int
    completed: int
    counts: dict[TaskState, int]
    progress: Progress | None
    tasks: list[TaskInfo]


class Check(BaseModel):
    """One reachability check; ``error`` says why it failed."""

    ok: bool
    error: str | None = None


class Health(BaseModel):
    """Whether the service can take work: 200 when ``ok``, 503 otherwise."""

    ok: bool
    broker: Check
    backend: Check
    workers: list[str]
    queues: list[str]
