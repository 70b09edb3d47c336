"""Flask adapter: ``task_blueprint`` for the HTTP API, ``init_app`` for tasks in app context.

The blueprint serves the same routes and answers as the FastAPI router; guard it the Flask
way, with ``blueprint.before_request`` or a decorator. With ``public_health=True`` the
health route is served by a small blueprint of its own, registered on the app beside the
guarded one, so the guards of the tasks blueprint never run for it. The event stream is a
generator response, so it holds one server thread while open.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from celery import Celery, Task
from celery.signals import task_postrun, task_prerun

from taskqueue_kit._extras import optional_imports
from taskqueue_kit._taskinfo import TaskInfo
from taskqueue_kit.web import _core
from taskqueue_kit.web._core import WebOptions

with optional_imports("flask", __name__):
    from flask import Blueprint, Flask, Response, jsonify, request
    from flask.blueprints import BlueprintSetupState
    from flask.ctx import AppContext
    from flask.typing import ResponseReturnValue
    from werkzeug.exceptions import RequestEntityTooLarge

__all__ = ["init_app", "task_blueprint"]

_DEFAULTS = WebOptions()
_EXTENSION = "taskqueue_kit"


def _body(options: WebOptions) -> bytes:
    """The request's raw JSON body, for the core to parse: 413 over the limit, 415 not JSON."""
    limit = options.max_body_size
    # Werkzeug stops a streamed (chunked) body at the maximum without an error, so read
    # one byte more than allowed: getting it means the body is too large.
    request.max_content_length = limit + 1
    try:
        raw = request.get_data(cache=False)
    except RequestEntityTooLarge:
        raw = None
    if raw is None or len(raw) > limit:
        raise _core.HTTPProblem(413, f"the body is over the limit of {limit} bytes")
    _core.require_json(raw, request.is_json)
    return raw


def _base(suffix: str) -> str:
    """The blueprint's prefix as the client reached it (under any script root)."""
    return request.script_root + request.path.removesuffix(suffix)


def _stream(app: Celery, first: TaskInfo, options: WebOptions) -> Iterator[str]:
    """One event per change of the task's status, until a final state.

    A comment goes out after ``heartbeat`` quiet seconds: a WSGI server only learns that
    the client left when a write fails, and then closes this generator.
    """
    tracker = _core.EventTracker()
    info = first
    last_write = time.monotonic()
    while True:
        event = tracker.observe(info)
        if event is not None:
            yield _core.encode_sse(event)
            last_write = time.monotonic()
        if tracker.done:
            return
        time.sleep(options.poll_interval)
        if time.monotonic() - last_write >= options.heartbeat:
            yield ": ping\n\n"
            last_write = time.monotonic()
        info = _core.read_task(app, first.task_id)


def _register_beside(companion: Blueprint) -> Callable[[BlueprintSetupState], None]:
    """Register ``companion`` on the app wherever the blueprint recording this is registered.

    On the app itself, not inside the blueprint, whose ``before_request`` functions would
    otherwise run for it (as would those of a parent blueprint). It takes the prefix and
    subdomain the blueprint got, and a name after the one it was registered under, so the
    same blueprint can be registered twice.
    """

    def register(state: BlueprintSetupState) -> None:
        owner = f"{state.name_prefix}.{state.name}".lstrip(".").replace(".", "_")
        state.app.register_blueprint(
            companion,
            name=f"{owner}_{companion.name}",
            url_prefix=state.url_prefix,
            subdomain=state.subdomain,
        )

    return register


