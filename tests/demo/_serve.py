"""Serve a FastAPI or Flask app on a loopback port for a test, in a thread."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from _support import serve as serve_app


@contextlib.contextmanager
def serve(web_app: Any) -> Iterator[str]:
    """Serve ``web_app`` (FastAPI or Flask) on 127.0.0.1; yield its base URL."""
    kind = "flask" if hasattr(web_app, "wsgi_app") else "fastapi"
    with serve_app(kind, web_app) as server:
        yield server.base_url
