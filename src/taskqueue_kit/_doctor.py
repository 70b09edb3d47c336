"""``taskqueue-kit doctor``: check settings and connectivity, and explain each problem.

Every check runs with a deadline, so a firewalled host or a closed port gives a one-line
reason in seconds rather than a hang or a traceback. :func:`explain` is the one place that
turns an exception into that line (what is wrong, what to do), and no line carries a
password: :func:`mask` blanks it out of every URL and every exception's text shown.

With ``app_spec`` (``--app``) the user's own Celery app is loaded as ``celery -A`` loads
it, and its configuration is checked: its broker, its backend, and its declared queues
against the queues the answering workers consume.
"""

from __future__ import annotations

import concurrent.futures
import errno
import importlib
import os
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

from celery import Celery

from taskqueue_kit import _extras
from taskqueue_kit._app import PROFILE_KEY, create_celery
from taskqueue_kit._exceptions import ConfigurationError, MissingExtra, TaskQueueKitError
from taskqueue_kit._masking import mask
from taskqueue_kit._results import read_meta
from taskqueue_kit._settings import TaskQueueSettings

__all__ = ["Check", "explain", "load_app", "mask", "run_checks"]

Status = Literal["ok", "warn", "fail"]
T = TypeVar("T")

# What serves a scheme: the server's name, how to start it, its default port.
_SERVERS = {
    "amqp": ("RabbitMQ", "rabbitmq-server -detached", 5672),
    "pyamqp": ("RabbitMQ", "rabbitmq-server -detached", 5672),
    "amqps": ("RabbitMQ", "rabbitmq-server -detached", 5671),
    "redis": ("Redis", "redis-server --daemonize yes", 6379),
    "rediss": ("Redis", "redis-server --daemonize yes", 6379),
}
_SCHEME_EXAMPLES = {"broker": "amqp:// or redis://", "result backend": "redis:// or rpc://"}


@dataclass(frozen=True)
class Check:
    """The outcome of one check.

    Attributes:
        name: What was checked.
        status: ``ok``, ``warn`` (works, but worth knowing) or ``fail``.
        detail: One line for a person: what was found, or what is wrong and what to do.
    """

    name: str
    status: Status
    detail: str


@dataclass(frozen=True)
class _Target:
    """What a check talked to, for :func:`explain`: the role, its URL, where it is set."""

    role: str  # "broker", "result backend" or "app"
    url: str  # the URL, or the --app value
    setting: str = ""  # what the user changes to fix it, e.g. TASKQUEUE_BROKER_URL
    timeout: float = 0.0


