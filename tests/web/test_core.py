"""The framework-free core both adapters share: argument models, bodies, aggregation, events."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

import _webtasks
import pytest
from celery import Celery, shared_task
from pydantic import BaseModel, Strict

from taskqueue_kit import Progress, TaskInfo, TaskState
from taskqueue_kit.web import _core

pytestmark = pytest.mark.compat

OPTIONS = _core.WebOptions()


@shared_task(name="webtest.core.shapes")
def shapes(
    a: int, /, b: str, c: float = 1.5, *rest: Any, d, e: list[int] | None = None, **extra: Any
) -> None:
    """Every kind of parameter a task can take."""


@shared_task(name="webtest.core.json")
def shadowing(json: str, _private: int = 0) -> None:
    """Parameters whose names clash with pydantic's BaseModel."""


class Order(BaseModel):
    """A model of the user's own, lax as pydantic models are by default."""

    price: float


@shared_task(name="webtest.core.typed")
def typed(
    n: int = 0,
    ratio: float = 0.0,
    flag: bool = False,
    name: str = "",
    lax: Annotated[int, Strict(False)] = 0,
    when: datetime | None = None,
    pair: tuple[int, int] | None = None,
    order: Order | None = None,
) -> None:
    """Parameters of JSON's own types, one that opts into coercion, and richer types."""


def _exposed(app: Celery, task: Any) -> _core.ExposedTask:
    return _core.expose(app, [task], OPTIONS)[task.name]


def _json(value: Any) -> bytes:
    """A request body, as a client sends it."""
    return json.dumps(value).encode()


def _refused(exposed: _core.ExposedTask, body: bytes) -> list[dict[str, Any]]:
    """The field errors of a body the task's model refuses with 422."""
    with pytest.raises(_core.HTTPProblem) as refused:
        _core.validate_arguments(exposed, body)
    assert refused.value.status == 422
    errors: list[dict[str, Any]] = refused.value.detail
    json.dumps(errors, allow_nan=False)  # the answer itself is strict JSON
    return errors


def _info(state: TaskState, percent: float | None = None) -> TaskInfo:
    progress = Progress.of(percent, 100) if percent is not None else None
    return TaskInfo(
        task_id="t", state=state, celery_state="X", progress=progress, ready=state.ready
    )


# -- argument models ------------------------------------------------------------------


def test_model_follows_the_signature(embedded_app: Celery) -> None:
    """Fields follow the signature: defaults kept, `*args` left out, `**kwargs` admits extras."""
    exposed = _exposed(embedded_app, shapes)
    schema = exposed.arguments.model_json_schema()
    assert set(schema["properties"]) == {"a", "b", "c", "d", "e"}
    assert sorted(schema["required"]) == ["a", "b", "d"]
    assert schema["properties"]["c"]["default"] == 1.5
    body = _core.validate_arguments(
        exposed, _json({"a": 1, "b": "x", "d": {"any": "json"}, "more": 1})
    )
    assert exposed.call(body) == ((1,), {"b": "x", "d": {"any": "json"}, "more": 1})


def test_bound_task_model_skips_self(embedded_app: Celery) -> None:
    """A bind=True task's model has no `self` and refuses one."""
    exposed = _exposed(embedded_app, _webtasks.count)
    assert set(exposed.arguments.model_json_schema()["properties"]) == {"steps", "pause"}
    with pytest.raises(_core.HTTPProblem) as refused:
        _core.validate_arguments(exposed, _json({"self": 1, "steps": 2}))
    assert refused.value.status == 422


def test_left_out_arguments_are_not_sent(embedded_app: Celery) -> None:
    """The task's own defaults apply to what the client left out."""
    exposed = _exposed(embedded_app, _webtasks.count)
    body = _core.validate_arguments(exposed, _json({"steps": 2}))
    assert exposed.call(body) == ((), {"steps": 2})


def test_parameter_names_that_clash_with_pydantic(embedded_app: Celery) -> None:
    """Parameters named like BaseModel attributes or with a leading underscore still work."""
    exposed = _exposed(embedded_app, shadowing)
    body = _core.validate_arguments(exposed, _json({"json": "x", "_private": 2}))
    assert exposed.call(body) == ((), {"json": "x", "_private": 2})


def test_field_errors_have_fastapis_shape(embedded_app: Celery) -> None:
    """Errors locate the field under `body`, as FastAPI's own 422 does."""
    exposed = _exposed(embedded_app, _webtasks.add)
    with pytest.raises(_core.HTTPProblem) as refused:
        _core.validate_batch(exposed, _json({"items": [{"x": 1, "y": 2}, {"x": "no", "y": 2}]}))
    assert refused.value.status == 422
    (error,) = refused.value.detail
    assert (error["loc"], error["type"]) == (["body", "items", 1, "x"], "int_type")


