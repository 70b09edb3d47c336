"""The kit's backend and transport override only the hooks Celery's and kombu's bases define.

Celery's key/value result backends and kombu's virtual transports are written by
subclassing a base class and filling in its underscored hooks (``_store_result``, ``_get``,
``_put``, ...); the kit's embedded broker and backend do the same. This pins that set: a
hook Celery or kombu renames, or a signature they change, fails here by name, and a new
override of an underscored name has to be added here and to the docs page first.
"""

from __future__ import annotations

import inspect

import pytest

from taskqueue_kit._sqlite import transport
from taskqueue_kit._sqlite._declare import DeclaringChannel
from taskqueue_kit._sqlite.backend import SQLiteBackend

pytestmark = pytest.mark.compat

#: Each kit class and the underscored hooks of its Celery or kombu base it overrides.
HOOKS = {
    SQLiteBackend: {"_set_with_state", "_get_task_meta_for", "_restore_group", "_store_result"},
    transport.Channel: {"_put", "_get"},
    DeclaringChannel: {"_new_queue", "_has_queue", "_size", "_purge", "_delete"},
}


def _overridden(cls: type) -> set[str]:
    own = (name for name in vars(cls) if name.startswith("_") and not name.startswith("__"))
    return {name for name in own if any(name in vars(base) for base in cls.__mro__[1:])}


@pytest.mark.parametrize("cls", list(HOOKS), ids=lambda cls: cls.__name__)
def test_only_the_listed_hooks_are_overridden(cls: type) -> None:
    """The underscored names a kit class overrides are exactly the listed hooks."""
    assert _overridden(cls) == HOOKS[cls]


@pytest.mark.parametrize(
    ("cls", "hook"),
    [(cls, hook) for cls, hooks in HOOKS.items() for hook in sorted(hooks)],
    ids=lambda value: getattr(value, "__name__", value),
)
def test_each_hook_keeps_its_bases_parameters(cls: type, hook: str) -> None:
    """Every parameter the base's hook takes, the kit's override takes too, in order."""
    base = next(
        b
        for b in cls.__mro__[1:]
        if hook in vars(b) and b.__module__.split(".")[0] != "taskqueue_kit"
    )
    theirs = list(inspect.signature(getattr(base, hook)).parameters.values())
    ours = inspect.signature(getattr(cls, hook)).parameters
    positional = [p.name for p in theirs if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    assert list(ours)[: len(positional)] == positional, f"{base.__module__}.{base.__name__}.{hook}"
