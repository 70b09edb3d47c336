"""Testing helpers and pytest plugin: real brokers and real workers, not mocks.

Loaded automatically by pytest (entry point ``pytest11``). It gives:

* ``taskqueue_broker``: one test run per broker, ``sqlite`` (the embedded default, always),
  ``amqp`` and ``redis`` (when ``--taskqueue-amqp-url``/``--taskqueue-redis-url`` or
  ``TASKQUEUE_TEST_AMQP_URL``/``TASKQUEUE_TEST_REDIS_URL`` name one). An unreachable broker
  is skipped with a reason locally and is a failure when ``CI`` is set.
* ``taskqueue_settings`` and ``taskqueue_app``: settings and app on that broker, with queue
  names unique to the test, so tests sharing one RabbitMQ or Redis never see each other.
* :func:`run_worker`: a real Celery worker in a thread, for the length of a ``with`` block.
* :func:`subprocess_worker`: a real ``celery worker`` in another process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker

from taskqueue_kit._app import create_celery
from taskqueue_kit._settings import TaskQueueSettings

__all__ = [
    "BrokerTarget",
    "broker_reachable",
    "run_worker",
    "subprocess_worker",
    "taskqueue_app",
    "taskqueue_broker",
    "taskqueue_settings",
    "taskqueue_worker",
    "unique_name",
]

BROKERS = ("sqlite", "amqp", "redis")
_DEFAULT_PORTS = {"amqp": 5672, "amqps": 5671, "pyamqp": 5672, "redis": 6379, "rediss": 6380}


@dataclass(frozen=True)
class BrokerTarget:
    """One broker a test runs against.

    Attributes:
        kind: ``sqlite``, ``amqp`` or ``redis``.
        broker_url: The broker URL, or ``None`` for the embedded default.
        result_backend: The result backend URL, or ``None`` for the embedded default.
    """

    kind: str
    broker_url: str | None
    result_backend: str | None


def unique_name(prefix: str = "t") -> str:
    """A short name no other test run uses, for queues on a shared broker."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def broker_reachable(url: str, timeout: float = 1.0) -> bool:
    """True when a TCP connection to the URL's host and port opens within ``timeout``."""
    parts = urlsplit(url)
    port = parts.port or _DEFAULT_PORTS.get(parts.scheme, 0)
    if not parts.hostname or not port:
        return False
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def pytest_addoption(parser: pytest.Parser) -> None:
    """Options naming the real brokers to run broker tests against."""
    group = parser.getgroup("taskqueue-kit")
    group.addoption(
        "--taskqueue-amqp-url",
        default=None,
        help="RabbitMQ URL for broker tests (env TASKQUEUE_TEST_AMQP_URL)",
    )
    group.addoption(
        "--taskqueue-redis-url",
        default=None,
        help="Redis URL for broker tests (env TASKQUEUE_TEST_REDIS_URL)",
    )


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so broker tests may not be skipped)", pytrace=False)
    pytest.skip(reason)


def resolve_broker(config: pytest.Config, kind: str) -> BrokerTarget:
    """The target for ``kind``; skips (or fails under ``CI``) when it cannot be reached."""
    if kind == "sqlite":
        return BrokerTarget("sqlite", None, None)
    url = config.getoption(f"--taskqueue-{kind}-url") or os.environ.get(
        f"TASKQUEUE_TEST_{kind.upper()}_URL"
    )
    if not url:
        _unavailable(
            f"no {kind} URL given (--taskqueue-{kind}-url or TASKQUEUE_TEST_{kind.upper()}_URL)"
        )
    assert url is not None
    if not broker_reachable(url):
        _unavailable(f"{kind} broker at {url} is not reachable")
    backend = url if kind == "redis" else None
    return BrokerTarget(kind, url, backend)


@pytest.fixture(params=BROKERS)
def taskqueue_broker(request: pytest.FixtureRequest) -> BrokerTarget:
    """Each broker in turn: the embedded SQLite default, RabbitMQ, Redis."""
    return resolve_broker(request.config, request.param)


