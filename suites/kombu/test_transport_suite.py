"""kombu's own transport integration suite, on the embedded broker and on Redis.

Not part of the main test suite (pyproject.toml's ``testpaths`` is ``tests``). ``nox -s
kombu_suite`` downloads the sdist of the installed kombu, copies its
``t/integration/common.py`` and names the copy in ``KOMBU_INTEGRATION_COMMON``; nothing of
kombu's is kept in this repository.

Every mixin that file defines (``BasicFunctionality``, ``BaseExchangeTypes``,
``BaseTimeToLive``, ``BasePriority``, ``BaseMessage``, ``BaseEventLoop``, ``BaseFailover``,
... whatever this kombu version holds) is subclassed twice, as kombu's
``t/integration/test_*.py`` files do, with the fixtures its tests ask for
(``connection``, ``invalid_connection``, ``failover_connection``):

* ``TestEmbedded<Mixin>``: the kit's ``tqsqlite`` transport, a fresh directory per test,
  with no transport options (``default``: the transport delivers JSON only) and with
  ``accept_content=["json", "pickle"]`` (``accept-pickle``: most of kombu's tests publish
  pickle; ``init_celery`` sets the option from the app's ``accept_content``).
* ``TestRedis<Mixin>``: the baseline, kombu's Redis transport on ``KOMBU_SUITE_REDIS_URL``
  (default db 12 of the local Redis), plain and with a ``global_keyprefix`` as kombu's
  ``test_redis.py`` runs it. Keys a test creates are deleted after it (never a flush).

The mixins run unchanged; only ``PRIORITY_ORDER`` is set: ``asc`` (a higher number is more
urgent, as in AMQP) for the embedded broker, ``desc`` for Redis as kombu's own file says.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import kombu
import pytest
import redis

from taskqueue_kit import _sqlite

COMMON_ENV = "KOMBU_INTEGRATION_COMMON"
REDIS_URL = os.environ.get("KOMBU_SUITE_REDIS_URL", "redis://127.0.0.1:6379/12")
#: A port nothing listens on, as kombu's own files use for the dead URL.
DEAD_REDIS_PORT = 12345

_sqlite.register()


def _load_common() -> ModuleType:
    """kombu's ``t/integration/common.py``, from the copy the nox session made."""
    location = os.environ.get(COMMON_ENV)
    if not location or not Path(location).is_file():
        raise ImportError(
            f"{COMMON_ENV} does not name kombu's t/integration/common.py; "
            "run this suite with `nox -s kombu_suite`"
        )
    spec = importlib.util.spec_from_file_location("kombu_integration_common", location)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _mixins(module: ModuleType) -> dict[str, type]:
    """The test mixins ``module`` defines, by name: its classes with ``test_*`` methods."""
    return {
        name: obj
        for name, obj in vars(module).items()
        if isinstance(obj, type)
        and obj.__module__ == module.__name__
        and any(attr.startswith("test_") for attr in dir(obj))
    }


# -- the embedded broker -----------------------------------------------------------------

EMBEDDED_OPTIONS: dict[str, dict[str, Any]] = {
    "default": {},
    "accept-pickle": {"accept_content": ["json", "pickle"]},
}


def _dead_embedded_url(tmp_path: Path) -> str:
    """A broker URL the transport cannot open: its database file is a directory.

    SQLite's "unable to open database file" is what the transport counts as a connection
    error (``sqlite3.OperationalError``), the embedded analogue of a port nobody listens on.
    """
    dead = tmp_path / "dead" / "broker.sqlite3"
    dead.mkdir(parents=True)
    return _sqlite.broker_url(dead)


class EmbeddedConnections:
    """``connection`` and the other fixtures kombu's mixins ask for, on ``tqsqlite``."""

    PRIORITY_ORDER = "asc"

    @pytest.fixture(params=list(EMBEDDED_OPTIONS))
    def connection(self, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
        url = _sqlite.broker_url(tmp_path / "home" / "broker.sqlite3")
        conn = kombu.Connection(url, transport_options=dict(EMBEDDED_OPTIONS[request.param]))
        yield conn
        conn.release()

    @pytest.fixture
    def invalid_connection(self, tmp_path: Path) -> Iterator[Any]:
        conn = kombu.Connection(_dead_embedded_url(tmp_path))
        yield conn
        conn.release()

    @pytest.fixture
    def failover_connection(self, tmp_path: Path) -> Iterator[Any]:
        live = _sqlite.broker_url(tmp_path / "home" / "broker.sqlite3")
        conn = kombu.Connection(f"{_dead_embedded_url(tmp_path)};{live}")
        yield conn
        conn.release()


# -- the Redis baseline --------------------------------------------------------------------

REDIS_OPTIONS: dict[str, dict[str, Any]] = {
    "default": {},
    "prefixed": {"global_keyprefix": "_prefixed_"},
}


def _dead_redis_url() -> str:
    live = kombu.Connection(REDIS_URL)
    return f"redis://{live.hostname}:{DEAD_REDIS_PORT}/{live.virtual_host}"


class RedisConnections:
    """The same fixtures on kombu's Redis transport, the baseline."""

    PRIORITY_ORDER = "desc"  # kombu's t/integration/test_redis.py: lower numbers first

    @pytest.fixture(autouse=True)
    def _redis_cleanup(self) -> Iterator[None]:
        """Skip when Redis is down; afterwards delete the keys the test created."""
        client = redis.Redis.from_url(REDIS_URL)
        try:
            client.ping()
        except redis.exceptions.ConnectionError as exc:
            client.close()
            pytest.skip(f"Redis at {REDIS_URL} is unreachable: {exc}")
        before = set(client.scan_iter(count=1000))
        yield
        created = set(client.scan_iter(count=1000)) - before
        if created:
            client.delete(*created)
        client.close()

    @pytest.fixture(params=list(REDIS_OPTIONS))
    def connection(self, request: pytest.FixtureRequest) -> Iterator[Any]:
        conn = kombu.Connection(REDIS_URL, transport_options=dict(REDIS_OPTIONS[request.param]))
        yield conn
        conn.release()

    @pytest.fixture
    def invalid_connection(self) -> Iterator[Any]:
        conn = kombu.Connection(_dead_redis_url())
        yield conn
        conn.release()

    @pytest.fixture
    def failover_connection(self) -> Iterator[Any]:
        conn = kombu.Connection(f"{_dead_redis_url()};{REDIS_URL}")
        yield conn
        conn.release()


# -- one test class per mixin and transport ------------------------------------------------

_BACKENDS: dict[str, type] = {"Embedded": EmbeddedConnections, "Redis": RedisConnections}

for _mixin_name, _mixin in _mixins(_load_common()).items():
    _suffix = _mixin_name.removeprefix("Base")
    for _backend, _fixtures in _BACKENDS.items():
        _name = f"Test{_backend}{_suffix}"
        globals()[_name] = type(_name, (_fixtures, _mixin), {"__module__": __name__})
