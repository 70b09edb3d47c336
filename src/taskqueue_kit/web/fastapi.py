"""FastAPI adapter: ``task_router`` puts chosen tasks behind one HTTP prefix.

The event loop never waits on Celery: plain ``def`` endpoints run in FastAPI's thread pool,
and the event stream reads status through ``anyio.to_thread`` between ``anyio.sleep``
calls. A client that disconnects cancels its stream (sse-starlette watches for it), which
ends the watching at its next await.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Sequence
from enum import Enum
from typing import Annotated, Any, TypeVar

from celery import Celery, Task
from pydantic import BaseModel, ValidatorFunctionWrapHandler, WrapValidator

from taskqueue_kit._extras import optional_imports
from taskqueue_kit._taskinfo import TaskInfo
from taskqueue_kit.web import _core
from taskqueue_kit.web._core import BatchAccepted, GroupInfo, Health, TaskAccepted, WebOptions

with optional_imports("fastapi", __name__):
    import anyio
    from fastapi import APIRouter, Body, HTTPException, Request, Response, params
    from fastapi.routing import APIRoute
    from sse_starlette import EventSourceResponse, ServerSentEvent

__all__ = ["task_router"]

T = TypeVar("T")

_DEFAULTS = WebOptions()


def _problem(status: int, description: str) -> dict[int | str, dict[str, Any]]:
    return {status: {"description": description}}


_NOT_FOUND = _problem(404, "No record of this id (never sent, or expired)")
_BAD_ID = _problem(422, "Malformed id")
_PUBLIC_HEALTH = "Served without the router's dependencies, for load balancers and probes."
_SEND_PROBLEMS = {
    **_problem(400, "Body is not UTF-8 text"),
    **_problem(413, "Body over the size limit"),
    **_problem(415, "Body is not JSON"),
    **_problem(503, "Broker unavailable"),
}


def _answer(function: Callable[..., T], *args: Any) -> T:
    """Call a core function, turning its refusal into FastAPI's ``HTTPException``."""
    try:
        return function(*args)
    except _core.HTTPProblem as problem:
        raise HTTPException(problem.status, problem.detail) from problem


def _json(model: BaseModel, status: int) -> Response:
    """``model`` as a JSON response, serialised once, by pydantic.

    A returned model would be validated against ``response_model`` again by FastAPI, dumped
    to a dict and encoded from that: three passes over a value built from that very model.
    The route still declares ``response_model``, which is what its OpenAPI entry shows.
    """
    return Response(model.model_dump_json(), status_code=status, media_type="application/json")


def _base(request: Request, suffix: str) -> str:
    """The router's own prefix as the client reached it (after any outer prefix or mount)."""
    return request.url.path.removesuffix(suffix)


class _StrictJsonRequest(Request):
    """A request whose JSON body is parsed by the core: strictly, as the Flask adapter does.

    FastAPI's own parser reads ``NaN`` and ``Infinity``, and fails with a 400 on a body
    nested too deeply or an integer too long; here each is a ``json_invalid`` 422, the
    same answer in both adapters. The parsed value is kept, so a dependency that reads
    ``await request.json()`` gets it too.
    """

    async def json(self) -> Any:
        if not hasattr(self, "_strict_json"):
            self._strict_json = _answer(_core.decode_json, await self.body())
        return self._strict_json


class _JsonBodyRoute(APIRoute):
    """A route whose JSON body is parsed by the core, then validated by it in the endpoint.

    FastAPI's documented way to change how a route reads its request. Like FastAPI's own
    parsing, a body that is not JSON is refused before the router's dependencies run;
    field validation, and the 415 for another media type, come after them.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_json(request: Request) -> Response:
            return await handler(_StrictJsonRequest(request.scope, request.receive))

        return strict_json


def _unvalidated(value: Any, _: ValidatorFunctionWrapHandler) -> Any:
    """Skip FastAPI's validation of the body, which the endpoint has the core do."""
    return value


def _with_body(endpoint: Callable[..., T], model: type[BaseModel]) -> Callable[..., T]:
    """Declare ``model`` as the endpoint's JSON body, so FastAPI documents it in OpenAPI.

    The model is built at run time from the task's signature, so it cannot be written in
    an annotation; the endpoint's signature is rewritten instead, which FastAPI reads.
    FastAPI does not validate against it: it would validate the parsed value in pydantic's
    Python mode, where strict mode refuses a ``datetime`` sent as a string. The endpoint
    has the core validate the raw body in JSON mode instead, an empty one too, so the
    parameter is optional (:func:`_body_required` keeps OpenAPI's ``required``).
    """
    body = inspect.Parameter(
        "body",
        inspect.Parameter.KEYWORD_ONLY,
        annotation=Annotated[model, Body(), WrapValidator(_unvalidated)],
        default=None,
    )
    request = inspect.Parameter("request", inspect.Parameter.KEYWORD_ONLY, annotation=Request)
    endpoint.__signature__ = inspect.Signature([request, body])  # type: ignore[attr-defined]
    return endpoint


