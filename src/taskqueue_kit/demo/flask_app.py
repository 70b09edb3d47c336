"""The sentiment service on Flask: the same endpoints and page as the FastAPI version.

``POST /polarities/`` and ``GET /polarities/task/<task_id>`` as in the article's original
FastAPI + Celery + RabbitMQ service; the kit's ``/tasks`` blueprint (status, event stream,
batches, revoke, health) in place of its hand-written Celery code; the progress page at
``/``. :func:`taskqueue_kit.web.flask.init_app` runs the tasks inside the Flask
app context, the way a Flask service's own tasks would use its config and extensions.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from kombu.exceptions import OperationalError
from pydantic import ValidationError

from taskqueue_kit import InvalidTaskId, TaskState, get_task_info
from taskqueue_kit.demo import tasks
from taskqueue_kit.demo.service import STATIC, Accepted, ReviewIn, index_html

try:
    from flask import Blueprint, Flask, request, url_for
    from flask.typing import ResponseReturnValue

    from taskqueue_kit.web.flask import init_app, task_blueprint
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "the Flask sentiment service needs Flask: pip install 'taskqueue-kit[examples]'"
    ) from exc

__all__ = ["create_app", "polarity_blueprint"]


def _problem(status: int, detail: Any) -> ResponseReturnValue:
    return {"detail": detail}, status


def polarity_blueprint(celery_app: Celery, *, tasks_prefix: str = "/tasks") -> Blueprint:
    """The original service's two endpoints under ``/polarities``, as the FastAPI version.

    Args:
        celery_app: The app the tasks are sent with.
        tasks_prefix: Where the kit's task blueprint is registered, for the ``events_url``.
    """
    blueprint = Blueprint("polarities", __name__, url_prefix="/polarities")

    @blueprint.post("/")
    def get_polarities() -> ResponseReturnValue:
        """Send the review to the ``polarity`` queue; answer with the task id at once."""
        body = request.get_json(silent=True)
        if body is None:
            return _problem(415, "send {'review': '...'} as JSON, Content-Type: application/json")
        try:
            review = ReviewIn.model_validate(body)
        except ValidationError as exc:
            errors = exc.errors(include_url=False, include_context=False, include_input=False)
            return _problem(422, [{**error, "loc": ["body", *error["loc"]]} for error in errors])
        try:
            result = celery_app.tasks[tasks.ANALYZE].apply_async(args=(review.review,))
        except OperationalError as exc:
            return _problem(503, f"the broker is unavailable: {exc}")
        task_id = str(result.id)
        accepted = Accepted(
            task_id=task_id,
            status_url=url_for("polarities.get_task_status", task_id=task_id),
            events_url=f"{request.script_root}{tasks_prefix}/{task_id}/events",
        )
        return accepted.model_dump(mode="json"), 202

    @blueprint.get("/task/<task_id>")
    def get_task_status(task_id: str) -> ResponseReturnValue:
        """The task's state, progress, result or error, as JSON."""
        try:
            info = get_task_info(task_id, app=celery_app)
        except InvalidTaskId as exc:
            return _problem(422, str(exc))
        if info.state is TaskState.UNKNOWN:
            return _problem(404, f"no task with id {task_id!r}: never sent, or expired")
        return info.model_dump(mode="json")

    return blueprint


def create_app(celery_app: Celery | None = None, *, tasks_prefix: str = "/tasks") -> Flask:
    """The sentiment service as a Flask app.

    Args:
        celery_app: The Celery app; :data:`taskqueue_kit.demo.celery_app.app` (settings
            from the environment) when omitted.
        tasks_prefix: Where to register the kit's task blueprint.

    Returns:
        The app; its Celery app is ``app.extensions["celery"]``.
    """
    if celery_app is None:
        from taskqueue_kit.demo.celery_app import app as default_app

        celery_app = default_app
    flask_app = Flask(__name__, static_folder=str(STATIC), static_url_path="/static")
    flask_app.extensions["celery"] = celery_app
    init_app(flask_app, celery_app)
    flask_app.register_blueprint(polarity_blueprint(celery_app, tasks_prefix=tasks_prefix))
    flask_app.register_blueprint(
        task_blueprint(
            celery_app, tasks=[tasks.analyze, tasks.analyze_batch], url_prefix=tasks_prefix
        )
    )

    @flask_app.get("/")
    def page() -> ResponseReturnValue:
        return index_html(tasks_prefix), 200, {"Content-Type": "text/html; charset=utf-8"}

    return flask_app
