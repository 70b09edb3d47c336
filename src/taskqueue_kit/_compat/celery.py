"""Celery internals the kit relies on, for want of a public way.

* ``celery.worker.state.revoked``: the ids a worker knows to be revoked. Celery checks it
  when a message arrives and when the task is handed to the pool; with the thread and solo
  pools a task can wait inside the pool after that, so :class:`~taskqueue_kit.KitTask`
  looks once more before it starts, and a worker adds the revokes recorded in the result
  backend to it when it starts (:mod:`taskqueue_kit._revokes`). No signal or public
  attribute gives this set.
* ``celery.app.task.extract_exec_options`` and the keywords of ``Celery._task_from_fun``:
  with ``Task``'s public attributes, the task options ``app.task`` honours, so that
  ``retrying_task`` accepts exactly what the installed Celery does and rejects typos. No
  public list of them exists.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Container, Iterable

import celery

__all__ = [
    "TESTED",
    "add_revoked",
    "check_version",
    "exec_option_names",
    "revoked_ids",
    "task_from_fun_keywords",
]

#: Celery minors (inclusive) on which the internals below were tested.
TESTED = ((5, 5), (5, 7))


def _minor(version: str) -> tuple[int, int]:
    major, minor, *_ = (
        int("".join(ch for ch in part if ch.isdigit()) or 0) for part in version.split(".")
    )
    return major, minor


def check_version(version: str = celery.__version__) -> bool:
    """Warn when this Celery is outside the tested range; True when it is inside."""
    inside = TESTED[0] <= _minor(version) <= TESTED[1]
    if not inside:
        warnings.warn(
            f"taskqueue-kit was tested on Celery {TESTED[0][0]}.{TESTED[0][1]} to "
            f"{TESTED[1][0]}.{TESTED[1][1]}; Celery {version} may have changed the internals "
            "listed on the 'Internals and compatibility' docs page",
            RuntimeWarning,
            stacklevel=2,
        )
    return inside


def revoked_ids() -> Container[str]:
    """The ids this worker process knows to be revoked.

    Raises:
        RuntimeError: Celery no longer keeps them where the kit looks (an untested Celery).
    """
    from celery.worker import state

    revoked = getattr(state, "revoked", None)
    if not isinstance(revoked, Container):
        raise RuntimeError(
            f"taskqueue-kit: celery.worker.state.revoked is gone in Celery {celery.__version__}; "
            "see the 'Internals and compatibility' docs page"
        )
    return revoked


def add_revoked(task_ids: Iterable[str]) -> None:
    """Add ids to this worker process's revoked list, as its ``revoke`` command does.

    Raises:
        RuntimeError: Celery no longer keeps the list where the kit looks (an untested Celery).
    """
    revoked = revoked_ids()
    add = getattr(revoked, "add", None)
    if not callable(add):
        raise RuntimeError(
            f"taskqueue-kit: celery.worker.state.revoked cannot be added to in Celery "
            f"{celery.__version__}; see the 'Internals and compatibility' docs page"
        )
    for task_id in task_ids:
        add(task_id)


def exec_option_names() -> frozenset[str]:
    """The message options ``apply_async`` reads off a task (``queue``, ``priority``, ...).

    Raises:
        RuntimeError: Celery no longer has ``extract_exec_options`` (an untested Celery).
    """
    extract = vars(celery.app.task).get("extract_exec_options")
    if not callable(extract):
        raise RuntimeError(
            "taskqueue-kit: celery.app.task.extract_exec_options is gone in Celery "
            f"{celery.__version__}; see the 'Internals and compatibility' docs page"
        )
    return frozenset(extract(None))


def task_from_fun_keywords() -> frozenset[str]:
    """The keywords ``app.task`` hands to ``Celery._task_from_fun`` (``name``, ``pydantic``...).

    Raises:
        RuntimeError: Celery no longer has ``_task_from_fun`` (an untested Celery).
    """
    task_from_fun = vars(celery.Celery).get("_task_from_fun")
    if task_from_fun is None:
        raise RuntimeError(
            f"taskqueue-kit: Celery._task_from_fun is gone in Celery {celery.__version__}; "
            "see the 'Internals and compatibility' docs page"
        )
    kinds = {inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY}
    parameters = inspect.signature(task_from_fun).parameters.values()
    return frozenset(p.name for p in parameters if p.kind in kinds) - {"self", "fun"}


check_version()
