"""The embedded default: broker and result backend in SQLite files under one directory.

A web process, workers and a CLI on one machine share them with no server installed.
:func:`register` teaches kombu and Celery the ``tqsqlite`` URL scheme; the transport and
backend modules are imported only when a URL names them.
"""

from __future__ import annotations

import os

from taskqueue_kit._sqlite._db import SCHEME, url_for

__all__ = ["BACKEND_PATH", "SCHEME", "TRANSPORT_PATH", "backend_url", "broker_url", "register"]

TRANSPORT_PATH = "taskqueue_kit._sqlite.transport:Transport"
BACKEND_PATH = "taskqueue_kit._sqlite.backend:SQLiteBackend"


def register() -> None:
    """Register the ``tqsqlite`` scheme with kombu (broker).

    kombu looks transports up in ``TRANSPORT_ALIASES``, the registration its docs describe
    for third-party transports. The result backend needs no call: Celery finds it through
    the ``celery.result_backends`` entry point in the package's metadata. Idempotent; safe
    to call on every import.
    """
    from celery.signals import worker_shutting_down
    from kombu.transport import TRANSPORT_ALIASES

    TRANSPORT_ALIASES[SCHEME] = TRANSPORT_PATH
    worker_shutting_down.connect(_on_worker_shutting_down, weak=False, dispatch_uid=SCHEME)


def _on_worker_shutting_down(**_: object) -> None:
    """Celery's documented shutdown signal: end the transport's idle waits at once."""
    from taskqueue_kit._sqlite.transport import stop_waiting

    stop_waiting()


def broker_url(path: str | os.PathLike[str]) -> str:
    """URL of a broker database file, e.g. ``tqsqlite:////srv/app/.taskqueue/broker.sqlite3``.

    A relative path is made absolute against the current directory, so every process that
    receives the URL opens the same file.
    """
    return url_for(path)


def backend_url(path: str | os.PathLike[str]) -> str:
    """URL of a result backend database file (same form as :func:`broker_url`)."""
    return url_for(path)
