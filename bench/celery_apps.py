"""The two Celery apps compared: the kit's ``create_celery`` and plain ``Celery()``.

The benchmark process and its worker subprocesses build the same app: the client calls
:func:`build`; a worker runs ``celery -A bench.celery_apps:app worker`` and finds the
same description in ``BENCH_*`` environment variables (see :func:`worker_env`).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from celery import Celery

from taskqueue_kit import TaskQueueSettings, create_celery

NOOP = "bench.noop"
GATE = "bench.gate"
SUBMIT = "bench.submit"
FLAVOURS = ("kit", "plain")
GATE_TIMEOUT = 300.0


def noop() -> None:
    """The task every variant runs: nothing, so the figures measure the queue alone."""


def submit(review: str) -> int:
    """The task sent over HTTP: one string argument, like the seed's ``analyze(review)``."""
    return len(review)


def gate(directory: str, token: str) -> None:
    """Hold one worker process until ``<directory>/open`` exists.

    Two of these occupy a 2-process worker while the drain's tasks are queued, so the
    drain is timed from a full queue and a warm worker rather than from a cold start.
    """
    folder = Path(directory)
    (folder / f"{token}.started").touch()
    opened = folder / "open"
    deadline = time.monotonic() + GATE_TIMEOUT
    while not opened.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{opened} never appeared")
        time.sleep(0.001)


def build(
    flavour: str,
    *,
    queue: str,
    broker: str | None,
    backend: str | None,
    home: str | None = None,
    conf: dict[str, Any] | None = None,
) -> Celery:
    """One app of either flavour, with the no-op and gate tasks registered.

    Args:
        flavour: ``kit`` (``create_celery`` with default settings, ``track_sent`` on) or
            ``plain`` (``Celery()``, stock configuration plus JSON).
        queue: The default queue; unique per round so shared brokers keep runs apart.
        broker: Broker URL; ``None`` (kit only) means the embedded default.
        backend: Result backend URL; ``None`` (kit only) means the embedded default.
        home: Data directory of the embedded default (kit only).
        conf: Celery settings applied last; only ``python -m bench.profile`` uses them,
            to switch one default off and see what it costs.
    """
    if flavour == "kit":
        settings = TaskQueueSettings(
            profile="development",
            broker_url=broker,
            result_backend=backend,
            home=Path(home) if home else Path(".taskqueue"),
            default_queue=queue,
        )
        app = create_celery(settings, main="bench")
    elif flavour == "plain":
        if not broker or not backend:
            raise ValueError("plain Celery needs an explicit broker and result backend URL")
        app = Celery("bench", broker=broker, backend=backend)
        app.conf.update(
            task_serializer="json",
            result_serializer="json",
            accept_content=["json"],
            task_default_queue=queue,
        )
    else:
        raise ValueError(f"unknown flavour {flavour!r}; expected one of {FLAVOURS}")
    app.conf.update(conf or {})
    app.task(name=NOOP, shared=False)(noop)
    app.task(name=GATE, shared=False)(gate)
    app.task(name=SUBMIT, shared=False)(submit)
    return app


def worker_env(
    flavour: str,
    *,
    queue: str,
    broker: str | None,
    backend: str | None,
    home: str | None,
    conf: dict[str, Any] | None = None,
) -> dict[str, str]:
    """Environment that makes a worker's ``bench.celery_apps:app`` equal :func:`build`'s."""
    return {
        "BENCH_FLAVOUR": flavour,
        "BENCH_QUEUE": queue,
        "BENCH_BROKER": broker or "",
        "BENCH_BACKEND": backend or "",
        "BENCH_HOME": home or "",
        "BENCH_CONF": json.dumps(conf or {}),
    }


def _from_env() -> Celery | None:
    flavour = os.environ.get("BENCH_FLAVOUR")
    if not flavour:
        return None
    return build(
        flavour,
        queue=os.environ["BENCH_QUEUE"],
        broker=os.environ.get("BENCH_BROKER") or None,
        backend=os.environ.get("BENCH_BACKEND") or None,
        home=os.environ.get("BENCH_HOME") or None,
        conf=json.loads(os.environ.get("BENCH_CONF") or "{}"),
    )


app = _from_env()
