"""From a task's signature to a validated request: exposed tasks and their bodies.

Each exposed task gets a pydantic model built from its own signature and type hints, so
a body is checked field by field before anything is sent, and FastAPI lists the model in
OpenAPI. Errors take FastAPI's 422 shape in both adapters.

Both adapters hand the raw body to :func:`validate_arguments` (or :func:`validate_batch`),
so a body gets the same answer from either. It must be JSON as RFC 8259 defines it (no
``NaN`` or ``Infinity``, no number that overflows a float, nesting and integers within
bounds), and it is validated in pydantic's strict JSON mode: ``"1"``, ``true`` and ``1e5``
are no ``int``, while an ISO 8601 string is a ``datetime``. A parameter annotated
``Annotated[int, Strict(False)]`` asks for pydantic's usual coercion.
"""

from __future__ import annotations

import inspect
import json
import math
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NoReturn

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

_NOT_FINITE = {"type": "finite_number", "loc": ["body"], "msg": "Input should be a finite number"}


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

        Raises:
            HTTPProblem: 422 when a value is not a finite number. The body held none, but
                a model of the user's own that coerces (``"inf"`` to a ``float``, say) can
                make one, and the message would then not be standard JSON.
        """
        given = body.model_dump(mode="json", by_alias=True, exclude_unset=True)
        args: tuple[Any, ...] = ()
        if self.positional:
            every = body.model_dump(mode="json", by_alias=True)
            args = tuple(every[name] for name in self.positional)
            given = {key: value for key, value in given.items() if key not in self.positional}
        try:
            json.dumps([args, given], allow_nan=False)
        except ValueError as exc:
            raise HTTPProblem(422, [{**_NOT_FINITE, "input": {}}]) from exc
        return args, given


def _config(extra: Literal["allow", "forbid"]) -> ConfigDict:
    """A request model's configuration: strict, in pydantic's JSON flavour, and finite.

    ``allow_inf_nan=False`` covers a ``float`` parameter that opted out of strictness,
    which would otherwise read ``"nan"`` as NaN.
    """
    return ConfigDict(strict=True, allow_inf_nan=False, extra=extra)


def _model_name(task_name: str) -> str:
    words = re.split(r"[^A-Za-z0-9]+", task_name)
    return "".join(word[:1].upper() + word[1:] for word in words if word) + "Arguments"


def _arguments_model(task: Task[Any, Any]) -> tuple[type[BaseModel], tuple[str, ...]]:
    """Build the argument model from the task's signature and type hints.

    ``task.run`` is a bound method for ``bind=True`` tasks, so ``self`` is already gone.
    Unannotated parameters accept any JSON value; ``**kwargs`` lets unknown fields through,
    and ``*args`` cannot be given over HTTP. The model is strict; a parameter's own
    ``Strict(False)`` (or ``Field(strict=False)``) in its ``Annotated`` hint wins over that.
    """
    try:
        signature = inspect.signature(task.run, eval_str=True)
    except (NameError, SyntaxError, TypeError, ValueError) as exc:
        raise TypeError(f"cannot read the type hints of task {task.name!r}: {exc}") from exc
    fields: dict[str, Any] = {}
    positional: list[str] = []
    extra: Literal["allow", "forbid"] = "forbid"
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
            __config__=_config(extra),
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
        __config__=_config("forbid"),
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
    """Pydantic's errors in FastAPI's shape, so both adapters answer 422 alike.

    A ``json_invalid`` error (what pydantic's own parser refuses, such as nesting deeper
    than it reads) takes the shape of :func:`decode_json`'s, rather than echoing the
    whole body as its input.
    """
    return [
        _json_error(error["msg"].removeprefix("Invalid JSON: "))
        if error["type"] == "json_invalid"
        else {**error, "loc": [*prefix, *error["loc"]]}
        for error in exc.errors(include_url=False, include_context=False)
    ]


class _NotJSON(ValueError):
    """A number RFC 8259 has no place for: NaN, an infinity, or one a float overflows."""


def _refuse_constant(name: str) -> NoReturn:
    raise _NotJSON(f"{name} is not JSON: numbers must be finite")


def _finite(literal: str) -> float:
    value = float(literal)
    if math.isinf(value):
        raise _NotJSON(f"{literal} is beyond the range of a float")
    return value


def _json_error(reason: str, position: int | None = None) -> dict[str, Any]:
    """FastAPI's error for malformed JSON, with the reason as its ``ctx.error``."""
    loc: list[str | int] = ["body"] if position is None else ["body", position]
    return {
        "type": "json_invalid",
        "loc": loc,
        "msg": "JSON decode error",
        "input": {},
        "ctx": {"error": reason},
    }


def _json_invalid(reason: str, position: int | None = None) -> HTTPProblem:
    return HTTPProblem(422, [_json_error(reason, position)])


def decode_json(body: bytes) -> Any:
    """Parse a request body as strict JSON; an empty body stands for ``{}``.

    Strict as RFC 8259 has it: ``NaN``, ``Infinity`` and ``-Infinity`` (which Python's
    ``json`` reads by default) and numbers beyond a float's range (``1e400``, which would
    become an infinity) are refused, so a task's message is always standard JSON. So are
    bodies nested too deeply and integers too long for Python to read (4,300 digits by
    default): each is a ``json_invalid`` error rather than an exception.

    Raises:
        HTTPProblem: 422 with a ``json_invalid`` error for malformed or non-standard JSON,
            400 for bytes that are no UTF-8 text: FastAPI's own answers, in both adapters.
    """
    if not body.strip():
        return {}
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:  # as FastAPI answers a body it cannot decode
        raise HTTPProblem(400, "There was an error parsing the body") from exc
    try:
        return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite)
    except json.JSONDecodeError as exc:
        raise _json_invalid(exc.msg, exc.pos) from exc
    except _NotJSON as exc:
        raise _json_invalid(str(exc)) from exc
    except RecursionError as exc:
        raise _json_invalid("nested too deeply") from exc
    except ValueError as exc:  # int(): more digits than sys.get_int_max_str_digits()
        limit = sys.get_int_max_str_digits()
        raise _json_invalid(f"an integer has more than {limit} digits") from exc


def validate_arguments(exposed: ExposedTask, body: bytes) -> BaseModel:
    """Validate a raw request body against the task's signature.

    Raises:
        HTTPProblem: 422 with field-level errors, or as :func:`decode_json` does.
    """
    return _validate(exposed.arguments, body)


def validate_batch(exposed: ExposedTask, body: bytes) -> list[BaseModel]:
    """Validate a raw batch body, ``{"items": [...]}``, item by item.

    Raises:
        HTTPProblem: 422 with field-level errors (``["body", "items", 3, "x"]``), or as
            :func:`decode_json` does.
    """
    batch = _validate(exposed.batch, body)
    items: list[BaseModel] = batch.items  # type: ignore[attr-defined]
    return items


def _validate(model: type[BaseModel], body: bytes) -> BaseModel:
    """Check the body is strict JSON, then validate it in pydantic's JSON mode.

    JSON mode, not Python mode on the parsed value: strict Python mode would refuse a
    ``datetime`` sent as an ISO 8601 string, or a ``tuple`` sent as an array, where
    strict JSON mode accepts each in its JSON form. The JSON is parsed twice, once by
    :func:`decode_json` for what pydantic's parser lets through (``NaN`` into an ``Any``
    field, ``1e400`` as an infinity), once by pydantic.
    """
    decode_json(body)
    try:
        return model.model_validate_json(body if body.strip() else b"{}")
    except ValidationError as exc:
        raise HTTPProblem(422, _field_errors(exc)) from exc
