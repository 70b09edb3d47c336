"""Huey's ``SqliteHuey``: the embedded queue a Python user would otherwise pick.

Stock settings, except ``store_none=True``: the no-op returns ``None``, which Huey does not
store by default, and a result nobody can wait for could not be timed. The consumer runs
``huey_consumer bench.huey_app.huey`` with the database file in ``BENCH_HUEY_DB``.
"""

from __future__ import annotations

import os
from typing import Any

from huey import SqliteHuey

from bench.celery_apps import gate, noop


def build(path: str) -> tuple[SqliteHuey, Any, Any]:
    """A ``SqliteHuey`` on ``path`` with the no-op and gate tasks: ``(huey, noop, gate)``."""
    huey = SqliteHuey("bench", filename=path, store_none=True)
    return (
        huey,
        huey.task(name="bench.noop")(noop),
        huey.task(name="bench.gate")(gate),
    )


huey: SqliteHuey | None = None
if os.environ.get("BENCH_HUEY_DB"):
    huey = build(os.environ["BENCH_HUEY_DB"])[0]
