"""The sentiment service on FastAPI: the seed's endpoints, the kit's ``/tasks`` and a page.

* ``POST /polarities/`` with ``{"review": "..."}`` sends ``polarity:analyze`` and answers
  ``202`` with the task id at once, as the seed did.
* ``GET /polarities/task/{task_id}`` answers the task's status as :class:`TaskInfo`.
* ``/tasks/...`` is :func:`taskqueue_kit.web.fastapi.task_router` exposing both tasks:
  status, an event stream, batches, revoke, health.
* ``GET /`` is a page where a person pastes reviews and watches a progress bar fed by the
  event stream.

The seed's endpoints are plain ``def`` here: FastAPI runs them in its thread pool, so
talking to the broker and the result backend never blocks the event loop (the seed's
``async def`` status endpoint did).
"""

from __future__ import annotations

from celery import Celery
from kombu.exceptions import OperationalError

from taskqueue_kit import InvalidTaskId, TaskInfo, TaskState, __version__, get_task_info
from taskqueue_kit.demo import tasks
from taskqueue_kit.demo.service import STATIC, Accepted, ReviewIn, index_html

try:
    from fastapi import APIRouter, FastAPI, HTTPException, Request
    from fastapi.responses import HTMLResponse
    from fastapi.staticfiles import StaticFiles

    from taskqueue_kit.web.fastapi import task_router
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "the FastAPI sentiment service needs FastAPI: pip install 'taskqueue-kit[examples]'"
    ) from exc

__all__ = ["create_app", "polarity_router"]


def polarity_router(celery_app: Celery, *, tasks_prefix: str = "/tasks") -> APIRouter:
    """The seed's two endpoints under ``/polarities``.

    Args:
        celery_app: The app the tasks are sent with.
        tasks_prefix: Where the kit's task router is mounted, for the ``events_url``.
    """
    router = APIRouter(prefix="/polarities", tags=["Polarity"])

    @router.post(
        "/",
        status_code=202,
        response_model=Accepted,
        summary="Score a review in the background",
        responses={503: {"description": "Broker unavailable"}},
    )
    def get_polarities(review: ReviewIn, request: Request) -> Accepted:
        """Send the review to the ``polarity`` queue; answer with the task id at once."""
        try:
            result = celery_app.tasks[tasks.ANALYZE].apply_async(args=(review.review,))
        except OperationalError as exc:
            raise HTTPException(503, f"the broker is unavailable: {exc}") from exc
        task_id = str(result.id)
        return Accepted(
            task_id=task_id,
            status_url=str(request.app.url_path_for("get_task_status", task_id=task_id)),
            events_url=f"{tasks_prefix}/{task_id}/events",
        )

    @router.get(
        "/task/{task_id}",
        response_model=TaskInfo,
        summary="Status and result of a task",
        responses={404: {"description": "No such task"}, 422: {"description": "Malformed id"}},
    )
    def get_task_status(task_id: str) -> TaskInfo:
        """The task's state, progress, result or error, as JSON."""
        try:
            info = get_task_info(task_id, app=celery_app)
        except InvalidTaskId as exc:
            raise HTTPException(422, str(exc)) from exc
        if info.state is TaskState.UNKNOWN:
            raise HTTPException(404, f"no task with id {task_id!r}: never sent, or expired")
        return info

    return router


def create_app(celery_app: Celery | None = None, *, tasks_prefix: str = "/tasks") -> FastAPI:
    """The sentiment service as a FastAPI app.

    Args:
        celery_app: The Celery app; :data:`taskqueue_kit.demo.celery_app.app` (settings
            from the environment) when omitted.
        tasks_prefix: Where to mount the kit's task router.

    Returns:
        The app; its Celery app is ``app.state.celery_app``.
    """
    if celery_app is None:
        from taskqueue_kit.demo.celery_app import app as default_app

        celery_app = default_app
    api = FastAPI(
        title="Sentiment analysis with taskqueue-kit",
        description="Reviews scored by TextBlob in Celery workers, sent and followed over "
        "HTTP: the seed's service rebuilt on taskqueue-kit.",
        version=__version__,
    )
    api.state.celery_app = celery_app
    api.include_router(polarity_router(celery_app, tasks_prefix=tasks_prefix))
    api.include_router(
        task_router(celery_app, tasks=[tasks.analyze, tasks.analyze_batch], prefix=tasks_prefix)
    )
    api.mount("/static", StaticFiles(directory=STATIC), name="static")

    @api.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        return index_html(tasks_prefix)

    return api
