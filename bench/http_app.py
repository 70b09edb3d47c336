"""The HTTP figure's server: the FastAPI adapter and a plain endpoint, in one uvicorn process.

Both send the same task through the same kit app on the same broker, so the figure
compares only the HTTP layers:

* ``POST /tasks/bench.submit``: :func:`taskqueue_kit.web.fastapi.task_router` (body
  validated against the task's signature, 202 with status and event URLs);
* ``POST /plain/submit``: what the seed writes, a ``def`` endpoint with a pydantic body
  calling ``apply_async`` and returning the id.

Run as ``uvicorn bench.http_app:api`` with the app described by ``BENCH_*`` variables
(see :func:`bench.celery_apps.worker_env`).
"""

from __future__ import annotations

from fastapi import FastAPI
from pydantic import BaseModel

from bench import celery_apps
from taskqueue_kit.web.fastapi import task_router

ADAPTER_PATH = f"/tasks/{celery_apps.SUBMIT}"
PLAIN_PATH = "/plain/submit"


class Review(BaseModel):
    """The seed's request body."""

    review: str


def build_api() -> FastAPI:
    """The FastAPI app with both routes, on the app ``BENCH_*`` describes."""
    celery = celery_apps.app
    if celery is None:
        raise RuntimeError("set BENCH_FLAVOUR, BENCH_QUEUE, ... (see bench.celery_apps)")
    submit = celery.tasks[celery_apps.SUBMIT]
    api = FastAPI(title="taskqueue-kit HTTP benchmark")
    api.include_router(task_router(celery, tasks=[submit], prefix="/tasks"))

    @api.post(PLAIN_PATH, status_code=202)
    def plain_submit(review: Review) -> dict[str, str]:
        task = submit.apply_async(args=(review.review,))
        return {"task_id": task.id}

    return api


api = build_api() if celery_apps.app is not None else None
