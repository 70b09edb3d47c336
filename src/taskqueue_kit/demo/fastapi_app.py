"""The sentiment service on FastAPI: the original service's endpoints, the kit's ``/tasks``.

The endpoints are those of the article's original FastAPI + Celery + RabbitMQ service,
with the hand-written Celery code replaced by the kit:

* ``POST /polarities/`` with ``{"review": "..."}`` sends ``polarity:analyze`` and answers
  ``202`` with the task id at once, as the original did.
* ``GET /polarities/task/{task_id}`` answers the task's status as :class:`TaskInfo`.
* ``/tasks/...`` is :func:`taskqueue_kit.web.fastapi.task_router` exposing both tasks:
  status, an event stream, batches, revoke, health.
* ``GET /`` is a page where a person pastes reviews and watches each score arrive, fed by
  the event stream.
* ``GET /docs`` (Swagger UI) and ``GET /redoc`` load their scripts and styles from this
  service, not from a CDN, so they work offline: FastAPI's self-hosting recipe, with the
  files that the ``fastapi-offline`` package ships.

The two ``/polarities`` endpoints are plain ``def`` here: FastAPI runs them in its thread
pool, so talking to the broker and the result backend never blocks the event loop (the
original's ``async def`` status endpoint did).
"""

from __future__ import annotations

from pathlib import Path

from celery import Celery
from kombu.exceptions import OperationalError

from taskqueue_kit import InvalidTaskId, TaskInfo, TaskState, __version__, get_task_info
from taskqueue_kit.demo import tasks
from taskqueue_kit.demo.service import STATIC, Accepted, ReviewIn, index_html

try:
    import fastapi_offline
    from fastapi import APIRouter, FastAPI, HTTPException, Request
    from fastapi.openapi.docs import (
        get_redoc_html,
        get_swagger_ui_html,
        get_swagger_ui_oauth2_redirect_html,
    )
    from fastapi.responses import HTMLResponse
    from fastapi.staticfiles import StaticFiles

    from taskqueue_kit.web.fastapi import task_router
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "the FastAPI sentiment service needs FastAPI and fastapi-offline: "
        "pip install 'taskqueue-kit[examples]'"
    ) from exc

__all__ = ["create_app", "polarity_router"]

_DOCS_ASSETS = Path(fastapi_offline.__file__).with_name("static")
"""Swagger UI's and ReDoc's scripts and styles, as the ``fastapi-offline`` package ships them."""
_ASSETS_URL = "/docs-assets"


def polarity_router(celery_app: Celery, *, tasks_prefix: str = "/tasks") -> APIRouter:
    """The original service's two endpoints under ``/polarities``.

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
        "HTTP: the article's original FastAPI + Celery + RabbitMQ service, its hand-written "
        "Celery code replaced by taskqueue-kit.",
        version=__version__,
        # Served by _self_hosted_docs below: FastAPI's own pages load from a CDN.
        docs_url=None,
        redoc_url=None,
    )
    api.state.celery_app = celery_app
    api.include_router(polarity_router(celery_app, tasks_prefix=tasks_prefix))
    api.include_router(
        task_router(celery_app, tasks=[tasks.analyze, tasks.analyze_batch], prefix=tasks_prefix)
    )
    api.mount("/static", StaticFiles(directory=STATIC), name="static")
    _self_hosted_docs(api)

    @api.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        return index_html(tasks_prefix)

    return api


def _self_hosted_docs(api: FastAPI) -> None:
    """``/docs`` and ``/redoc`` with every script and style served by ``api`` itself.

    FastAPI's "Custom Docs UI Static Assets (Self-Hosting)" recipe: its default pages
    load Swagger UI and ReDoc from a CDN, and without a network they stay blank. URLs
    start with the request's ``root_path``, as FastAPI's own pages do, so the pages keep
    working behind a proxy that mounts the service under a path.
    """
    api.mount(_ASSETS_URL, StaticFiles(directory=_DOCS_ASSETS), name="docs-assets")
    openapi_url = api.openapi_url or "/openapi.json"
    oauth2_redirect_url = api.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect"

    def root(request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/")

    @api.get("/docs", include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        base = root(request)
        return get_swagger_ui_html(
            openapi_url=base + openapi_url,
            title=f"{api.title} - Swagger UI",
            oauth2_redirect_url=base + oauth2_redirect_url,
            swagger_js_url=f"{base}{_ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{base}{_ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{base}{_ASSETS_URL}/favicon.png",
            swagger_ui_parameters=api.swagger_ui_parameters,
        )

    @api.get(oauth2_redirect_url, include_in_schema=False)
    def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @api.get("/redoc", include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        base = root(request)
        return get_redoc_html(
            openapi_url=base + openapi_url,
            title=f"{api.title} - ReDoc",
            redoc_js_url=f"{base}{_ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{base}{_ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )
