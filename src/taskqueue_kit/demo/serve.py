"""``taskqueue-kit demo --serve``: the FastAPI service and a worker, until Ctrl-C.

While it runs, the data is where any app made with the same settings finds it
(``./.taskqueue`` or ``TASKQUEUE_HOME``, or the ``--broker``), so Flower, ``celery inspect``
or a second worker started from the same directory join in. At exit the demo removes the
data directory if it made it, as the batch demo removes its own; one that was there before
is left in place. The worker starts without Celery's banner, and what it prints comes
after the demo's own summary of where to look.
"""

from __future__ import annotations

import shutil
import socket
import sys
from pathlib import Path

from kombu.utils.url import maybe_sanitize_url

from taskqueue_kit import TaskQueueSettings
from taskqueue_kit.demo._common import (
    EXIT_FAILED,
    EXIT_OK,
    DemoError,
    check_broker,
    default_concurrency,
    describe_broker,
    require,
    settings_for,
    shielded,
    terminate_as_interrupt,
)
from taskqueue_kit.demo._display import Display, choose_display
from taskqueue_kit.demo._worker import APP_PATH, WorkerError, WorkerProcess
from taskqueue_kit.demo.celery_app import make_celery

__all__ = ["serve_demo"]


def _listen(host: str, port: int) -> socket.socket:
    """Bind the port before anything starts, so a busy port is a one-line error."""
    try:
        return socket.create_server((host, port), family=_family(host), reuse_port=False)
    except OSError as exc:
        raise DemoError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _base_url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in {"0.0.0.0", ""} else host
    shown = f"[{shown}]" if ":" in shown else shown
    return f"http://{shown}:{port}"


def _made_here(home: Path) -> Path | None:
    """The outermost directory of ``home`` that does not exist yet, or ``None`` if it does.

    That is the directory the embedded broker and backend will create, and so the one the
    demo removes at exit.
    """
    made = None
    for path in (home, *home.parents):
        if path.exists():
            break
        made = path
    return made


def _flower(settings: TaskQueueSettings) -> str:
    """The command that starts Flower against the same broker."""
    url = settings.effective_broker_url
    if settings.uses_embedded_broker:
        env = f"TASKQUEUE_HOME={settings.home}"
    elif maybe_sanitize_url(url) != url:  # never print a password
        env = "TASKQUEUE_BROKER_URL=<the broker URL>"
    else:
        env = f"TASKQUEUE_BROKER_URL='{url}'"
    return f"{env} celery -A {APP_PATH} flower --port=5555   (pip install flower)"


def _guide(
    display: Display,
    base: str,
    settings: TaskQueueSettings,
    worker: WorkerProcess,
    made: Path | None,
) -> None:
    broker = describe_broker(settings)
    if made is not None and settings.uses_embedded_broker:
        broker += "  (removed at exit)"
    lines = [
        f"Sentiment service on {base}  (Ctrl-C stops it and the worker)",
        f"  progress page:  {base}/",
        f"  API docs:       {base}/docs",
        f"  score a review: curl -X POST {base}/polarities/ -H 'Content-Type: application/json' "
        """-d '{"review": "Great value, works perfectly."}'""",
        f"  its status:     {base}/polarities/task/<task_id>  (or {base}/tasks/<task_id>)",
        f"  events stream:  curl -N {base}/tasks/<task_id>/events",
        f"  health:         {base}/tasks/health",
        f"  Flower:         {_flower(settings)}",
        f"  broker:         {broker}",
        f"  worker:         {worker.display_command}  (pid {worker.pid})",
    ]
    for line in lines:
        display.line(line)


def _serve(
    display: Display, broker_url: str | None, host: str, port: int, concurrency: int | None
) -> None:
    """Serve until uvicorn stops; Ctrl-C and SIGTERM come out as ``KeyboardInterrupt``."""
    require("textblob", "fastapi", "uvicorn", "sse_starlette")
    import uvicorn

    from taskqueue_kit.demo.fastapi_app import create_app

    settings = settings_for(broker_url, send_events=True)
    made = _made_here(settings.home)
    listener = _listen(host, port)
    app = make_celery(settings)
    worker = WorkerProcess(
        settings,
        concurrency=concurrency or default_concurrency(),
        loglevel="INFO",
        events=True,
        relay=True,
    )
    try:
        check_broker(app)
        worker.start()
        worker.wait_ready(app)
        _guide(display, _base_url(host, port), settings, worker, made)
        worker.show_output()
        config = uvicorn.Config(create_app(app), log_level="info", timeout_graceful_shutdown=3)
        # uvicorn handles Ctrl-C and SIGTERM itself, then raises them again once stopped.
        server = uvicorn.Server(config)
        server.run(sockets=[listener])
        if not server.started:
            raise DemoError("the web server did not start; its log above says why")
    finally:
        with shielded():
            worker.stop()
            listener.close()
            app.close()
            if made is not None:
                shutil.rmtree(made, ignore_errors=True)


def serve_demo(
    *,
    broker_url: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    concurrency: int | None = None,
    display: Display | None = None,
) -> int:
    """Serve the FastAPI example with a worker until Ctrl-C or SIGTERM; return the status.

    Args:
        broker_url: A RabbitMQ or Redis URL; by default the environment's broker, or the
            embedded one in ``./.taskqueue`` (``TASKQUEUE_HOME``), removed at exit if the
            demo made it.
        host: Address to listen on.
        port: Port to listen on.
        concurrency: Worker processes; one per CPU (at most 4) by default.
        display: Where to print; chosen for stdout by default.

    Returns:
        0 once stopped by Ctrl-C or SIGTERM (the way to stop it), 1 when it could not start.
    """
    display = choose_display() if display is None else display
    try:
        with terminate_as_interrupt():
            _serve(display, broker_url, host, port, concurrency)
    except KeyboardInterrupt:
        pass
    except (DemoError, WorkerError) as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    display.line("Stopped the web service and the worker.")
    return EXIT_OK
