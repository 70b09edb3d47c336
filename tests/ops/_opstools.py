"""Helpers for the ops tests: bounded waits, free ports, child environments."""

from __future__ import annotations

import os
from pathlib import Path

from _support import free_port, wait_until

__all__ = ["HERE", "child_env", "free_port", "wait_until"]

HERE = Path(__file__).resolve().parent


def child_env(**values: str) -> dict[str, str]:
    """This process's environment without kit settings, plus ``values``; ``_opsapp`` importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TASKQUEUE_", "CELERY_"))}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH")) if p)
    env.update(values)
    return env
