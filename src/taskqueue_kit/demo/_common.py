"""What the plain demo and ``--serve`` share: settings, checks, signals, exit codes."""

from __future__ import annotations

import contextlib
import importlib.util
import math
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

from celery import Celery
from kombu.utils.url import maybe_sanitize_url

from taskqueue_kit import ConfigurationError, TaskQueueSettings
from taskqueue_kit.demo.tasks import QUEUE

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_TERMINATED",
    "DemoError",
    "Terminated",
    "check_broker",
    "default_concurrency",
    "describe_broker",
    "require",
    "settings_for",
    "shielded",
    "terminate_as_interrupt",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a Ctrl-C
EXIT_TERMINATED = 143  # 128 + SIGTERM

_REDIS_SCHEMES = frozenset({"redis", "rediss"})


class DemoError(Exception):
    """Something a person can fix, said in a sentence; the demo exits with status 1."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like a Ctrl-C so the same cleanup runs."""


def require(*modules: str, extra: str = "examples") -> None:
    """Check that optional dependencies are installed, naming the extra that brings them.

    Raises:
        DemoError: a module is missing.
    """
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        raise DemoError(f"{', '.join(missing)} not installed: pip install 'taskqueue-kit[{extra}]'")


def default_concurrency() -> int:
    """Worker processes: one per CPU this process may use, from 1 to 4."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on every platform
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 4))


def settings_for(
    broker_url: str | None,
    *,
    home: Path | None = None,
    isolated: bool = False,
    **values: Any,
) -> TaskQueueSettings:
    """Settings for the demo: the ``polarity`` queue, and ``broker_url`` when given.

    With a Redis broker the results go to the same Redis; with RabbitMQ they stay in the
    embedded backend (a worker on this machine and the demo share its file).

    Args:
        broker_url: The broker to use; ``None`` for the environment's (or the embedded).
        home: Data directory of the embedded broker and backend.
        isolated: Ignore the environment's broker, backend and profile: the plain demo
            runs on the embedded default unless ``broker_url`` says otherwise.
        **values: Other settings.

    Raises:
        DemoError: the settings are invalid (a malformed URL, a bad variable).
    """
    if isolated:
        values = {"profile": "development", "broker_url": None, "result_backend": None, **values}
    if broker_url:
        values["broker_url"] = broker_url
        if urlsplit(broker_url).scheme.lower() in _REDIS_SCHEMES:
            values["result_backend"] = broker_url
    if home is not None:
        values["home"] = home
    try:
        settings = TaskQueueSettings(queues=(QUEUE,), **values)
    except ConfigurationError as exc:
        raise DemoError(f"invalid settings: {exc}") from exc
    # Absolute, so the worker (started elsewhere, maybe) opens the same files.
    return settings.model_copy(update={"home": settings.home.resolve()})


def describe_broker(settings: TaskQueueSettings) -> str:
    """The broker for people: the embedded one's directory, or the URL without password."""
    if settings.uses_embedded_broker:
        return f"embedded SQLite in {settings.home}"
    return str(maybe_sanitize_url(settings.effective_broker_url))


def check_broker(app: Celery, timeout: float = 5.0) -> None:
    """Connect to the broker once, so an unreachable one is a clear error, not a hang.

    Raises:
        DemoError: no connection within ``timeout`` seconds.
    """
    url = maybe_sanitize_url(app.conf.broker_url)
    try:
        with app.connection_for_write(connect_timeout=timeout) as connection:
            connection.ensure_connection(max_retries=0, timeout=math.ceil(timeout))
    except Exception as exc:  # kombu raises a different class per transport
        raise DemoError(f"cannot reach the broker at {url}: {exc}") from exc


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated()


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into :class:`Terminated` (a ``KeyboardInterrupt``) inside the block."""
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """Ignore SIGINT and SIGTERM inside the block, so a second Ctrl-C cannot cut cleanup."""
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