def _body_required(model: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI's word that a body is required, when the task has a required argument."""
    required = any(field.is_required() for field in model.model_fields.values())
    return {"requestBody": {"required": True}} if required else {}


async def _validated(
    request: Request, validate: Callable[[_core.ExposedTask, bytes], T], exposed: _core.ExposedTask
) -> T:
    """The raw body (read once, and kept) judged by the core, as Flask's is: 415, 400, 422."""
    raw = await request.body()
    is_json = _core.is_json_content_type(request.headers.get("content-type"))
    _answer(_core.require_json, raw, is_json)
    return _answer(validate, exposed, raw)


def _add_task_routes(
    router: APIRouter, app: Celery, exposed: _core.ExposedTask, limiter: anyio.CapacityLimiter
) -> None:
    """``POST /{name}`` and ``POST /{name}/batch`` for one task, with its own body models."""
    name = exposed.name
    doc = exposed.arguments.__doc__

    # ``body`` is there for OpenAPI only: the endpoints validate the raw body themselves.
    async def submit(*, request: Request, body: Any) -> Response:
        # Validation and the answer stay on the event loop; only the blocking send goes
        # to a thread, at most ``send_concurrency`` at once.
        arguments = await _validated(request, _core.validate_arguments, exposed)
        task_id = await anyio.to_thread.run_sync(
            _answer, _core.send, exposed, arguments, limiter=limiter
        )
        return _json(_core.links(_base(request, f"/{name}"), task_id), 202)

    async def submit_batch(*, request: Request, body: Any) -> Response:
        # Validation on the event loop, as FastAPI's own was; the send in a worker thread.
        items = await _validated(request, _core.validate_batch, exposed)
        group_id, task_ids = await anyio.to_thread.run_sync(
            _answer, _core.send_batch, app, exposed, items
        )
        return _json(_core.batch_links(_base(request, f"/{name}/batch"), group_id, task_ids), 202)

    router.add_api_route(
        f"/{name}",
        _with_body(submit, exposed.arguments),
        methods=["POST"],
        status_code=202,
        response_model=TaskAccepted,
        route_class_override=_JsonBodyRoute,
        name=f"submit_{name}",
        summary=f"Send task {name}",
        description=doc,
        responses=_SEND_PROBLEMS,
        openapi_extra=_body_required(exposed.arguments),
    )
    router.add_api_route(
        f"/{name}/batch",
        _with_body(submit_batch, exposed.batch),
        methods=["POST"],
        status_code=202,
        response_model=BatchAccepted,
        route_class_override=_JsonBodyRoute,
        name=f"submit_batch_{name}",
        summary=f"Send a batch of task {name}",
        description=f"One task per item, sent as a group; answers at once. {doc}",
        responses=_SEND_PROBLEMS,
        openapi_extra=_body_required(exposed.batch),
    )


async def _stream(app: Celery, first: TaskInfo, interval: float) -> AsyncIterator[ServerSentEvent]:
    """One event per change of the task's status, until a final state.

    Each read runs in a worker thread; the sleeps and reads are where a disconnect
    cancels the stream.
    """
    tracker = _core.EventTracker()
    info = first
    while True:
        event = tracker.observe(info)
        if event is not None:
            yield ServerSentEvent(data=event.data, event=event.name, id=str(event.id))
        if tracker.done:
            return
        await anyio.sleep(interval)
        info = await anyio.to_thread.run_sync(_core.read_task, app, first.task_id)


def task_router(
    celery_app: Celery,
    *,
    tasks: Iterable[Task[Any, Any]],
    prefix: str = "/tasks",
    dependencies: Sequence[params.Depends] | None = None,
    tags: Sequence[str | Enum] | None = ("tasks",),
    max_body_size: int = _DEFAULTS.max_body_size,
    max_batch_items: int = _DEFAULTS.max_batch_items,
    poll_interval: float = _DEFAULTS.poll_interval,
    heartbeat: float = _DEFAULTS.heartbeat,
    ping_timeout: float = _DEFAULTS.ping_timeout,
    send_concurrency: int = 40,
    public_health: bool = False,
) -> APIRouter:
    """An ``APIRouter`` that sends ``tasks`` over HTTP and reports on them.

    Only the tasks given are exposed. Each gets ``POST {prefix}/{name}`` (and ``/batch``),
    with a body model built from its signature, listed in the OpenAPI schema. The
    router also serves task status, an event stream, group status, revoke and health.

    Args:
        celery_app: The app the tasks are registered on.
        tasks: The tasks to expose.
        prefix: URL prefix of every route.
        dependencies: Run before every route, e.g. ``[Depends(require_token)]`` for auth
            or a rate limit.
        tags: OpenAPI tags.
        max_body_size: Largest request body in bytes; 413 above it.
        max_batch_items: Most items in one batch request.
        poll_interval: Seconds between status reads of an open event stream.
        heartbeat: Seconds between keep-alive comments on an idle event stream.
        ping_timeout: Seconds the health check waits for workers' answers.
        send_concurrency: Most tasks sent at once, each in a worker thread of the
            router's own (sending blocks on the broker, so it cannot run on the event
            loop). As many as FastAPI's pool for ``def`` endpoints, which this one leaves
            free for the other routes; measured with 32 clients, 8 cost 5% of the requests
            per second, and 16 to 40 did equally well.
        public_health: Serve ``GET {prefix}/health`` without ``dependencies``, for load
            balancers and orchestrators that probe it without credentials. Dependencies
            given to ``app.include_router`` still apply to it.

    Returns:
        The router, for ``app.include_router``.

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
    if send_concurrency < 1:
        raise ValueError(f"send_concurrency must be at least 1, got {send_concurrency!r}")
    exposed = _core.expose(celery_app, tasks, options)
    # The routes behind ``dependencies`` sit in a router of their own, included in the
    # one returned, so a public health route can stand beside them outside the guard.
    router = APIRouter(prefix=prefix, tags=list(tags or ()), max_body_size=options.max_body_size)
    guarded = APIRouter(dependencies=list(dependencies or ()))
    health_router = router if public_health else guarded

    # Fixed paths first: /health and /groups/... must not be read as task ids.
    @health_router.get(
        "/health",
        response_model=Health,
        summary="Broker, backend and workers",
        description=_PUBLIC_HEALTH if public_health else None,
        responses={503: {"model": Health, "description": "Broker or backend unreachable"}},
    )
    def health(response: Response) -> Health:
        report = _core.check_health(celery_app, options)
        response.status_code = _core.health_status(report)
        return report

    @guarded.get(
        "/groups/{group_id}",
        response_model=GroupInfo,
        summary="Status of a batch",
        responses={**_NOT_FOUND, **_BAD_ID},
    )
    def group_status(group_id: str) -> GroupInfo:
        return _answer(_core.group_info, celery_app, group_id)

    limiter = anyio.CapacityLimiter(send_concurrency)
    for item in exposed.values():
        _add_task_routes(guarded, celery_app, item, limiter)

    @guarded.post("/{task_name}", include_in_schema=False)
    @guarded.post("/{task_name}/batch", include_in_schema=False)
    def not_exposed(task_name: str) -> None:
        _answer(_core.lookup, exposed, task_name)

    @guarded.get(
        "/{task_id}/events",
        response_class=EventSourceResponse,
        summary="Status changes of a task, as server-sent events",
        description="One event per change, named after the state, with the task's status "
        "as JSON data; the stream ends after a final state.",
        responses={
            200: {
                "description": "The stream of events",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            },
            **_NOT_FOUND,
            **_BAD_ID,
        },
    )
    async def events(task_id: str) -> EventSourceResponse:
        first = await anyio.to_thread.run_sync(_answer, _core.task_info, celery_app, task_id)
        return EventSourceResponse(
            _stream(celery_app, first, options.poll_interval), ping=options.heartbeat
        )

    @guarded.get(
        "/{task_id}",
        response_model=TaskInfo,
        summary="Status of a task",
        responses={**_NOT_FOUND, **_BAD_ID},
    )
    def status(task_id: str) -> TaskInfo:
        return _answer(_core.task_info, celery_app, task_id)

    @guarded.delete(
        "/{task_id}",
        status_code=202,
        response_model=TaskAccepted,
        summary="Revoke a task",
        description="A task still queued never runs; one already running goes on.",
        responses={**_NOT_FOUND, **_BAD_ID, **_problem(503, "Broker unavailable")},
    )
    def revoke(task_id: str, request: Request) -> TaskAccepted:
        _answer(_core.revoke, celery_app, task_id)
        return _core.links(_base(request, f"/{task_id}"), task_id)

    router.include_router(guarded)
    return router