def _words(exc: BaseException) -> str:
    """An exception's message on one line, passwords masked, at most 200 characters."""
    return mask(" ".join(str(exc).split()))[:200] or type(exc).__name__


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and what caused it, outermost first (kombu wraps the socket's error)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _address(url: str, default_port: int | None) -> str:
    try:
        parts = urlsplit(url.split(";")[0])
        port = parts.port or default_port
    except ValueError:
        return mask(url)
    host = parts.hostname or "localhost"
    return f"{host}:{port}" if port else host


def explain(exc: BaseException, target: _Target | None = None) -> str:
    """One line saying what is wrong and what to do, for an exception a check raised.

    The kit's own errors are already that line. Errors of brokers and backends are
    recognised by type (and errno) anywhere in the ``__cause__`` chain; anything else
    falls back to the exception's type and first words.
    """
    chain = _chain(exc)
    names = {type(error).__name__ for error in chain}
    text = " ".join(" ".join(str(error) for error in chain).split())
    own = next((error for error in chain if isinstance(error, TaskQueueKitError)), None)
    if own is not None:
        return mask(str(own))
    if target is None:
        return f"{type(exc).__name__}: {_words(exc)}"
    url = mask(target.url)
    if target.role == "app":
        module = target.url.partition(":")[0]
        missing = str(getattr(exc, "name", None))
        if isinstance(exc, ModuleNotFoundError) and f"{module}.".startswith(f"{missing}."):
            return (
                f"cannot import {module} (--app {target.url}): run doctor from the directory "
                "that holds it, or fix the module name"
            )
        if isinstance(exc, ModuleNotFoundError):
            return f"importing {module} (--app {target.url}) needs {missing}: install it here"
        return (
            f"importing {module} (--app {target.url}) raised {type(exc).__name__}: "
            f'run `python -c "import {module}"` to see why'
        )
    scheme = urlsplit(target.url).scheme.partition("+")[0].lower()
    server, start, port = _SERVERS.get(scheme, (f"the {target.role} server", "", None))
    address = _address(target.url, port)
    if "No such transport" in text or (
        isinstance(exc, ModuleNotFoundError) and getattr(exc, "name", None) == scheme
    ):
        return (
            f"unknown {target.role} scheme {scheme}:// in {url}: use "
            f"{_SCHEME_EXAMPLES.get(target.role, 'another URL')}, or leave out "
            f"{target.setting} for the embedded one"
        )
    if names & {"AccessRefused", "AuthenticationError"}:
        return f"{server} refused the user and password of {url}: fix them in {target.setting}"
    if any(isinstance(e, ConnectionRefusedError) for e in chain) or "Connection refused" in text:
        running = f"start it with `{start}`" if start else "start it"
        return (
            f"nothing listens on {address}: is {server} running? {running} "
            f"or point {target.setting} elsewhere"
        )
    if any(isinstance(e, socket.gaierror) for e in chain):
        return f"cannot resolve the host of {url}: check the host name in {target.setting}"
    if any(
        isinstance(e, TimeoutError) or getattr(e, "errno", None) == errno.ETIMEDOUT for e in chain
    ):
        return (
            f"{address} did not answer within {target.timeout:g}s: check the host, the port "
            "and any firewall between, or allow more --timeout"
        )
    if any(isinstance(e, ConnectionResetError) for e in chain) or "unexpectedly closed" in text:
        return (
            f"{address} closed the connection at once: is {server} what listens there? "
            f"check the host and port in {target.setting}"
        )
    if "NotAllowed" in names:
        return (
            f"{server} refused the virtual host of {url}: create it "
            f"(rabbitmqctl add_vhost NAME) or fix {target.setting}"
        )
    return f"{url}: unexpected {type(exc).__name__}: {_words(exc)}"


def load_app(spec: str) -> Celery:
    """Import the app ``celery -A spec`` would: ``module:attribute``, or ``module``'s ``app``
    or ``celery``, with the current directory on ``sys.path``.

    Raises:
        ConfigurationError: the module holds no Celery app under those names.
        ImportError: the module cannot be imported (or anything its import raises).
    """
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    module_name, _, attribute = spec.partition(":")
    module = importlib.import_module(module_name)
    candidates = [attribute] if attribute else ["app", "celery"]
    for name in candidates:
        app = getattr(module, name, None)
        if isinstance(app, Celery):
            return app
    raise ConfigurationError(
        f"{module_name} has no Celery app named {' or '.join(candidates)}: "
        f"pass --app {module_name}:NAME, NAME being the variable that holds the app",
        field="app",
    )


def _extras_check() -> list[Check]:
    """Which extras are installed; a warning for each one installed only in part."""
    installed: list[str] = []
    problems: list[Check] = []
    for extra in _extras.EXTRAS:
        missing = _extras.missing_modules(extra.name)
        if extra.modules[0] in missing:
            continue
        if missing:
            error = MissingExtra(extra.feature, extra.name, module=missing[0])
            problems.append(Check("extras", "warn", str(error)))
            continue
        try:
            if extra.adapter:
                importlib.import_module(extra.adapter)
        except Exception as exc:  # an incompatible version: say so, and keep checking
            problems.append(Check("extras", "warn", f"{extra.adapter}: {explain(exc)}"))
            continue
        installed.append(extra.name)
    absent = [e.name for e in _extras.EXTRAS if e.name not in installed]
    summary = f"installed: {', '.join(installed) or 'none'}"
    if absent:
        summary += f"; not installed: {', '.join(absent)}"
    return [Check("extras", "ok", summary), *problems]


def _with_deadline(func: Callable[[], T], timeout: float) -> T:
    """Run ``func`` in a daemon-ish thread; raise TimeoutError if it takes too long."""
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    try:
        return pool.submit(func).result(timeout=timeout)
    except concurrent.futures.TimeoutError as exc:
        raise TimeoutError(f"no answer within {timeout:g}s") from exc
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _broker(app: Celery, timeout: float) -> str:
    def connect() -> None:
        with app.connection_for_write() as connection:
            connection.ensure_connection(
                max_retries=1, timeout=max(1, int(timeout)), interval_start=0
            )
            channel = connection.default_channel
            for queue in app.conf.task_queues or ():
                queue(channel).declare()

    _with_deadline(connect, timeout)
    return f"reachable at {mask(_broker_url(app))}"


def _broker_url(app: Celery) -> str:
    return str(app.conf.broker_url or "amqp://localhost//")  # kombu's default


def _backend(app: Celery, timeout: float) -> str:
    def probe() -> str:
        read_meta(app, "taskqueue-kit-doctor-probe")
        return type(app.backend).__name__

    return f"{_with_deadline(probe, timeout)} answers"


def _declared_queues(app: Celery) -> list[str]:
    queues = [queue.name for queue in app.conf.task_queues or ()]
    return queues or [app.conf.task_default_queue]


def _workers(app: Celery, timeout: float, celery_a: str) -> list[Check]:
    """Who answers, and a warning for each declared queue none of them consumes."""
    inspect = app.control.inspect(timeout=min(1.0, timeout))
    replies = _with_deadline(inspect.active_queues, timeout + 1) or {}
    declared = _declared_queues(app)
    if not replies:
        return [
            Check(
                "workers",
                "warn",
                f"no worker answered a ping, so nothing consumes {', '.join(declared)}: "
                f"start one with `{celery_a} worker`",
            )
        ]
    consumed = {queue["name"] for queues in replies.values() for queue in queues or ()}
    idle = [name for name in declared if name not in consumed]
    found = f"{len(replies)} answered: {', '.join(sorted(replies))}"
    return [
        Check("workers", "ok", found if idle else f"{found}; each declared queue has a consumer"),
        *(
            Check(
                "queues",
                "warn",
                f"no worker consumes {name}: start one with `{celery_a} worker -Q {name}`",
            )
            for name in idle
        ),
    ]


# The check a setting's missing extra is reported on.
_CHECK_OF_FIELD = {"broker_url": "broker", "result_backend": "result backend"}


def _build(
    settings_kwargs: dict[str, Any], app_spec: str | None, timeout: float
) -> tuple[Celery, str, _Target, _Target]:
    """The app to check, the settings line, and what the broker and backend checks talk to."""
    if app_spec is None:
        settings = TaskQueueSettings(**settings_kwargs)
        app = create_celery(settings, main="taskqueue_kit_doctor")
        summary = f"profile {settings.profile}"
        where = {
            field: f"--{option}" if field in settings_kwargs else variable
            for field, option, variable in (
                ("broker_url", "broker", "TASKQUEUE_BROKER_URL"),
                ("result_backend", "backend", "TASKQUEUE_RESULT_BACKEND"),
            )
        }
    else:
        app = load_app(app_spec)
        _extras.require_for_url(app.conf.broker_url, "broker", field="broker_url")
        _extras.require_for_url(app.conf.result_backend, "result backend", field="result_backend")
        profile = app.conf.get(PROFILE_KEY)
        summary = f"app {app_spec}" + (f"; profile {profile}" if profile else "")
        where = {field: f"the app's {field}" for field in ("broker_url", "result_backend")}
    summary += f"; queues {', '.join(_declared_queues(app))}"
    broker = _Target("broker", _broker_url(app), where["broker_url"], timeout)
    backend_url = str(app.conf.result_backend)
    backend = _Target("result backend", backend_url, where["result_backend"], timeout)
    return app, summary, broker, backend


def run_checks(
    settings_kwargs: dict[str, Any], timeout: float = 4.0, *, app_spec: str | None = None
) -> list[Check]:
    """Run every check and return their outcomes; never raises for a failed check.

    Every line is masked once more on the way out, whichever check built it: no line
    doctor prints holds a password, even one an unforeseen exception's text repeats.

    Args:
        settings_kwargs: ``TaskQueueSettings`` fields given on the command line.
        timeout: Seconds allowed per check.
        app_spec: ``module`` or ``module:attribute`` of the user's app, instead of
            settings built from ``settings_kwargs`` and the environment.
    """
    checks = _run_checks(settings_kwargs, timeout, app_spec)
    return [Check(check.name, check.status, mask(check.detail)) for check in checks]


def _run_checks(
    settings_kwargs: dict[str, Any], timeout: float, app_spec: str | None
) -> list[Check]:
    try:
        app, summary, broker, backend = _build(settings_kwargs, app_spec, timeout)
    except MissingExtra as exc:
        return [
            Check(_CHECK_OF_FIELD.get(exc.field or "", "settings"), "fail", str(exc)),
            *_extras_check(),
        ]
    except Exception as exc:  # a kit error (bad settings), or the user's module failing
        target = _Target("app", app_spec) if app_spec else None
        return [Check("app" if app_spec else "settings", "fail", explain(exc, target))]
    pickle = "pickle" in {*app.conf.accept_content, *(app.conf.result_accept_content or ())}
    checks = [
        Check("settings", "ok", summary),
        *_extras_check(),
        Check(
            "serialization",
            "warn" if pickle else "ok",
            "pickle accepted: anyone who can publish can run code" if pickle else "JSON only",
        ),
    ]
    try:
        checks.append(Check("broker", "ok", _broker(app, timeout)))
    except Exception as exc:  # every failure becomes one readable line
        checks.append(Check("broker", "fail", explain(exc, broker)))
        return checks
    try:
        if not app.conf.result_backend:
            checks.append(Check("result backend", "warn", "none set: results cannot be read"))
        else:
            checks.append(Check("result backend", "ok", _backend(app, timeout)))
    except Exception as exc:
        checks.append(Check("result backend", "fail", explain(exc, backend)))
    try:
        checks += _workers(app, timeout, f"celery -A {app_spec or 'yourapp'}")
    except Exception as exc:
        checks.append(Check("workers", "warn", f"ping failed: {explain(exc, broker)}"))
    return checks
