"""Helpers shared by the test folders: bounded polling, free ports, web apps on a real server."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import uvicorn
from celery import Celery
from werkzeug.serving import make_server

from taskqueue_kit import TaskQueueSettings, create_celery, init_celery


def wait_until(
    condition: Callable[[], Any],
    *,
    timeout: float = 20,
    interval: float = 0.05,
    what: str = "condition",
) -> Any:
    """Poll ``condition`` until it is truthy and return it; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    """A web app on a loopback port; ``loop`` is uvicorn's event loop (FastAPI only)."""

    base_url: str
    loop: asyncio.AbstractEventLoop | None


@contextlib.contextmanager
def serve(kind: str, web_app: Any) -> Iterator[Server]:
    """Serve ``web_app`` on 127.0.0.1 and a free port for the length of the block.

    ``kind`` is ``"flask"`` (werkzeug's threaded server) or ``"fastapi"`` (uvicorn in a
    thread, on an event loop of its own that the caller can inspect).
    """
    if kind == "flask":
        wsgi = make_server("127.0.0.1", 0, web_app, threaded=True)
        thread = threading.Thread(target=wsgi.serve_forever, daemon=True)
        thread.start()
        try:
            yield Server(f"http://127.0.0.1:{wsgi.server_port}", None)
        finally:
            wsgi.shutdown()
            thread.join(10)
            wsgi.server_close()
        return
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        web_app, log_level="warning", log_config=None, ws="none", http="h11",
        lifespan="off", timeout_graceful_shutdown=2,
    )  # fmt: skip
    server = uvicorn.Server(config)
    loop = asyncio.new_event_loop()

    async def run() -> None:
        await server.serve(sockets=[listener])
        # sse-starlette keeps one shutdown watcher per event loop; end it with the server.
        leftovers = asyncio.all_tasks() - {asyncio.current_task()}
        for task in leftovers:
            task.cancel()
        await asyncio.gather(*leftovers, return_exceptions=True)

    thread = threading.Thread(target=loop.run_until_complete, args=(run(),), daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, timeout=10, what="uvicorn to start")
        yield Server(f"http://127.0.0.1:{listener.getsockname()[1]}", loop)
    finally:
        server.should_exit = True
        thread.join(10)
        if not thread.is_alive():
            loop.close()
        listener.close()


#: The two ways a user gets a kit app: built by the kit, or their own app adopting it.
APP_MAKERS = ("create_celery", "init_celery")


def make_app(how: str, settings: TaskQueueSettings, main: str) -> Celery:
    """A kit app the way ``how`` names: ``create_celery``, or a plain app plus ``init_celery``.

    The plain app is a service's own, as it is: ``Celery(main, broker=..., backend=...)``
    with the broker and backend it was written with, and the kit's settings naming neither.
    """
    if how == "create_celery":
        return create_celery(settings, main=main)
    own = {"broker_url", "result_backend"}
    kit = TaskQueueSettings(**{f: getattr(settings, f) for f in settings.model_fields_set - own})
    return init_celery(
        Celery(main, broker=settings.broker_url, backend=settings.result_backend), kit
    )
