"""The public surface: exactly these names, and no web framework imported with them."""

from __future__ import annotations

import subprocess
import sys

import taskqueue_kit

EXPECTED = [
    "ConfigurationError",
    "InvalidTaskId",
    "KitTask",
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
    "beat_schedule",
    "celery_config",
    "create_celery",
    "every",
    "get_task_info",
    "report_progress",
    "retrying_task",
    "revoke_task",
    "route_task",
]


def test_all_is_exactly_the_public_names() -> None:
    """__all__ is sorted and pins the public API."""
    assert taskqueue_kit.__all__ == EXPECTED
    assert sorted(taskqueue_kit.__all__) == taskqueue_kit.__all__
    for name in EXPECTED:
        assert hasattr(taskqueue_kit, name), name


def test_exceptions_share_one_root() -> None:
    """Every public exception derives from TaskQueueKitError."""
    for name in (
        "ConfigurationError",
        "InvalidTaskId",
        "ResultDecodeError",
        "TaskNotFound",
        "UnknownQueueError",
    ):
        assert issubclass(getattr(taskqueue_kit, name), taskqueue_kit.TaskQueueKitError)


def test_import_does_not_pull_in_web_frameworks() -> None:
    """Importing taskqueue_kit imports neither fastapi nor flask."""
    code = (
        "import sys, taskqueue_kit\n"
        "bad = [m for m in ('fastapi', 'flask', 'starlette') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
