"""Helpers for the example tests: bounded waits, free ports, and a record of state writes."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

import pytest


def wait_until(check: Callable[[], Any], *, timeout: float, what: str) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.05)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


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
