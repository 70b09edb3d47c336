"""From a task's signature to a validated request: exposed tasks and their bodies.

Each exposed task gets a pydantic model built from its own signature and type hints, so
a body is checked field by field before anything is sent, and FastAPI lists the model in
OpenAPI. Errors take FastAPI's 422 shape in both adapters.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from celery import Celery, Task
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from pydantic.errors import PydanticSchemaGenerationError, PydanticUserError

from taskqueue_kit._initialised import ensure_initialised
from taskqueue_kit.web._models import HTTPProblem, WebOptions

__all__ = [
    "ExposedTask",
    "decode_json",
    "expose",
    "is_json_content_type",
    "lookup",
    "require_json",
    "validate_arguments",
    "validate_batch",
]

# A task name becomes one URL path segment, so it keeps to the characters of a task id.
_TASK_NAME = re.compile(r"^[A-Za-z0-9._:\-]{1,200}$")


@dataclass(frozen=True)
class ExposedTask:
    """A task open to HTTP, with the models its request bodies are validated against.

    Attributes:
        name: The task name, also its URL path segment.
        task: The task as registered on the Celery app the adapter serves.
        arguments: Pydantic model of the task's keyword arguments.
        batch: Model of a batch body, ``{"items": [arguments, ...]}``.
        positional: Names of positional-only parameters, sent as ``args`` in order.
    """

    name: str
    task: Task[Any, Any]
    arguments: type[BaseModel]
    batch: type[BaseModel]
    positional: tuple[str, ...]

    def call(self, body: BaseModel) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Celery ``args`` and ``kwargs`` for a validated body, as JSON values.

        Arguments the client left out are not sent, so the task's own defaults apply.
        """
        given = body.model_dump(mode="json", by_alias=True, exclude_unset=True)
        if not self.positional:
            return (), given
        every = body.model_dump(mode="json", by_alias=True)
        args = tuple(every[name] for name in self.positional)
        return args, {key: value for key, value in given.items() if key not in self.positional}


def _model_name(task_name: str) -> str:
    words = re.split(r"[^A-Za-z0-9]+", task_name)
    return "".join(word[:1].upper() + word[1:] for word in words if word) + "Arguments"


def _arguments_model(task: Task[Any, Any]) -> tuple[type[BaseModel], tuple[str, ...]]:
    """Build the argument model from the task's signature and type hints.

    ``task.run`` is a bound method for ``bind=True`` tasks, so ``self`` is already gone.
    Unannotated parameters accept any JSON value; ``**kwargs`` lets unknown fields through,
    and ``*args`` cannot be given over HTTP.
    """
    try:
        signature = inspect.signature(task.run, eval_str=True)
    except (NameError, SyntaxError, TypeError, ValueError) as exc:
        raise TypeError(f"cannot read the type hints of task {task.name!r}: {exc}") from exc
    fields: dict[str, Any] = {}
    positional: list[str] = []
    extra = "forbid"
    for index, parameter in enumerate(signature.parameters.values()):
        if parameter.kind is parameter.VAR_POSITIONAL:
            continue
        if parameter.kind is parameter.VAR_KEYWORD:
            extra = "allow"
            continue
        annotation = Any if parameter.annotation is parameter.empty else parameter.annotation
        default = ... if parameter.default is parameter.empty else parameter.default
        # Internal names keep parameters such as ``json`` or ``_x`` from clashing with
        # BaseModel; the alias is what clients, errors and OpenAPI see.
        fields[f"arg{index}"] = (annotation, Field(default, alias=parameter.name))
        if parameter.kind is parameter.POSITIONAL_ONLY:
            positional.append(parameter.name)
    try:
        model: type[BaseModel] = create_model(
            _model_name(task.name),
            __config__=ConfigDict(extra=extra),  # type: ignore[typeddict-item]
            __doc__=inspect.getdoc(task.run) or f"Arguments of task {task.name}.",
            **fields,
        )
    except (PydanticSchemaGenerationError, PydanticUserError, TypeError) as exc:
        raise TypeError(f"cannot build a request model for task {task.name!r}: {exc}") from exc
    return model, tuple(positional)


def _batch_model(arguments: type[BaseModel], max_items: int) -> type[BaseModel]:
    name = arguments.__name__.removesuffix("Arguments") + "Batch"
    batch: type[BaseModel] = create_model(
        name,
        __config__=ConfigDict(extra="forbid"),
        __doc__=f"Items to send as one batch, each one task's {arguments.__name__}.",
        items=(list[arguments], Field(min_length=1, max_length=max_items)),  # type: ignore[valid-type]
    )
    return batch


