"""Fixtures for the example tests: each example imported afresh, configured by its environment.

The examples read their settings from ``TASKQUEUE_*`` variables when imported, as programs
do; ``load_example`` sets a private data directory (and whatever else a test names), drops
any earlier import of the example, and imports it again.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _forget(package: str) -> None:
    for name in [name for name in sys.modules if name.startswith(package + ".")]:
        del sys.modules[name]


@pytest.fixture
def example_home(tmp_path: Path) -> Path:
    """The data directory (``TASKQUEUE_HOME``) of the example under test."""
    return tmp_path / "home"


@pytest.fixture
def load_example(
    monkeypatch: pytest.MonkeyPatch, example_home: Path
) -> Iterator[Callable[..., ModuleType]]:
    """Import an example module with ``TASKQUEUE_HOME`` private to the test, plus ``env``."""
    loaded: list[ModuleType] = []

    def load(module: str, **env: str) -> ModuleType:
        for name in list(os.environ):
            if name.startswith(("TASKQUEUE_", "CELERY_")):
                monkeypatch.delenv(name)
        monkeypatch.setenv("TASKQUEUE_HOME", str(example_home))
        monkeypatch.setenv("TASKQUEUE_PROGRESS_INTERVAL", "0")  # every progress step written
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        monkeypatch.syspath_prepend(str(ROOT))
        _forget(module.rpartition(".")[0])
        imported = importlib.import_module(module)
        loaded.append(imported)
        return imported

    yield load
    for imported in loaded:
        app = getattr(imported, "app", None)
        if app is not None:
            app.close()
        _forget(imported.__name__.rpartition(".")[0])
