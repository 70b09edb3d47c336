"""What the FastAPI and Flask versions of the service share: bodies and the progress page."""

from __future__ import annotations

import html
from functools import cache
from pathlib import Path

from pydantic import BaseModel

from taskqueue_kit.demo.tasks import ReviewText

__all__ = ["STATIC", "Accepted", "ReviewIn", "index_html"]

STATIC = Path(__file__).with_name("static")
"""The page's script and style sheet, served under ``/static``."""


class ReviewIn(BaseModel):
    """Body of ``POST /polarities/``, as in the lecture's service."""

    review: ReviewText


class Accepted(BaseModel):
    """Answer of ``POST /polarities/``: the task id at once, and where to follow it."""

    task_id: str
    status_url: str
    events_url: str


@cache
def _template() -> str:
    return (STATIC / "index.html").read_text(encoding="utf-8")


def index_html(tasks_prefix: str = "/tasks") -> str:
    """The progress page, sending to the task router mounted at ``tasks_prefix``.

    The prefix is written relative to the page (``tasks``, not ``/tasks``), so the page
    keeps working when the whole service is mounted under a path.
    """
    relative = tasks_prefix.strip("/")
    return _template().replace("__TASKS_PREFIX__", html.escape(relative, quote=True))
