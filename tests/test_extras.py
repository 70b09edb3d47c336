"""Optional dependencies: a missing extra is one error naming it, on every path in."""

from __future__ import annotations

import importlib
import importlib.metadata
import sys
import tomllib
from pathlib import Path

import pytest
from celery import Celery
from packaging.requirements import Requirement

from taskqueue_kit import ConfigurationError, TaskQueueSettings, celery_config, init_celery
from taskqueue_kit._exceptions import MissingExtra
from taskqueue_kit._extras import EXTRAS, optional_imports

pytestmark = pytest.mark.compat

REDIS_HINT = "pip install 'taskqueue-kit[redis]'"
PYPROJECT = Path(__file__).parents[1] / "pyproject.toml"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "CELERY_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    for name in ("TASKQUEUE_BROKER_URL", "TASKQUEUE_RESULT_BACKEND", "TASKQUEUE_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env file


def _hide(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    """Make ``modules`` look uninstalled: import fails and find_spec finds nothing."""
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)


def test_redis_broker_without_redis_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """A redis:// broker without redis-py is a MissingExtra naming the redis extra."""
    _hide(monkeypatch, "redis")
    with pytest.raises(MissingExtra) as caught:
        TaskQueueSettings(broker_url="redis://127.0.0.1:6379/0")
    error = caught.value
    assert str(error) == f"the Redis broker needs the redis extra: {REDIS_HINT}"
    assert (error.extra, error.field, error.name) == ("redis", "broker_url", "redis")
    assert isinstance(error, ConfigurationError)
    assert isinstance(error, ImportError)


def test_missing_packaging_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """redis-py alone is not enough: kombu's Redis transport imports packaging too."""
    _hide(monkeypatch, "packaging")
    with pytest.raises(MissingExtra, match=r"\(packaging is not installed\)"):
        TaskQueueSettings(broker_url="redis://127.0.0.1:6379/0")


@pytest.mark.parametrize(
    "url", ["rediss://127.0.0.1:6380/0", "sentinel://127.0.0.1:26379", "redis+socket:///r.sock"]
)
def test_every_redis_scheme_is_checked(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    """Whatever scheme kombu serves with its Redis transport needs the redis extra."""
    _hide(monkeypatch, "redis")
    with pytest.raises(MissingExtra, match="the Redis broker needs the redis extra"):
        TaskQueueSettings(broker_url=url)


def test_redis_result_backend_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """A redis:// result backend on another broker names the extra and its own field."""
    _hide(monkeypatch, "redis")
    with pytest.raises(MissingExtra) as caught:
        TaskQueueSettings(
            broker_url="amqp://guest:guest@127.0.0.1:5672//",
            result_backend="redis://127.0.0.1:6379/0",
        )
    assert caught.value.field == "result_backend"
    assert str(caught.value) == f"the Redis result backend needs the redis extra: {REDIS_HINT}"


def test_other_brokers_need_no_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """amqp:// (py-amqp comes with kombu), rpc:// and the embedded default need no extra."""
    _hide(monkeypatch, "redis", "packaging")
    TaskQueueSettings()
    TaskQueueSettings(broker_url="amqp://guest:guest@127.0.0.1:5672//", result_backend="rpc://")


def test_celery_config_checks_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings made while redis-py was there still refuse to configure an app without it."""
    settings = TaskQueueSettings(broker_url="redis://127.0.0.1:6379/0")
    _hide(monkeypatch, "redis")
    with pytest.raises(MissingExtra, match="needs the redis extra"):
        celery_config(settings)


def test_init_celery_checks_the_apps_own_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    """An adopted app whose own broker is redis:// gets the same error, naming the extra."""
    app = Celery("own", broker="redis://127.0.0.1:6379/0", backend="redis://127.0.0.1:6379/0")
    _hide(monkeypatch, "redis")
    with pytest.raises(MissingExtra, match="the Redis broker needs the redis extra"):
        init_celery(app, TaskQueueSettings())


@pytest.mark.parametrize(
    ("adapter", "hidden", "message"),
    [
        (
            "taskqueue_kit.web.fastapi",
            "fastapi",
            "taskqueue_kit.web.fastapi needs the fastapi extra: "
            "pip install 'taskqueue-kit[fastapi]'",
        ),
        (
            "taskqueue_kit.web.fastapi",
            "sse_starlette",
            "taskqueue_kit.web.fastapi needs the fastapi extra (sse_starlette is not installed): "
            "pip install 'taskqueue-kit[fastapi]'",
        ),
        (
            "taskqueue_kit.web.flask",
            "flask",
            "taskqueue_kit.web.flask needs the flask extra: pip install 'taskqueue-kit[flask]'",
        ),
    ],
)
def test_web_adapter_without_its_extra(
    monkeypatch: pytest.MonkeyPatch, adapter: str, hidden: str, message: str
) -> None:
    """Importing an adapter without its framework raises an ImportError naming the extra."""
    monkeypatch.delitem(sys.modules, adapter, raising=False)
    _hide(monkeypatch, hidden)
    with pytest.raises(ImportError) as caught:
        importlib.import_module(adapter)
    assert isinstance(caught.value, MissingExtra)
    assert str(caught.value) == message
    assert caught.value.name == hidden


def test_other_import_errors_pass_through() -> None:
    """An incompatible version (an ImportError, not a missing module) is left as it is."""
    with (
        pytest.raises(ImportError, match="cannot import name") as caught,
        optional_imports("fastapi", "x"),
    ):
        raise ImportError("cannot import name 'params' from 'fastapi'")
    assert not isinstance(caught.value, MissingExtra)


def _expanded(extras: dict[str, list[str]], name: str) -> set[str]:
    """The distribution names an extra installs, its ``taskqueue-kit[...]`` references expanded."""
    names: set[str] = set()
    for line in extras[name]:
        requirement = Requirement(line)
        if requirement.name == "taskqueue-kit":
            for inner in requirement.extras:
                names |= _expanded(extras, inner)
        else:
            names.add(requirement.name.lower())
    return names


def test_extras_match_pyproject() -> None:
    """Each extra's module list and pyproject.toml's requirements name the same packages."""
    extras = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]
    owners = importlib.metadata.packages_distributions()
    present = {dist.metadata["Name"].lower() for dist in importlib.metadata.distributions()}
    for extra in EXTRAS:
        declared = _expanded(extras, extra.name)
        provided: set[str] = set()
        for module in extra.modules:
            found = {name.lower() for name in owners.get(module, ())}
            if found:  # an extra the environment lacks is checked by name only
                assert found & declared, f"{extra.name}: {module} comes from {found}"
            provided |= found
        installed = declared & present
        assert installed <= provided, f"{extra.name}: no module listed for {installed - provided}"
