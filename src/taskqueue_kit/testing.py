"""Testing helpers and pytest plugin: real brokers and real workers, not mocks.

Loaded automatically by pytest (entry point ``pytest11``). It gives:

* ``taskqueue_broker``: one test run per broker the suite asked for. ``--taskqueue-brokers``
  (comma-separated) or the ini option ``taskqueue_brokers`` names them; without either,
  ``sqlite`` (the embedded default) always, plus ``amqp`` and ``redis`` when their URL is
  given (``--taskqueue-amqp-url``/``--taskqueue-redis-url`` or
  ``TASKQUEUE_TEST_AMQP_URL``/``TASKQUEUE_TEST_REDIS_URL``). A broker asked for but missing
  or unreachable is skipped with a reason locally and is an error when ``CI`` is set; one not
  asked for is not parametrised at all.
* ``taskqueue_settings`` and ``taskqueue_app``: settings and app on that broker, with queue
  names unique to the test, so tests sharing one RabbitMQ or Redis never see each other.
* :func:`run_worker`: a real Celery worker in a thread, for the length of a ``with`` block.
* :func:`subprocess_worker`: a real ``celery worker`` in another process.

Broker passwords never reach a report: URLs are shown as ``amqp://guest:***@host``.
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
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit, urlunsplit

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker
from kombu.asynchronous import set_event_loop

from taskqueue_kit._app import create_celery
from taskqueue_kit._settings import TaskQueueSettings
from taskqueue_kit._sqlite.transport import stop_waiting

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
_URL_BROKERS = ("amqp", "redis")
_DEFAULT_PORTS = {"amqp": 5672, "amqps": 5671, "pyamqp": 5672, "redis": 6379, "rediss": 6380}
_FIXTURE = "taskqueue_broker"
_REACHABLE = pytest.StashKey[dict[str, bool]]()


@dataclass(frozen=True, repr=False)
class BrokerTarget:
    """One broker a test runs against.

    Its ``repr`` masks passwords, so a failing assertion never prints one.

    Attributes:
        kind: ``sqlite``, ``amqp`` or ``redis``.
        broker_url: The broker URL, or ``None`` for the embedded default.
        result_backend: The result backend URL, or ``None`` for the embedded default.
    """

    kind: str
    broker_url: str | None
    result_backend: str | None

    def __repr__(self) -> str:
        def show(url: str | None) -> str:
            return repr(None if url is None else _mask_url(url))

        return (
            f"BrokerTarget(kind={self.kind!r}, broker_url={show(self.broker_url)}, "
            f"result_backend={show(self.result_backend)})"
        )


def unique_name(prefix: str = "t") -> str:
    """A short name no other test run uses, for queues on a shared broker."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def broker_reachable(url: str, timeout: float = 1.0) -> bool:
    """True when a TCP connection to the URL's host and port opens within ``timeout``."""
    try:
        parts = urlsplit(url)
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme, 0)
    except ValueError:
        return False
    if not parts.hostname or not port:
        return False
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def _mask_url(url: str) -> str:
    """``url`` with every password replaced by ``***`` (kombu's ``;`` failover lists too)."""
    return ";".join(_mask_one_url(part) for part in url.split(";"))


def _mask_one_url(url: str) -> str:
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "***"  # cannot tell where a password would be: show none of it
    if password is None:
        return url
    userinfo, _, hostinfo = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{hostinfo}"))


def pytest_addoption(parser: pytest.Parser) -> None:
    """Options choosing the brokers that broker tests run on."""
    group = parser.getgroup("taskqueue-kit")
    group.addoption(
        "--taskqueue-brokers",
        dest="taskqueue_brokers",
        default=None,
        metavar="NAMES",
        help="comma-separated brokers for taskqueue_broker, of sqlite, amqp, redis "
        "(default: sqlite, plus amqp/redis when their URL is given; ini taskqueue_brokers)",
    )
    group.addoption(
        "--taskqueue-amqp-url",
        default=None,
        metavar="URL",
        help="RabbitMQ URL for broker tests (env TASKQUEUE_TEST_AMQP_URL)",
    )
    group.addoption(
        "--taskqueue-redis-url",
        default=None,
        metavar="URL",
        help="Redis URL for broker tests (env TASKQUEUE_TEST_REDIS_URL)",
    )
    parser.addini(
        "taskqueue_brokers",
        "brokers for taskqueue_broker, of sqlite, amqp, redis (--taskqueue-brokers wins)",
        type="args",
        default=[],
    )


def pytest_configure(config: pytest.Config) -> None:
    """Reject unknown broker names before anything is collected."""
    _requested_brokers(config)


