"""Helpers for the example tests: bounded waits, free ports, and a record of state writes."""

from __future__ import annotations

from typing import Any

import pytest

from _support import free_port, wait_until

__all__ = ["free_port", "record_states", "wait_until"]


def record_states(monkeypatch: pytest.MonkeyPatch, task: Any) -> list[tuple[str, dict[str, Any]]]:
    """Record every state ``task`` writes through ``update_state`` (progress included).

    Polling the result backend can miss a step that lasts a millisecond; this sees each
    write the task makes, and still lets it through to the backend.
    """
    writes: list[tuple[str, dict[str, Any]]] = []
    update_state = task.update_state

    def recording(task_id: Any = None, state: Any = None, meta: Any = None, **kw: Any) -> Any:
        writes.append((str(state), dict(meta or {})))
        return update_state(task_id, state, meta, **kw)

    monkeypatch.setattr(task, "update_state", recording)
    return writes
