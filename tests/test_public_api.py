"""The public surface: exactly these names, and no web framework imported with them."""

from __future__ import annotations

import re
import subprocess
import sys

import taskqueue_kit

EXPECTED = [
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


def test_all_is_exactly_the_public_names() -> None:
    """__all__ is sorted and pins the public API."""
    assert taskqueue_kit.__all__ == EXPECTED
    assert sorted(taskqueue_kit.__all__) == taskqueue_kit.__all__
    for name in EXPECTED:
        assert hasattr(taskqueue_kit, name), name


# Each public exception, with the builtins it also derives from (API.md section 7).
EXCEPTIONS: dict[str, tuple[type[Exception], ...]] = {
    "ConfigurationError": (ValueError,),
    "DeliveryLimitExceeded": (RuntimeError,),
    "InvalidTaskId": (ValueError,),
    "MissingExtra": (ValueError, ImportError),
    "OptionError": (TypeError, ValueError),
    "ResultDecodeError": (),
    "TaskNotFound": (LookupError,),
    "UnknownQueueError": (LookupError,),
}


def test_exceptions_share_one_root() -> None:
    """Every public exception derives from TaskQueueKitError and the builtins it resembles."""
    exported = {
        name
        for name in taskqueue_kit.__all__
        if isinstance(getattr(taskqueue_kit, name), type)
        and issubclass(getattr(taskqueue_kit, name), BaseException)
    }
    assert exported == {*EXCEPTIONS, "TaskQueueKitError"}
    for name, builtins in EXCEPTIONS.items():
        error = getattr(taskqueue_kit, name)
        assert issubclass(error, taskqueue_kit.TaskQueueKitError), name
        for builtin in builtins:
            assert issubclass(error, builtin), (name, builtin)
    assert issubclass(taskqueue_kit.OptionError, taskqueue_kit.ConfigurationError)


def test_exception_tree_is_drawn_in_its_docstring() -> None:
    """The docstring of _exceptions draws every public exception, each under its parent."""
    from taskqueue_kit import _exceptions

    tree = _exceptions.__doc__ or ""
    for name in EXCEPTIONS:
        assert f"── {name} " in tree, name
    assert re.search(r"\n    │   [├└]── OptionError ", tree), "OptionError under ConfigurationError"


def test_import_does_not_pull_in_web_frameworks() -> None:
    """Importing taskqueue_kit imports neither fastapi nor flask."""
    code = (
        "import sys, taskqueue_kit\n"
        "bad = [m for m in ('fastapi', 'flask', 'starlette') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