def task_blueprint(
    celery_app: Celery,
    *,
    tasks: Iterable[Task[Any, Any]],
    url_prefix: str = "/tasks",
    name: str = "taskqueue",
    max_body_size: int = _DEFAULTS.max_body_size,
    max_batch_items: int = _DEFAULTS.max_batch_items,
    poll_interval: float = _DEFAULTS.poll_interval,
    heartbeat: float = _DEFAULTS.heartbeat,
    ping_timeout: float = _DEFAULTS.ping_timeout,
    public_health: bool = False,
) -> Blueprint:
    """A blueprint that sends ``tasks`` over HTTP and reports on them.

    The routes and answers are those of :func:`taskqueue_kit.web.fastapi.task_router`.

    Args:
        celery_app: The app the tasks are registered on.
        tasks: The tasks to expose; nothing else can be sent.
        url_prefix: URL prefix of every route.
        name: Blueprint name (for ``url_for``); change it to register two blueprints.
        max_body_size: Largest request body in bytes; 413 above it.
        max_batch_items: Most items in one batch request.
        poll_interval: Seconds between status reads of an open event stream.
        heartbeat: Seconds between keep-alive comments on an idle event stream.
        ping_timeout: Seconds the health check waits for workers' answers.
        public_health: Serve ``GET {url_prefix}/health`` outside the blueprint's
            ``before_request`` guards, for load balancers and orchestrators that probe it
            without credentials: from a blueprint named ``{name}_health``, registered on
            the app with this one. Guards on the whole app still run for it.

    Returns:
        The blueprint, for ``flask_app.register_blueprint``.

    Raises:
        TypeError: an item of ``tasks`` is not a task, or its signature has no model.
        ValueError: a task is not registered on ``celery_app``, or an option is out of range.
    """
    options = WebOptions(
        max_body_size=max_body_size,
        max_batch_items=max_batch_items,
        poll_interval=poll_interval,
        heartbeat=heartbeat,
        ping_timeout=ping_timeout,
    )
    exposed = _core.expose(celery_app, tasks, options)
    blueprint = Blueprint(name, __name__, url_prefix=url_prefix)

    @blueprint.errorhandler(_core.HTTPProblem)
    def refuse(problem: _core.HTTPProblem) -> ResponseReturnValue:
        return jsonify(detail=problem.detail), problem.status

    def health() -> ResponseReturnValue:
        report = _core.check_health(celery_app, options)
        return report.model_dump(mode="json"), _core.health_status(report)

    if public_health:
        public = Blueprint("health", __name__)
        public.add_url_rule("/health", view_func=health, methods=["GET"])
        blueprint.record(_register_beside(public))
    else:
        blueprint.add_url_rule("/health", view_func=health, methods=["GET"])

    @blueprint.get("/groups/<group_id>")
    def group_status(group_id: str) -> ResponseReturnValue:
        return _core.group_info(celery_app, group_id).model_dump(mode="json")

    @blueprint.post("/<task_name>")
    def submit(task_name: str) -> ResponseReturnValue:
        task = _core.lookup(exposed, task_name)
        arguments = _core.validate_arguments(task, _body(options))
        task_id = _core.send(task, arguments)
        return _core.links(_base(f"/{task_name}"), task_id).model_dump(mode="json"), 202

    @blueprint.post("/<task_name>/batch")
    def submit_batch(task_name: str) -> ResponseReturnValue:
        task = _core.lookup(exposed, task_name)
        items = _core.validate_batch(task, _body(options))
        group_id, task_ids = _core.send_batch(celery_app, task, items)
        links = _core.batch_links(_base(f"/{task_name}/batch"), group_id, task_ids)
        return links.model_dump(mode="json"), 202

    @blueprint.get("/<task_id>/events")
    def events(task_id: str) -> ResponseReturnValue:
        first = _core.task_info(celery_app, task_id)
        return Response(
            _stream(celery_app, first, options),
            mimetype="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    @blueprint.get("/<task_id>")
    def status(task_id: str) -> ResponseReturnValue:
        return _core.task_info(celery_app, task_id).model_dump(mode="json")

    @blueprint.delete("/<task_id>")
    def revoke(task_id: str) -> ResponseReturnValue:
        _core.revoke(celery_app, task_id)
        return _core.links(_base(f"/{task_id}"), task_id).model_dump(mode="json"), 202

    return blueprint


_instances = itertools.count()


class _AppContextForTasks:
    """Pushes a Flask app context around each task of one Celery app, in the worker.

    Celery's ``task_prerun`` and ``task_postrun`` fire in the thread that runs the task
    (and ``task_postrun`` also after a failure), so the context is pushed and popped
    there. The receivers are bound methods held weakly by Celery and strongly by the
    Flask app's ``extensions``, so they live exactly as long as the Flask app.
    """

    def __init__(self, flask_app: Flask, celery_app: Celery) -> None:
        self.flask_app = flask_app
        self.celery_app = celery_app
        self._local = threading.local()
        # Celery before 5.7 tells bound methods apart by their function only, so a second
        # instance's receivers would be dropped as duplicates; a uid per instance keeps both.
        uid = f"{__name__}:{next(_instances)}"
        task_prerun.connect(self.enter, dispatch_uid=uid)
        task_postrun.connect(self.leave, dispatch_uid=uid)

    def _pushed(self) -> list[tuple[str | None, AppContext]]:
        stack: list[tuple[str | None, AppContext]] | None = getattr(self._local, "stack", None)
        if stack is None:
            stack = self._local.stack = []
        return stack

    def enter(self, sender: Any = None, task_id: str | None = None, **_: Any) -> None:
        """Push the app context before one of our tasks runs."""
        if getattr(sender, "app", None) is not self.celery_app:
            return
        context = self.flask_app.app_context()
        context.push()
        self._pushed().append((task_id, context))

    def leave(self, sender: Any = None, task_id: str | None = None, **_: Any) -> None:
        """Pop the context pushed for this task."""
        stack = self._pushed()
        if stack and stack[-1][0] == task_id and getattr(sender, "app", None) is self.celery_app:
            stack.pop()[1].pop()


def init_app(flask_app: Flask, celery_app: Celery) -> None:
    """Run every task of ``celery_app`` inside ``flask_app``'s application context.

    Tasks can then use ``current_app``, its config and its extensions in the worker, as
    they would in a view. Call it where the worker imports the app (the module named by
    ``celery -A``); calling it again for the same pair changes nothing.

    Args:
        flask_app: The Flask app whose context the tasks need.
        celery_app: The Celery app whose tasks run in it.
    """
    current = flask_app.extensions.get(_EXTENSION)
    if isinstance(current, _AppContextForTasks) and current.celery_app is celery_app:
        return
    flask_app.extensions[_EXTENSION] = _AppContextForTasks(flask_app, celery_app)