@pytest.fixture
def taskqueue_settings(taskqueue_broker: BrokerTarget, tmp_path: Path) -> TaskQueueSettings:
    """Settings on the broker under test, with queue names unique to this test."""
    return TaskQueueSettings(
        profile="development",
        broker_url=taskqueue_broker.broker_url,
        result_backend=taskqueue_broker.result_backend,
        home=tmp_path / "taskqueue",
        default_queue=unique_name("default"),
        track_sent=True,
        progress_interval=0.05,
    )


@pytest.fixture
def taskqueue_app(taskqueue_settings: TaskQueueSettings) -> Iterator[Celery]:
    """A configured app on the broker under test; closed after the test."""
    app = create_celery(taskqueue_settings, main=f"test_{uuid.uuid4().hex[:6]}")
    yield app
    app.close()


@pytest.fixture
def taskqueue_worker(taskqueue_app: Celery) -> Iterator[Any]:
    """A real in-thread worker for ``taskqueue_app``, consuming every declared queue.

    The worker reads the task registry when it starts, so this suits tasks declared at
    module level (``retrying_task``/``shared_task``); for tasks defined inside a test, use
    :func:`run_worker` after defining them.
    """
    with run_worker(taskqueue_app) as worker:
        yield worker


@contextlib.contextmanager
def run_worker(
    app: Celery,
    *,
    queues: Sequence[str] | None = None,
    concurrency: int = 1,
    pool: str = "threads",
    shutdown_timeout: float = 10.0,
) -> Iterator[Any]:
    """Run a real worker for ``app`` in a thread while the block runs.

    Register the tasks on the app before entering: the worker reads the registry at start.

    Args:
        app: The app.
        queues: Queues to consume; all declared queues when omitted.
        concurrency: Threads in the pool.
        pool: Celery pool (``threads`` or ``solo``).
        shutdown_timeout: Seconds to wait for running tasks at exit.

    Yields:
        The worker controller.
    """
    names = list(queues) if queues is not None else [q.name for q in app.conf.task_queues or ()]
    with start_worker(
        app,
        concurrency=concurrency,
        pool=pool,
        loglevel="WARNING",
        perform_ping_check=False,
        shutdown_timeout=shutdown_timeout,
        queues=names or None,
        # The worker heartbeat's timer wakes the event loop every 2 s; without it an idle
        # AMQP worker sleeps in poll() and never notices it was asked to stop.
        without_heartbeat=False,
    ) as worker:
        yield worker


@contextlib.contextmanager
def subprocess_worker(
    app_path: str,
    *,
    queues: Sequence[str] | None = None,
    concurrency: int = 1,
    pool: str = "prefork",
    env: dict[str, str] | None = None,
    extra_args: Sequence[str] = (),
    cwd: str | Path | None = None,
    ready_timeout: float = 30.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``celery -A app_path worker`` in another process while the block runs.

    Waits until the worker logs that it is ready, and stops it (SIGTERM, then SIGKILL)
    at exit.

    Args:
        app_path: Import path of the app, as for ``celery -A``.
        queues: Queues to consume (``-Q``); all declared when omitted.
        concurrency: Worker processes or threads.
        pool: Celery pool.
        env: Extra environment variables.
        extra_args: More ``celery worker`` arguments.
        cwd: Working directory of the worker.
        ready_timeout: Seconds to wait for readiness.

    Yields:
        The worker's process.
    """
    command = [
        sys.executable, "-m", "celery", "-A", app_path, "worker",
        "--loglevel=INFO", f"--pool={pool}", f"--concurrency={concurrency}",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
        f"--hostname=w{uuid.uuid4().hex[:8]}@%h",
    ]  # fmt: skip
    if queues:
        command.append("--queues=" + ",".join(queues))
    command.extend(extra_args)
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"taskqueue-worker-{uuid.uuid4().hex[:8]}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=cwd,
        )
    try:
        deadline = time.monotonic() + ready_timeout
        while b" ready." not in log.read_bytes():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"worker did not start:\n{log.read_text(errors='replace')[-4000:]}"
                )
            time.sleep(0.05)
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.unlink(missing_ok=True)