def test_batch_size_is_bounded(embedded_app: Celery) -> None:
    """max_batch_items caps a batch; an empty one is refused."""
    exposed = _core.expose(embedded_app, [_webtasks.add], _core.WebOptions(max_batch_items=2))[
        "webtest.add"
    ]
    item = {"x": 1, "y": 1}
    assert len(_core.validate_batch(exposed, _json({"items": [item, item]}))) == 2
    for items in ([], [item] * 3):
        with pytest.raises(_core.HTTPProblem):
            _core.validate_batch(exposed, _json({"items": items}))


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("n", "1", "int_type"),
        ("n", True, "int_type"),
        ("n", 1e5, "int_type"),
        ("n", 1.0, "int_type"),
        ("ratio", "1.5", "float_type"),
        ("ratio", True, "float_type"),
        ("flag", 1, "bool_type"),
        ("flag", "true", "bool_type"),
        ("name", 1, "string_type"),
    ],
)
def test_json_types_are_strict(embedded_app: Celery, field: str, value: Any, error: str) -> None:
    """A value of another JSON type is refused, not coerced: `"1"`, `true`, `1e5` are no int."""
    errors = _refused(_exposed(embedded_app, typed), _json({field: value}))
    assert [(e["loc"], e["type"], e["input"]) for e in errors] == [(["body", field], error, value)]


def test_strict_mode_is_json_strict(embedded_app: Celery) -> None:
    """Each value in its JSON form passes: an int for a float, a date string, an array tuple."""
    exposed = _exposed(embedded_app, typed)
    body = _core.validate_arguments(
        exposed,
        _json({"ratio": 2, "when": "2024-05-01T12:00:00Z", "pair": [1, 2], "order": {"price": 1}}),
    )
    assert exposed.call(body) == (
        (),
        {
            "ratio": 2.0,
            "when": "2024-05-01T12:00:00Z",
            "pair": [1, 2],
            "order": {"price": 1.0},
        },
    )
    assert body.model_dump(by_alias=True)["when"] == datetime(2024, 5, 1, 12, tzinfo=UTC)


def test_a_parameter_can_ask_for_coercion(embedded_app: Celery) -> None:
    """`Annotated[int, Strict(False)]` takes `"7"` as 7; its strict neighbour still refuses it."""
    exposed = _exposed(embedded_app, typed)
    assert exposed.call(_core.validate_arguments(exposed, _json({"lax": "7"}))) == ((), {"lax": 7})
    assert _refused(exposed, _json({"lax": "7", "n": "7"}))[0]["loc"] == ["body", "n"]


def test_no_argument_that_is_not_a_finite_number_is_sent(embedded_app: Celery) -> None:
    """A lax model of the user's own reads `"inf"` as a float; the kit refuses to send it."""
    exposed = _exposed(embedded_app, typed)
    body = _core.validate_arguments(exposed, _json({"order": {"price": "inf"}}))
    with pytest.raises(_core.HTTPProblem) as refused:
        exposed.call(body)
    assert refused.value.status == 422
    assert [error["type"] for error in refused.value.detail] == ["finite_number"]


# -- which tasks may be exposed -------------------------------------------------------


def test_expose_refuses_what_cannot_be_served(embedded_app: Celery) -> None:
    """Non-tasks, duplicates, other apps' tasks and names unfit for a URL fail at once."""
    with pytest.raises(TypeError, match="Celery tasks"):
        _core.expose(embedded_app, [print], OPTIONS)
    with pytest.raises(ValueError, match="twice"):
        _core.expose(embedded_app, [_webtasks.add, _webtasks.add], OPTIONS)
    other = Celery("other", set_as_current=False)

    def only_there() -> None:
        """Registered on another app."""

    with pytest.raises(ValueError, match="not registered"):
        _core.expose(
            embedded_app, [other.task(name="only.there", shared=False)(only_there)], OPTIONS
        )

    def slashed() -> None:
        """Named with a slash."""

    with pytest.raises(ValueError, match="URL path segment"):
        _core.expose(embedded_app, [embedded_app.task(name="a/b", shared=False)(slashed)], OPTIONS)
    other.close()


def test_unresolvable_hints_fail_at_construction(embedded_app: Celery) -> None:
    """A task whose type hints cannot be resolved is refused with its name, not at request time."""

    @embedded_app.task(name="webtest.core.broken", shared=False)
    def broken(x: NoSuchType) -> None:  # noqa: F821  # the point of the test
        """Annotated with a name that does not exist."""

    with pytest.raises(TypeError, match=r"webtest\.core\.broken"):
        _core.expose(embedded_app, [broken], OPTIONS)


