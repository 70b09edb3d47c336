"""Serve a FastAPI or Flask app on a loopback port for a test, in a thread."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import uvicorn
from werkzeug.serving import make_server


@contextlib.contextmanager
def serve(web_app: Any) -> Iterator[str]:
    """Serve ``web_app`` (FastAPI or Flask) on 127.0.0.1; yield its base URL."""
    if hasattr(web_app, "wsgi_app"):  # Flask
        server = make_server("127.0.0.1", 0, web_app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_port}"
        finally:
            server.shutdown()
            thread.join(10)
            server.server_close()
        return
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        web_app, log_level="warning", log_config=None, ws="none", http="h11",
        lifespan="off", timeout_graceful_shutdown=2,
    )  # fmt: skip
    server_ = uvicorn.Server(config)
    loop = asyncio.new_event_loop()

    async def run() -> None:
        await server_.serve(sockets=[listener])
        # sse-starlette keeps a shutdown watcher per event loop; end it with the server.
        leftovers = asyncio.all_tasks() - {asyncio.current_task()}
        for task in leftovers:
            task.cancel()
        await asyncio.gather(*leftovers, return_exceptions=True)

    thread = threading.Thread(target=loop.run_until_complete, args=(run(),), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server_.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start within 10 s")
            time.sleep(0.02)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        server_.should_exit = True
        thread.join(10)
        loop.close()
        listener.close()
