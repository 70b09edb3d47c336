"""The Celery internals the kit relies on are where it looks, on every tested Celery."""

from __future__ import annotations

import celery
import pytest
from celery.worker import state

from taskqueue_kit._compat.celery import (
    TESTED,
    add_revoked,
    check_version,
    exec_option_names,
    revoked_ids,
    task_from_fun_keywords,
)

pytestmark = pytest.mark.compat


def test_the_revoked_set_is_celerys_own_and_sees_new_revokes() -> None:
    """revoked_ids() is the set Celery's worker fills on a revoke, read live."""
    revoked = revoked_ids()
    assert revoked is state.revoked
    state.revoked.add("compat-probe")
    try:
        assert "compat-probe" in revoked_ids()
    finally:
        state.revoked.discard("compat-probe")


def test_added_revokes_land_in_celerys_own_set() -> None:
    """add_revoked() adds to the set Celery's worker checks when a message arrives."""
    add_revoked(["compat-added-1", "compat-added-2"])
    try:
        assert "compat-added-1" in state.revoked
        assert "compat-added-2" in state.revoked
    finally:
        state.revoked.discard("compat-added-1")
        state.revoked.discard("compat-added-2")


def test_a_revoked_set_without_add_is_a_loud_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """If Celery's set stops taking additions, add_revoked says so instead of doing nothing."""
    monkeypatch.setattr(state, "revoked", frozenset())
    with pytest.raises(RuntimeError, match="cannot be added to"):
        add_revoked(["x"])


def test_this_celery_is_inside_the_tested_range() -> None:
    """The installed Celery is one the internals were tested on: no warning."""
    assert check_version(celery.__version__) is True


@pytest.mark.parametrize("version", ["5.4.0", "6.0.0", "5.8.0rc1"])
def test_an_untested_celery_is_warned_about(version: str) -> None:
    """Outside the tested minors a RuntimeWarning names the docs page to read."""
    with pytest.warns(RuntimeWarning, match="Internals and compatibility"):
        assert check_version(version) is False
    assert TESTED[0] <= (5, 5)
    assert TESTED[1] >= (5, 7)


def test_a_missing_internal_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    """Were Celery to drop the set, the kit raises a clear error instead of skipping checks."""
    monkeypatch.delattr(state, "revoked")
    with pytest.raises(RuntimeError, match=r"celery\.worker\.state\.revoked"):
        revoked_ids()


def test_the_task_option_internals_name_the_options_celery_documents() -> None:
    """exec options and _task_from_fun keywords hold what Celery's docs list for app.task."""
    assert {"queue", "routing_key", "exchange", "priority", "time_limit"} <= exec_option_names()
    assert {"name", "base", "bind", "pydantic"} <= task_from_fun_keywords()


def test_the_task_option_internals_fail_loudly_when_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    """Were Celery to drop either, the kit says so by name instead of accepting fewer options."""
    monkeypatch.delattr(celery.app.task, "extract_exec_options")
    with pytest.raises(RuntimeError, match="extract_exec_options"):
        exec_option_names()
    monkeypatch.delattr(celery.Celery, "_task_from_fun")
    with pytest.raises(RuntimeError, match="_task_from_fun"):
        task_from_fun_keywords()