@pytest.mark.parametrize(
    "changes",
    [{"max_body_size": 0}, {"max_batch_items": 0}, {"poll_interval": 0}, {"heartbeat": -1.0}],
)
def test_options_out_of_range_are_refused(changes: dict[str, Any]) -> None:
    """Limits and intervals must be positive."""
    with pytest.raises(ValueError, match=next(iter(changes))):
        _core.WebOptions(**changes)


# -- bodies ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("application/json", True),
        ("application/json; charset=utf-8", True),
        ("Application/JSON", True),
        ("application/merge-patch+json", True),
        ("  application/json ;charset=utf-8", True),
        ("application/jsonx", False),
        ("application/", False),
        ("json", False),
        ("text/json", False),
        ("application/x-www-form-urlencoded", False),
        ("", False),
        (None, False),
    ],
)
def test_json_content_types(value: str | None, expected: bool) -> None:
    """JSON and `+json` media types are accepted, parameters aside."""
    assert _core.is_json_content_type(value) is expected


def test_empty_body_means_no_arguments() -> None:
    """An empty body stands for `{}`, so a task without arguments needs no body."""
    assert _core.decode_json(b"") == {}
    assert _core.decode_json(b"  \n") == {}


def test_malformed_json_is_json_invalid() -> None:
    """Malformed JSON is 422 `json_invalid` with its position; undecodable bytes are 400."""
    with pytest.raises(_core.HTTPProblem) as malformed:
        _core.decode_json(b'{"x": ')
    assert malformed.value.status == 422
    assert malformed.value.detail[0]["type"] == "json_invalid"
    with pytest.raises(_core.HTTPProblem) as undecodable:
        _core.decode_json(b"\xff\xfe\xfa")
    assert undecodable.value.status == 400


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"x": NaN}', "NaN is not JSON: numbers must be finite"),
        (b'{"x": [1, {"y": Infinity}]}', "Infinity is not JSON: numbers must be finite"),
        (b'{"x": -Infinity}', "-Infinity is not JSON: numbers must be finite"),
        (b'{"x": 1e400}', "1e400 is beyond the range of a float"),
        (b'{"x": -2.5E+999}', "-2.5E+999 is beyond the range of a float"),
        (b'{"x": ' + b"[" * 1500 + b"]" * 1500 + b"}", "nested too deeply"),
        (b'{"x": 1' + b"0" * 4300 + b"}", "an integer has more than 4300 digits"),
    ],
    ids=[
        "nan",
        "nested-infinity",
        "-infinity",
        "overflow",
        "negative-overflow",
        "deep",
        "long-int",
    ],
)
def test_non_standard_json_is_json_invalid(body: bytes, reason: str) -> None:
    """What Python's json reads but RFC 8259 has no place for is 422, never an exception."""
    with pytest.raises(_core.HTTPProblem) as refused:
        _core.decode_json(body)
    assert refused.value.status == 422
    assert refused.value.detail == [
        {
            "type": "json_invalid",
            "loc": ["body"],
            "msg": "JSON decode error",
            "input": {},
            "ctx": {"error": reason},
        }
    ]


def test_json_bounds_are_the_same_through_validation(embedded_app: Celery) -> None:
    """Nesting pydantic's parser refuses is `json_invalid` too, without echoing the body."""
    exposed = _exposed(embedded_app, shapes)
    deep = b'{"a": 1, "b": "x", "d": ' + b"[" * 300 + b"]" * 300 + b"}"
    (error,) = _refused(exposed, deep)
    assert (error["type"], error["loc"], error["input"]) == ("json_invalid", ["body"], {})
    assert "recursion limit" in error["ctx"]["error"]
    assert _core.validate_arguments(exposed, b'{"a": 1, "b": "x", "d": 1e-400}')  # just 0.0


# -- revoking -------------------------------------------------------------------------


def test_revoking_an_unreadable_record_reads_as_its_status(embedded_app: Celery) -> None:
    """A record that is no JSON is revoked without an error and reads `failed`, as it did."""
    task_id = str(uuid.uuid4())
    backend: Any = embedded_app.backend
    backend.set(backend.get_key_for_task(task_id), "(lp0\nI1\na.")  # a pickle, as text
    before = _core.task_info(embedded_app, task_id)
    assert before.error is not None
    assert (before.state, before.error.type) == (TaskState.FAILED, "ResultDecodeError")
    assert _core.revoke(embedded_app, task_id) == before


