"""Fixtures for the web adapter tests: a client of either adapter, served on a loopback port."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from _webtools import ADAPTERS, served_client
from celery import Celery

from taskqueue_kit import TaskQueueSettings, create_celery
from taskqueue_kit.testing import unique_name


@pytest.fixture(params=ADAPTERS)
def adapter(request: pytest.FixtureRequest) -> str:
    """Each web adapter in turn."""
    return str(request.param)


@pytest.fixture
def api(adapter: str, embedded_app: Celery) -> Iterator[httpx.Client]:
    """A client of the adapter under test, on the embedded broker (no worker running)."""
    with served_client(adapter, embedded_app) as client:
        yield client


@pytest.fixture(scope="module", params=ADAPTERS)
def shared_api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[httpx.Client]:
    """A client of each adapter in turn, on one embedded app that no worker serves.

    Shared by a module's tests that only send and read: starting a server per test would
    be most of their time.
    """
    settings = TaskQueueSettings(
        home=tmp_path_factory.mktemp("shared"), default_queue=unique_name("shared")
    )
    app = create_celery(settings, main="shared")
    with served_client(str(request.param), app) as client:
        yield client
    app.close()


@pytest.fixture
def broker_api(adapter: str, taskqueue_app: Celery) -> Iterator[httpx.Client]:
    """A client of the adapter under test, on each broker in turn (no worker running)."""
    with served_client(adapter, taskqueue_app) as client:
        yield client
