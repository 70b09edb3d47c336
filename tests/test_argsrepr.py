from __future__ import annotations

import enum
from decimal import Decimal
from typing import Any

import celery.app.amqp
import pytest
from celery import Celery
from celery.utils.saferepr import saferepr
from hypothesis import given, settings
from hypothesis import strategies as st

from taskqueue_kit import TaskQueueSettings, create_celery
from taskqueue_kit._argsrepr import fast_saferepr

_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.lists(inner, max_size=5).map(tuple)
        | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=25,
)


class _Colour(enum.IntEnum):
    RED = 1


@settings(max_examples=1500, deadline=None)
@given(value=_VALUES, maxlen=st.integers(1, 200), maxlevels=st.integers(0, 4))
def test_equals_saferepr_wherever_it_answers(value: Any, maxlen: int, maxlevels: int) -> None:
    fast = fast_saferepr(value, maxlen, maxlevels)
    assert fast is None or fast == saferepr(value, maxlen, maxlevels)


@pytest.mark.parametrize(
    "value",
    [
        (),
        {},
        ("a fine product, works well",),
        (1, -2.5, None, True, float("inf")),
        {"review": "ok", "tags": ["a", "b"], "scores": {"x": 0.5}},
        ("é ü 中文",),
        (list(range(300)),),
    ],
)
def test_answers_for_json_arguments(value: Any) -> None:
    fast = fast_saferepr(value, 1024 * 4, 3)
    assert fast is not None
    assert fast == saferepr(value, 1024 * 4, 3)


@pytest.mark.parametrize(
    ("value", "maxlen", "maxlevels"),
    [
        (("it's",), 1024, 3),  # saferepr escapes the quote; repr switches to "..."
        (("two\nlines",), 1024, 3),  # saferepr keeps the newline raw
        (("C:\\path",), 1024, 3),
        ((Decimal("1.5"),), 1024, 3),
        ((b"raw",), 1024, 3),
        ((_Colour.RED,), 1024, 3),  # str() and repr() of an IntEnum differ
        (([[[1]]],), 1024, 3),  # the innermost list is saferepr's "[...]"
        (("x" * 50,), 20, 3),  # saferepr truncates
        (({1, 2},), 1024, 3),
    ],
)
def test_declines_where_repr_differs(value: Any, maxlen: int, maxlevels: int) -> None:
    assert fast_saferepr(value, maxlen, maxlevels) is None


@pytest.mark.parametrize("maxlevels", [3, 0])
def test_a_self_containing_list_is_declined(maxlevels: int) -> None:
    looped: list[Any] = [1]
    looped.append(looped)
    assert fast_saferepr((looped,), 1024, maxlevels) is None


def test_without_a_depth_limit_deep_values_are_answered() -> None:
    deep: Any = 1
    for _ in range(10):
        deep = [deep]
    assert fast_saferepr((deep,), 1024, 0) == saferepr((deep,), 1024, 0) == repr((deep,))


@pytest.mark.parametrize(
    "value", [(list(range(5000)),), ({str(i): i for i in range(600)},), ("x" * 100_000,)]
)
def test_large_arguments_are_declined_before_repr(
    value: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import builtins

    calls: list[Any] = []
    real = builtins.repr
    monkeypatch.setattr(builtins, "repr", lambda v: calls.append(v) or real(v))
    assert fast_saferepr(value, 1024, 3) is None
    assert calls == []


@pytest.fixture
def kit() -> Celery:
    """A kit app on in-memory broker and results: messages are built, never sent."""
    return create_celery(
        TaskQueueSettings(broker_url="memory://", result_backend="cache+memory://")
    )


@pytest.fixture
def saferepr_calls(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    calls: list[Any] = []

    def counting(value: Any, *args: Any, **kwargs: Any) -> str:
        calls.append(value)
        return saferepr(value, *args, **kwargs)

    monkeypatch.setattr(celery.app.amqp, "saferepr", counting)
    return calls


_MESSAGES = [
    ((), {}),
    (("a fine product",), {"lang": "en"}),
    ((Decimal("2.5"), "it's"), {"when": b"now"}),
    ((list(range(2000)),), {}),  # over 1024 characters: saferepr truncates
]


@pytest.mark.parametrize(("args", "kwargs"), _MESSAGES)
def test_kit_messages_carry_celerys_reprs(kit: Celery, args: Any, kwargs: Any) -> None:
    plain = Celery(broker="memory://", set_as_current=False)
    ours = kit.amqp.create_task_message("id-1", "t", args, kwargs).headers
    theirs = plain.amqp.create_task_message("id-1", "t", args, kwargs).headers
    assert (ours["argsrepr"], ours["kwargsrepr"]) == (theirs["argsrepr"], theirs["kwargsrepr"])


def test_kit_sends_skip_saferepr_for_json_arguments(kit: Celery, saferepr_calls: list[Any]) -> None:
    kit.amqp.create_task_message("id-1", "t", ("review",), {"n": 1})
    assert saferepr_calls == []
    kit.amqp.create_task_message("id-2", "t", (Decimal("1"),), {"n": 1})
    assert saferepr_calls == [(Decimal("1"),)]


def test_a_callers_own_argsrepr_is_kept(kit: Celery) -> None:
    headers = kit.amqp.create_task_message(
        "id-1", "t", ("secret",), {}, argsrepr="(hidden)"
    ).headers
    assert headers["argsrepr"] == "(hidden)"
    assert headers["kwargsrepr"] == "{}"