def expose(
    app: Celery, tasks: Iterable[Task[Any, Any]], options: WebOptions
) -> dict[str, ExposedTask]:
    """Resolve ``tasks`` on ``app`` and build their request models.

    Raises:
        ConfigurationError: the kit was never applied to ``app`` (``init_celery``).
        TypeError: an item is not a task, or its signature cannot become a model.
        ValueError: a task is not registered on ``app``, its name cannot be a URL path
            segment, or it is given twice.
    """
    ensure_initialised(app)
    exposed: dict[str, ExposedTask] = {}
    for given in tasks:
        name = getattr(given, "name", None)
        if not isinstance(name, str) or not name:
            raise TypeError(f"tasks= takes Celery tasks, got {given!r}")
        if not _TASK_NAME.match(name):
            raise ValueError(
                f"task name {name!r} cannot be a URL path segment: use [A-Za-z0-9._:-]"
            )
        if name in exposed:
            raise ValueError(f"task {name!r} is given twice in tasks=")
        try:
            task = app.tasks[name]
        except KeyError:
            raise ValueError(
                f"task {name!r} is not registered on the Celery app {app.main!r}; "
                "declare it with that app's @app.task or with @shared_task"
            ) from None
        arguments, positional = _arguments_model(task)
        batch = _batch_model(arguments, options.max_batch_items)
        exposed[name] = ExposedTask(name, task, arguments, batch, positional)
    return exposed


def is_json_content_type(value: str | None) -> bool:
    """True for ``application/json`` and ``application/*+json``, parameters aside."""
    if not value:
        return False
    # The media type is what precedes the first ';' (RFC 9110 8.3.1), case-insensitive.
    maintype, _, subtype = value.split(";", 1)[0].strip().lower().partition("/")
    return maintype == "application" and (subtype == "json" or subtype.endswith("+json"))


def require_json(body: bytes, is_json: bool) -> None:
    """Refuse a body in another media type with 415, rather than with a puzzling field error.

    Args:
        body: The raw body; an empty one needs no media type.
        is_json: Whether the request declared a JSON media type, as the framework reads it.
    """
    if body and not is_json:
        raise HTTPProblem(
            415, "send the arguments as a JSON object, with Content-Type: application/json"
        )


def lookup(exposed: Mapping[str, ExposedTask], task_name: str) -> ExposedTask:
    """The exposed task of that name; 404 for any other, registered or not."""
    found = exposed.get(task_name)
    if found is None:
        raise HTTPProblem(404, f"no task named {task_name!r} is exposed here")
    return found


def _field_errors(
    exc: ValidationError, prefix: Sequence[str | int] = ("body",)
) -> list[dict[str, Any]]:
    """Pydantic's errors in FastAPI's shape, so both adapters answer 422 alike."""
    return [
        {**error, "loc": [*prefix, *error["loc"]]}
        for error in exc.errors(include_url=False, include_context=False)
    ]


def decode_json(body: bytes) -> Any:
    """Parse a request body; an empty body stands for ``{}`` (a task without arguments).

    Raises:
        HTTPProblem: 422 with a ``json_invalid`` error for malformed JSON, 400 for bytes
            that are no Unicode text: FastAPI's own answers, so both adapters agree.
    """
    if not body.strip():
        return {}
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        error = {"type": "json_invalid", "loc": ["body", exc.pos], "msg": "JSON decode error"}
        raise HTTPProblem(422, [{**error, "input": {}, "ctx": {"error": exc.msg}}]) from exc
    except UnicodeDecodeError as exc:  # as FastAPI answers a body it cannot decode
        raise HTTPProblem(400, "There was an error parsing the body") from exc


def validate_arguments(exposed: ExposedTask, data: Any) -> BaseModel:
    """Validate a body against the task's signature.

    Raises:
        HTTPProblem: 422 with field-level errors.
    """
    return _validate(exposed.arguments, data)


def validate_batch(exposed: ExposedTask, data: Any) -> list[BaseModel]:
    """Validate a batch body, ``{"items": [...]}``, item by item.

    Raises:
        HTTPProblem: 422 with field-level errors (``["body", "items", 3, "x"]``).
    """
    batch = _validate(exposed.batch, data)
    items: list[BaseModel] = batch.items  # type: ignore[attr-defined]
    return items


def _validate(model: type[BaseModel], data: Any) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise HTTPProblem(422, _field_errors(exc)) from exc
