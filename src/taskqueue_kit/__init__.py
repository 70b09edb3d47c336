"""taskqueue-kit: correct, safe, observable Celery task queues for FastAPI and Flask.

Everything public is imported from here (and from ``taskqueue_kit.web.fastapi``,
``taskqueue_kit.web.flask`` and ``taskqueue_kit.testing``); the underscored modules are
private. Importing this package never imports FastAPI or Flask.
"""

from taskqueue_kit import _sqlite
from taskqueue_kit._app import celery_config, create_celery, init_celery
from taskqueue_kit._exceptions import (
    ConfigurationError,
    DeliveryLimitExceeded,
    InvalidTaskId,
    MissingExtra,
    OptionError,
    ResultDecodeError,
    TaskNotFound,
    TaskQueueKitError,
    UnknownQueueError,
)
from taskqueue_kit._logcontext import add_task_context
from taskqueue_kit._progress import Progress, report_progress
from taskqueue_kit._retry import RetryingTask, RetryPolicy, retrying_task
from taskqueue_kit._routing import route_task
from taskqueue_kit._schedule import ScheduleEntry, beat_schedule, every
from taskqueue_kit._settings import TaskQueueSettings
from taskqueue_kit._task import KitTask, revoke_task
from taskqueue_kit._taskinfo import TaskError, TaskInfo, TaskState, get_task_info
from taskqueue_kit._waiting import aget_task_info, wait_for_task

__version__ = "0.1.0"

__all__ = [
    "ConfigurationError",
    "DeliveryLimitExceeded",
    "InvalidTaskId",
    "KitTask",
    "MissingExtra",
    "OptionError",
    "Progress",
    "ResultDecodeError",
    "RetryPolicy",
    "RetryingTask",
    "ScheduleEntry",
    "TaskError",
    "TaskInfo",
    "TaskNotFound",
    "TaskQueueKitError",
    "TaskQueueSettings",
    "TaskState",
    "UnknownQueueError",
    "__version__",
    "add_task_context",
    "aget_task_info",
    "beat_schedule",
    "celery_config",
    "create_celery",
    "every",
    "get_task_info",
    "init_celery",
    "report_progress",
    "retrying_task",
    "revoke_task",
    "route_task",
    "wait_for_task",
]

_sqlite.register()