def pytest_report_header(config: pytest.Config) -> str:
    """The brokers this run uses, with their URLs masked."""
    shown = []
    for kind in _selected_brokers(config):
        if kind == "sqlite":
            shown.append(kind)
        else:
            url = _broker_url(config, kind)
            shown.append(f"{kind} ({_mask_url(url) if url else 'no URL given'})")
    return "taskqueue-kit brokers: " + ", ".join(shown)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run each test using ``taskqueue_broker`` once per selected broker."""
    if _FIXTURE not in metafunc.fixturenames or not _plugin_fixture_in_use(metafunc):
        return
    kinds = list(_selected_brokers(metafunc.config))
    metafunc.parametrize(_FIXTURE, kinds, indirect=True, ids=kinds)


def _plugin_fixture_in_use(metafunc: pytest.Metafunc) -> bool:
    """False when the test parametrises ``taskqueue_broker`` itself or overrides the fixture."""
    for mark in metafunc.definition.iter_markers("parametrize"):
        argnames = mark.args[0] if mark.args else mark.kwargs.get("argnames", ())
        if isinstance(argnames, str):
            argnames = [name.strip() for name in argnames.split(",")]
        if _FIXTURE in argnames:
            return False
    # pytest has no public API for these two; without them, assume the plugin's fixture.
    if any(_FIXTURE in call.params for call in getattr(metafunc, "_calls", ())):
        return False  # another pytest_generate_tests hook got there first
    definitions = getattr(metafunc, "_arg2fixturedefs", None)
    if definitions is None:
        return True
    # Closest definition last, as pytest resolves them; an override may request ours.
    for fixturedef in reversed(definitions.get(_FIXTURE, ())):
        func = fixturedef.func
        if getattr(func, "__module__", None) == __name__ and func.__name__ == _FIXTURE:
            return True
        if fixturedef.params is not None or _FIXTURE not in fixturedef.argnames:
            return False
    return False


def _names(values: Iterable[str], source: str) -> tuple[str, ...]:
    names = [name.lower() for value in values for name in value.replace(",", " ").split()]
    unknown = [name for name in dict.fromkeys(names) if name not in BROKERS]
    if unknown:
        raise pytest.UsageError(
            f"{source}: unknown broker {', '.join(map(repr, unknown))}; "
            f"choose from {', '.join(BROKERS)}"
        )
    if not names:
        raise pytest.UsageError(f"{source} names no broker; choose from {', '.join(BROKERS)}")
    return tuple(kind for kind in BROKERS if kind in names)


def _requested_brokers(config: pytest.Config) -> tuple[str, ...] | None:
    """The brokers named by ``--taskqueue-brokers`` or the ini, or ``None`` when neither."""
    option = config.getoption("taskqueue_brokers")
    if option is not None:
        return _names([option], "--taskqueue-brokers")
    ini: list[str] = config.getini("taskqueue_brokers")
    return _names(ini, "taskqueue_brokers (ini)") if ini else None


def _selected_brokers(config: pytest.Config) -> tuple[str, ...]:
    """The brokers ``taskqueue_broker`` runs on; every one of them was asked for."""
    requested = _requested_brokers(config)
    if requested is not None:
        return requested
    return ("sqlite", *(kind for kind in _URL_BROKERS if _broker_url(config, kind)))


def _broker_url(config: pytest.Config, kind: str) -> str | None:
    if kind not in _URL_BROKERS:
        return None
    url: str | None = config.getoption(f"--taskqueue-{kind}-url") or os.environ.get(
        f"TASKQUEUE_TEST_{kind.upper()}_URL"
    )
    return url or None


def _reachable(config: pytest.Config, url: str) -> bool:
    """:func:`broker_reachable`, asked once a run per URL so a dead host costs one timeout."""
    cache = config.stash.setdefault(_REACHABLE, {})
    if url not in cache:
        cache[url] = broker_reachable(url)
    return cache[url]


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(
            f"{reason} (CI is set, so a broker asked for may not be skipped)",
            pytrace=False,
        )
    pytest.skip(reason)


def resolve_broker(config: pytest.Config, kind: str) -> BrokerTarget:
    """The target for ``kind``; skips (or fails under ``CI``) when it cannot be reached.

    Calling this asks for ``kind``, whatever ``--taskqueue-brokers`` says: a test that
    needs Redis itself fails under ``CI`` when Redis is missing.
    """
    if kind not in BROKERS:
        raise ValueError(f"unknown broker {kind!r}; choose from {', '.join(BROKERS)}")
    if kind == "sqlite":
        return BrokerTarget("sqlite", None, None)
    url = _broker_url(config, kind)
    if url is None:
        _unavailable(
            f"{kind} was asked for but no URL is given "
            f"(--taskqueue-{kind}-url or TASKQUEUE_TEST_{kind.upper()}_URL)",
        )
    if not _reachable(config, url):
        _unavailable(f"{kind} broker at {_mask_url(url)} is not reachable")
    backend = url if kind == "redis" else None
    return BrokerTarget(kind, url, backend)


@pytest.fixture
def taskqueue_broker(request: pytest.FixtureRequest) -> BrokerTarget:
    """Each selected broker in turn: the embedded SQLite default, RabbitMQ, Redis.

    Unparametrised (looked up with ``request.getfixturevalue``), it is the SQLite default.
    """
    return resolve_broker(request.config, getattr(request, "param", "sqlite"))


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
    # Celery's worker reuses the process's kombu event loop if one exists, and that loop
    # fires only the timers of the worker that made it: a second worker in this process
    # would never run its ETA and countdown tasks (retries) on RabbitMQ and Redis. Each
    # worker started here gets a loop of its own.
    set_event_loop(None)
    try:
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
            try:
                yield worker
            finally:
                # The embedded transport's idle wait ends at once, so the worker stops in
                # milliseconds instead of after Celery's 2-second drain; cleared once it has.
                stop_waiting()
    finally:
        stop_waiting(False)


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