# -- aggregation of a batch -----------------------------------------------------------


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        ([TaskState.QUEUED, TaskState.QUEUED], TaskState.QUEUED),
        ([TaskState.QUEUED, TaskState.STARTED], TaskState.PROGRESS),
        ([TaskState.SUCCEEDED, TaskState.QUEUED], TaskState.PROGRESS),
        ([TaskState.SUCCEEDED, TaskState.SUCCEEDED], TaskState.SUCCEEDED),
        ([TaskState.SUCCEEDED, TaskState.REVOKED], TaskState.REVOKED),
        ([TaskState.REVOKED, TaskState.FAILED, TaskState.SUCCEEDED], TaskState.FAILED),
    ],
)
def test_group_state(states: list[TaskState], expected: TaskState) -> None:
    """Queued until work starts, progress until all end, then failed, revoked or succeeded."""
    group = _core.aggregate("g", [_info(state) for state in states])
    assert group.state is expected
    assert group.ready is expected.ready


def test_group_progress_counts_running_tasks_by_their_own_progress() -> None:
    """Finished tasks count whole and running ones by their percent, for one progress bar."""
    infos = [
        _info(TaskState.SUCCEEDED),
        _info(TaskState.PROGRESS, 50),
        _info(TaskState.QUEUED),
        _info(TaskState.FAILED),
    ]
    group = _core.aggregate("g", infos)
    assert group.progress is not None
    assert (group.progress.current, group.progress.total, group.progress.percent) == (2.5, 4, 62.5)
    assert (group.completed, group.total) == (2, 4)
    assert group.counts == {
        TaskState.SUCCEEDED: 1,
        TaskState.PROGRESS: 1,
        TaskState.QUEUED: 1,
        TaskState.FAILED: 1,
    }


# -- events ---------------------------------------------------------------------------


def test_tracker_sends_one_event_per_change_and_ends_on_a_final_state() -> None:
    """Repeated reads of the same status send nothing; a final state ends the stream."""
    tracker = _core.EventTracker()
    reads = [
        _info(TaskState.QUEUED),
        _info(TaskState.QUEUED),
        _info(TaskState.PROGRESS, 10),
        _info(TaskState.PROGRESS, 10),
        _info(TaskState.PROGRESS, 20),
        _info(TaskState.SUCCEEDED),
    ]
    events = [event for info in reads if (event := tracker.observe(info)) is not None]
    assert [(e.id, e.name) for e in events] == [
        (1, "queued"),
        (2, "progress"),
        (3, "progress"),
        (4, "succeeded"),
    ]
    assert tracker.done
    assert tracker.observe(_info(TaskState.STARTED)) is None


def test_tracker_ends_when_the_record_is_gone() -> None:
    """A record that expires mid-stream (`unknown`) ends the stream rather than watching forever."""
    tracker = _core.EventTracker()
    tracker.observe(_info(TaskState.STARTED))
    assert tracker.observe(_info(TaskState.UNKNOWN)) is not None
    assert tracker.done


def test_sse_wire_format() -> None:
    """An event is id, event and one data line, ended by a blank line."""
    event = _core.Event(id=3, name="progress", data='{"a":1}')
    assert _core.encode_sse(event) == 'id: 3\nevent: progress\ndata: {"a":1}\n\n'


def test_response_models_are_json_schemas() -> None:
    """Every body the adapters answer with is a pydantic model, so OpenAPI can describe it."""
    for model in (_core.TaskAccepted, _core.BatchAccepted, _core.GroupInfo, _core.Health):
        assert issubclass(model, BaseModel)
        assert model.model_json_schema()["type"] == "object"


# -- imports --------------------------------------------------------------------------


def test_importing_the_kit_imports_no_web_framework() -> None:
    """Importing `taskqueue_kit` and `taskqueue_kit.web` imports no web framework."""
    code = (
        "import sys, taskqueue_kit, taskqueue_kit.web, taskqueue_kit.web._core; "
        "frameworks = ('fastapi', 'starlette', 'flask', 'sse_starlette'); "
        "print(sorted(m for m in frameworks if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("module", "missing", "extra"), [("fastapi", "fastapi", "fastapi"), ("flask", "flask", "flask")]
)
def test_missing_framework_names_the_extra(module: str, missing: str, extra: str) -> None:
    """Without its framework an adapter fails to import with the pip command that fixes it."""
    code = f"import sys; sys.modules[{missing!r}] = None; import taskqueue_kit.web.{module}"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode != 0
    assert f"pip install 'taskqueue-kit[{extra}]'" in out.stderr
